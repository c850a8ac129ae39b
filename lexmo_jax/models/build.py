"""The model a config describes."""
from __future__ import annotations

import numpy as np

from input_pipeline import dataset_kinds
from input_pipeline.pipeline import batch_spec
from lexmo_jax.models.lexmo import LexMo, LexMoConfig
from lexmo_jax.models.motion_encoder import MotionEncoderConfig
from lexmo_jax.models.text_encoder import TextEncoderConfig


def text_config(config) -> TextEncoderConfig:
  """The DistilBERT/BERT text encoder a config's `text` section describes."""
  t = config.text
  return TextEncoderConfig(
      model_type=t.model_type, vocab_size=t.vocab_size, hidden_size=t.hidden_size,
      num_layers=t.num_layers, num_heads=t.num_heads, mlp_dim=t.mlp_dim,
      max_position=t.max_position, type_vocab_size=t.type_vocab_size,
      dropout_rate=t.dropout_rate, layer_norm_eps=t.layer_norm_eps, dtype=config.dtype,
      embedding_init_std=t.get("embedding_init_std", 0.02))


def motion_config(config) -> MotionEncoderConfig:
  """The motion encoder a config's `motion` and `data` sections describe."""
  m = config.motion
  return MotionEncoderConfig(
      kind=config.data.kind, tokenizer=m.tokenizer, frames_per_token=m.frames_per_token,
      points_per_chain=m.points_per_chain, patch_frames=m.patch_frames,
      max_frames=config.data.max_motion_length, hidden_size=m.hidden_size,
      num_layers=m.num_layers, num_heads=m.num_heads, mlp_dim=m.mlp_dim,
      dropout_rate=m.dropout_rate, dtype=config.dtype)


def model_config(config) -> LexMoConfig:
  """The LexMoConfig a phase config describes (text, motion and model sections)."""
  text, motion = text_config(config), motion_config(config)
  caption = config.get("caption") or {}
  return LexMoConfig(
      text=text, motion=motion, decoder_layers=config.model.decoder_layers,
      motion_decoder_hidden=config.model.motion_decoder_hidden,
      motion_decoder_layers=config.model.motion_decoder_layers,
      projection_dim=config.model.projection_dim,
      # A workdir written before the field existed gets the backend's best chunk (-1): the
      # vectors are the same whatever the chunk.
      vocab_chunk_size=config.model.get("vocab_chunk_size", -1),
      # LexCMLP's starting temperature is its config's, also when it starts from scratch.
      temperature_init=config.loss.get("temperature_init", LexMoConfig.temperature_init),
      # Only the captioning task's config has a caption section (and so a caption decoder).
      caption_layers=caption.get("decoder_layers", 0),
      caption_condition=caption.get("condition", LexMoConfig.caption_condition),
      caption_words=caption.get("lexical_words", LexMoConfig.caption_words),
      caption_dropout_rate=caption.get("dropout_rate", LexMoConfig.caption_dropout_rate),
      # Only the conditioning task's config has a conditioning section.
      condition_dim=(config.get("conditioning") or {}).get("dim", 0))


def build_model(config) -> LexMo:
  """The LexMo module of a phase config (parameters are made by the trainer)."""
  return LexMo(model_config(config))


def dummy_batch(config, batch_size: int = 1) -> dict[str, np.ndarray]:
  """A batch of the pipeline's layout (`input_pipeline.pipeline.batch_spec`), for
  initialisation and compilation: zeros, every frame and token marked valid."""
  spec = batch_spec(batch_size, config.data.max_motion_length,
                    dataset_kinds.get_kind(config.data.kind).feature_dim,
                    config.data.max_text_length)
  batch = {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
  batch["motion_mask"][:] = True
  batch["attention_mask"][:] = 1
  return batch


def random_batch(config, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A batch of the pipeline's layout with random values, for benchmarks and checks of the
  step: normal motions with random lengths (a third to all of the frames), captions of
  random word-piece ids (past the special tokens) and lengths (6 to all)."""
  batch = dummy_batch(config, config.data.global_batch_size)
  b, t, _ = batch["motion"].shape
  batch["motion"] = rng.normal(size=batch["motion"].shape).astype(np.float32)
  batch["motion_mask"] = np.arange(t)[None] < rng.integers(t // 3, t + 1, size=b)[:, None]
  length = batch["input_ids"].shape[1]
  lengths = rng.integers(min(6, length), length + 1, size=b)
  batch["attention_mask"] = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
  ids = rng.integers(1000, config.text.vocab_size, size=(b, length))
  batch["input_ids"] = np.where(batch["attention_mask"] > 0, ids, 0).astype(np.int32)
  return batch
