"""The model a config describes."""
from __future__ import annotations

import numpy as np

from lexmo_jax.models.lexmo import LexMo, LexMoConfig
from lexmo_jax.models.motion_encoder import MotionEncoderConfig
from lexmo_jax.models.text_encoder import TextEncoderConfig
from lexmo_jax.motion import skeleton


def model_config(config) -> LexMoConfig:
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
      projection_dim=config.model.projection_dim)


def build_model(config) -> LexMo:
  return LexMo(model_config(config))


def dummy_batch(config, batch_size: int = 1) -> dict[str, np.ndarray]:
  """A batch of the right shapes, for initialisation and compilation."""
  width = skeleton.get_skeleton(config.data.kind).feature_dim
  t, l = config.data.max_motion_length, config.data.max_text_length
  return {
      "motion": np.zeros((batch_size, t, width), np.float32),
      "motion_mask": np.ones((batch_size, t), bool),
      "input_ids": np.zeros((batch_size, l), np.int32),
      "attention_mask": np.ones((batch_size, l), np.int32),
      "index": np.zeros((batch_size,), np.int32),
  }
