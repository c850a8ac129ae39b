"""ACTOR-style sequence encoder and decoder, as TMR uses them (Petrovich et al., ICCV 2023;
after ACTOR, ICCV 2021, and TEMOS, ECCV 2022).

Encoder: a linear map of each input vector (a motion frame's features, or a frozen text
encoder's token state) to the latent width, learned distribution tokens (μ and log σ² for a
VAE, one token otherwise) put in front, fixed sinusoidal positions, post-LN transformer
layers (PyTorch's `nn.TransformerEncoderLayer` defaults, GELU); the first tokens' outputs are
the distribution. Decoder: zero queries with sinusoidal positions, one frame per query,
cross-attending to the latent vector alone, then a linear map to the features; padded frames
come out zero.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from lexmo_jax.models.transformer import (CrossAttentionBlock, Dropout, Dtype, TransformerStack,
                                          constrain, dense)

# PyTorch's nn.TransformerEncoderLayer LayerNorm epsilon, which TMR keeps.
LAYER_NORM_EPS = 1e-5


def sinusoidal_positions(length: int, width: int) -> np.ndarray:
  """(length, width) float32: sin on even channels, cos on odd ones, wavelengths from 2π to
  10000·2π (Vaswani et al.; TMR's `PositionalEncoding`)."""
  position = np.arange(length, dtype=np.float64)[:, None]
  rate = np.exp(np.arange(0, width, 2, dtype=np.float64) * (-np.log(10000.0) / width))
  table = np.zeros((length, width), np.float64)
  table[:, 0::2] = np.sin(position * rate)
  table[:, 1::2] = np.cos(position * rate)[:, :width // 2]
  return table.astype(np.float32)


class ActorEncoder(nn.Module):
  """Sequence (B, T, F) with mask (B, T) → token states (B, K + T, D) and mask (B, K + T), K the
  distribution tokens (2 with `vae`: μ then log σ²; 1 otherwise). float32 out."""
  latent_dim: int = 256
  num_layers: int = 6
  num_heads: int = 4
  mlp_dim: int = 1024
  dropout_rate: float = 0.1
  vae: bool = True
  dtype: Dtype = jnp.float32

  @property
  def num_distribution_tokens(self) -> int:
    return 2 if self.vae else 1

  @nn.compact
  def __call__(self, x_btf, mask_bt, deterministic: bool = True):
    k = self.num_distribution_tokens
    b, t, _ = x_btf.shape
    x_btd = dense(self.latent_dim, ("patch", "embed"), "projection", self.dtype)(
        x_btf.astype(self.dtype))
    tokens_kd = self.param("tokens", nn.with_logical_partitioning(
        nn.initializers.normal(1.0), (None, "embed")), (k, self.latent_dim), jnp.float32)
    x_btd = jnp.concatenate(
        [jnp.broadcast_to(tokens_kd.astype(self.dtype), (b, k, self.latent_dim)), x_btd], axis=1)
    x_btd = x_btd + jnp.asarray(sinusoidal_positions(k + t, self.latent_dim), self.dtype)[None]
    x_btd = Dropout(self.dropout_rate)(x_btd, deterministic=deterministic)
    full_mask = jnp.concatenate([jnp.ones((b, k), bool), mask_bt.astype(bool)], axis=1)
    h_btd = TransformerStack(self.num_layers, self.num_heads, self.mlp_dim, self.dropout_rate,
                             pre_norm=False, layer_norm_eps=LAYER_NORM_EPS, dtype=self.dtype,
                             name="encoder")(constrain(x_btd, ("batch", "length", "embed")),
                                             full_mask, deterministic)
    return h_btd.astype(jnp.float32), full_mask


class ActorDecoder(nn.Module):
  """Latent vectors (B, D) and a frame mask (B, T) → features (B, T, F), zero where the mask
  is False. float32 out."""
  feature_dim: int
  latent_dim: int = 256
  num_layers: int = 6
  num_heads: int = 4
  mlp_dim: int = 1024
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, z_bd, mask_bt, deterministic: bool = True):
    b, t = mask_bt.shape
    queries_btd = jnp.broadcast_to(
        jnp.asarray(sinusoidal_positions(t, self.latent_dim), self.dtype)[None],
        (b, t, self.latent_dim))
    x_btd = Dropout(self.dropout_rate)(queries_btd, deterministic=deterministic)
    memory_b1d = z_bd[:, None].astype(self.dtype)
    memory_mask_b1 = jnp.ones((b, 1), bool)
    mask_bt = mask_bt.astype(bool)
    for i in range(self.num_layers):
      x_btd = CrossAttentionBlock(self.num_heads, self.mlp_dim, self.dropout_rate,
                                  LAYER_NORM_EPS, self.dtype, name=f"layer_{i}")(
                                      x_btd, mask_bt, memory_b1d, memory_mask_b1, deterministic)
    out_btf = dense(self.feature_dim, ("embed", "patch"), "output", self.dtype)(x_btd)
    return jnp.where(mask_bt[..., None], out_btf.astype(jnp.float32), 0.0)
