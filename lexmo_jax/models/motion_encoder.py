"""The motion encoder: a pre-LN transformer (ViT) over motion tokens.

Input is a normalised motion (B, T, F) and its frame mask; tokens come from
`motion_tokens` (frame groups or MotionPatches). A learned [CLS] token is prepended and
gives the pooled embedding. Masked-token modelling (CMMM) replaces chosen tokens by a
learned mask embedding.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from lexmo_jax.models import motion_tokens
from lexmo_jax.models.transformer import Dropout, TransformerStack, constrain, dense, layer_norm

TOKENIZERS = ("patches", "frames")


@dataclasses.dataclass(frozen=True)
class MotionEncoderConfig:
  """The motion ViT: dataset kind, tokenizer ('patches': MotionPatches over kinematic chains,
  patch_frames × points_per_chain × 3 values; 'frames': frames_per_token frames of features),
  max_frames, and the transformer's sizes.

  Raises:
    ValueError: an unknown tokenizer, or a hidden size not divisible by the heads.
  """
  kind: str = "humanml3d"
  tokenizer: str = "patches"
  frames_per_token: int = 4
  points_per_chain: int = 16
  patch_frames: int = 16
  max_frames: int = 196
  hidden_size: int = 768
  num_layers: int = 12
  num_heads: int = 12
  mlp_dim: int = 3072
  dropout_rate: float = 0.1
  layer_norm_eps: float = 1e-6
  dtype: str = "float32"

  def __post_init__(self):
    if self.tokenizer not in TOKENIZERS:
      raise ValueError(f"unknown motion tokenizer {self.tokenizer!r}; expected one of {TOKENIZERS}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"motion hidden_size {self.hidden_size} is not divisible by "
                       f"num_heads {self.num_heads}")

  @property
  def num_tokens(self) -> int:
    """Motion tokens per clip, without [CLS]."""
    return motion_tokens.num_tokens(self.tokenizer, self.max_frames, self.frames_per_token,
                                    self.patch_frames, self.kind)


def tokenize(config: MotionEncoderConfig, motion_btf, mask_bt):
  """Raw token values (B, N, P) and their mask (B, N): also the reconstruction targets."""
  if config.tokenizer == "frames":
    return motion_tokens.frame_tokens(motion_btf, mask_bt, config.frames_per_token)
  return motion_tokens.patch_tokens(motion_btf, mask_bt, config.kind, config.points_per_chain,
                                    config.patch_frames)


class MotionEncoder(nn.Module):
  """Transformer over motion tokens with a [CLS] token and learned positions."""
  config: MotionEncoderConfig

  @nn.compact
  def __call__(self, motion_btf, mask_bt, masked_tokens_bn=None, deterministic: bool = True):
    """Returns token states H_m (B, 1+N, D) ([CLS] first) and their mask (B, 1+N)."""
    c = self.config
    dtype = jnp.dtype(c.dtype)
    tokens_bnp, mask_bn = tokenize(c, motion_btf, mask_bt)
    x_bnd = dense(c.hidden_size, ("patch", "embed"), "token_embedding", dtype)(
        tokens_bnp.astype(dtype))
    if masked_tokens_bn is not None:
      mask_embedding_d = self.param(
          "mask_embedding", nn.with_logical_partitioning(nn.initializers.normal(0.02), ("embed",)),
          (c.hidden_size,), jnp.float32)
      x_bnd = jnp.where(masked_tokens_bn[..., None], mask_embedding_d.astype(dtype), x_bnd)
    b, n, _ = x_bnd.shape
    cls_d = self.param("cls", nn.with_logical_partitioning(nn.initializers.normal(0.02), ("embed",)),
                       (c.hidden_size,), jnp.float32)
    x_bnd = jnp.concatenate([jnp.broadcast_to(cls_d.astype(dtype), (b, 1, c.hidden_size)), x_bnd],
                            axis=1)
    position_nd = self.param(
        "position_embeddings",
        nn.with_logical_partitioning(nn.initializers.normal(0.02), ("position", "embed")),
        (c.num_tokens + 1, c.hidden_size), jnp.float32)
    x_bnd = x_bnd + position_nd[None, :n + 1].astype(dtype)
    x_bnd = Dropout(c.dropout_rate)(x_bnd, deterministic=deterministic)
    x_bnd = constrain(x_bnd, ("batch", "length", "embed"))
    full_mask_bn = jnp.concatenate([jnp.ones((b, 1), bool), mask_bn], axis=1)
    x_bnd = TransformerStack(c.num_layers, c.num_heads, c.mlp_dim, c.dropout_rate, pre_norm=True,
                             layer_norm_eps=c.layer_norm_eps, dtype=dtype, name="encoder")(
                                 x_bnd, full_mask_bn, deterministic)
    x_bnd = layer_norm("final_norm", c.layer_norm_eps, dtype)(x_bnd)
    return x_bnd, full_mask_bn


class MaskedTokenDecoder(nn.Module):
  """MAE-style light decoder: token states → raw token values (B, N, P)."""
  token_dim: int
  hidden_size: int = 256
  num_layers: int = 1
  num_heads: int = 4
  dtype: str = "float32"

  @nn.compact
  def __call__(self, h_bnd, mask_bn, deterministic: bool = True):
    dtype = jnp.dtype(self.dtype)
    x = dense(self.hidden_size, ("embed", "embed_out"), "input", dtype)(h_bnd)
    x = TransformerStack(self.num_layers, self.num_heads, 4 * self.hidden_size, 0.0,
                         pre_norm=True, layer_norm_eps=1e-6, dtype=dtype, name="layers")(
                             x, mask_bn, deterministic)
    x = layer_norm("final_norm", 1e-6, dtype)(x)
    return dense(self.token_dim, ("embed_out", "patch"), "output", dtype)(x).astype(jnp.float32)


class ProjectionHead(nn.Module):
  """Small MLP for the CMMM contrastive views (pooled (B, D) → (B, K))."""
  features: int = 256
  dtype: str = "float32"

  @nn.compact
  def __call__(self, x_bd):
    dtype = jnp.dtype(self.dtype)
    d = x_bd.shape[-1]
    x = nn.gelu(dense(d, ("embed", "embed_out"), "hidden", dtype)(x_bd))
    return dense(self.features, ("embed_out", "embed_proj"), "output", dtype)(x).astype(jnp.float32)
