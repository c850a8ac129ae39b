"""The model a config describes."""
from __future__ import annotations

import numpy as np

from input_pipeline import dataset_kinds
from input_pipeline.pipeline import batch_spec
from lexmo_jax.models.lexmo import LexMo, LexMoConfig
from lexmo_jax.models.motion_encoder import MotionEncoderConfig
from lexmo_jax.models.text_encoder import TextEncoderConfig


def model_config(config) -> LexMoConfig:
  """The LexMoConfig a phase config describes (text, motion and model sections)."""
  t, m = config.text, config.motion
  text = TextEncoderConfig(
      model_type=t.model_type, vocab_size=t.vocab_size, hidden_size=t.hidden_size,
      num_layers=t.num_layers, num_heads=t.num_heads, mlp_dim=t.mlp_dim,
      max_position=t.max_position, type_vocab_size=t.type_vocab_size,
      dropout_rate=t.dropout_rate, layer_norm_eps=t.layer_norm_eps, dtype=config.dtype,
      embedding_init_std=t.get("embedding_init_std", 0.02))
  motion = MotionEncoderConfig(
      kind=config.data.kind, tokenizer=m.tokenizer, frames_per_token=m.frames_per_token,
      points_per_chain=m.points_per_chain, patch_frames=m.patch_frames,
      max_frames=config.data.max_motion_length, hidden_size=m.hidden_size,
      num_layers=m.num_layers, num_heads=m.num_heads, mlp_dim=m.mlp_dim,
      dropout_rate=m.dropout_rate, dtype=config.dtype)
  return LexMoConfig(
      text=text, motion=motion, decoder_layers=config.model.decoder_layers,
      motion_decoder_hidden=config.model.motion_decoder_hidden,
      motion_decoder_layers=config.model.motion_decoder_layers,
      projection_dim=config.model.projection_dim,
      # LexCMLP's starting temperature is its config's, also when it starts from scratch.
      temperature_init=config.loss.get("temperature_init", LexMoConfig.temperature_init))


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
