"""The text-to-motion generator's model: a motion VQ-VAE and a code generator, one tree.

Parameter groups:
  vqvae      `MotionVQVAE`: normalised features ↔ codes (one every 2**down_t frames)
  generator  `CodeGenerator`: the text condition, then codes, then END (only when the
             condition width is known: the generator task; the VQ-VAE task has none)

The VQ-VAE task trains `vqvae`; the generator task starts from its workdir (`init_from`),
freezes it, and trains `generator` on the codes of the training motions.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from input_pipeline import dataset_kinds
from lexmo_jax.models.code_generator import CodeGenerator
from lexmo_jax.models.motion_vqvae import MotionVQVAE


@dataclasses.dataclass(frozen=True)
class GenerationModelConfig:
  """Sizes: the VQ-VAE's (`config.vqvae`) and the generator's (`config.generator`; the
  condition width C comes from the text encoder that conditions it, 0 = no generator)."""
  feature_dim: int
  num_joints: int
  max_frames: int
  vq_width: int
  vq_depth: int
  down_t: int
  dilation_growth: int
  codebook_size: int
  code_dim: int
  normalise_codes: bool
  condition_dim: int = 0
  width: int = 512
  num_layers: int = 9
  num_heads: int = 16
  mlp_dim: int = 2048
  dropout_rate: float = 0.1
  dtype: str = "float32"

  @property
  def max_codes(self) -> int:
    return self.max_frames // 2**self.down_t


def model_config(config, condition_dim: int = 0) -> GenerationModelConfig:
  """The GenerationModelConfig of a vqvae or generator task config."""
  v = config.vqvae
  g = config.get("generator") or {}
  defaults = GenerationModelConfig
  kind = dataset_kinds.get_kind(config.data.kind)
  return GenerationModelConfig(
      feature_dim=kind.feature_dim, num_joints=kind.num_joints,
      max_frames=config.data.max_motion_length, vq_width=v.width, vq_depth=v.depth,
      down_t=v.down_t, dilation_growth=v.dilation_growth, codebook_size=v.codebook_size,
      code_dim=v.code_dim, normalise_codes=v.normalise_codes, condition_dim=condition_dim,
      width=g.get("width", defaults.width), num_layers=g.get("num_layers", defaults.num_layers),
      num_heads=g.get("num_heads", defaults.num_heads),
      mlp_dim=g.get("mlp_dim", defaults.mlp_dim),
      dropout_rate=g.get("dropout_rate", defaults.dropout_rate), dtype=config.dtype)


class GenerationModel(nn.Module):
  """VQ-VAE + code generator; `__call__(batch)` only creates the parameters at `init`."""
  config: GenerationModelConfig

  def setup(self):  # pylint: disable=missing-function-docstring
    c = self.config
    self.vqvae = MotionVQVAE(
        feature_dim=c.feature_dim, width=c.vq_width, depth=c.vq_depth, down_t=c.down_t,
        dilation_growth=c.dilation_growth, codebook_size=c.codebook_size,
        code_dim=c.code_dim, normalise_codes=c.normalise_codes, dtype=c.dtype)
    if c.condition_dim:
      self.generator = CodeGenerator(
          codebook_size=c.codebook_size, condition_dim=c.condition_dim, width=c.width,
          num_layers=c.num_layers, num_heads=c.num_heads, mlp_dim=c.mlp_dim,
          max_codes=c.max_codes, dropout_rate=c.dropout_rate, dtype=c.dtype)

  def autoencode(self, motion, motion_mask, deterministic=True):
    """The VQ-VAE's outputs for motions (B, T, F) (`MotionVQVAE.__call__`)."""
    return self.vqvae(motion, motion_mask, deterministic)

  def encode(self, motion):
    """Codes (B, T / 2**down_t) of motions (B, T, F)."""
    return self.vqvae.encode(motion)

  def decode(self, codes):
    """Normalised features (B, N · 2**down_t, F) of codes (B, N)."""
    return self.vqvae.decode(codes)

  def next_code_logits(self, condition, codes, deterministic=True, drop_condition=None):
    """The generator's logits (B, 1 + N, K + 1) (`CodeGenerator.__call__`)."""
    return self.generator(condition, codes, deterministic, drop_condition)

  def __call__(self, batch, deterministic=True):
    out = self.vqvae(batch["motion"], batch["motion_mask"], deterministic)
    if self.config.condition_dim:
      b = batch["motion"].shape[0]
      self.generator(jnp.zeros((b, self.config.condition_dim), jnp.float32),
                     jnp.zeros((b, self.config.max_codes), jnp.int32), deterministic)
    return out
