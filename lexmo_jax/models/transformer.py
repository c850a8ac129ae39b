"""Transformer building blocks shared by the text encoder, the motion encoder and the decoders.

Every parameter carries logical axis names (`embed`, `heads`, `mlp`, ...) so that the
sharding rules held in the config place it on the mesh; key activations are constrained
the same way. Shapes use the letters b (batch), t (tokens), d (model width), f (MLP width).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any

# BERT-family initialisation: truncated normal would also do; HF uses normal(0.02).
default_kernel_init = nn.initializers.normal(stddev=0.02)


def dense(features: int, axes: tuple[str, str], name: str, dtype: Dtype,
          use_bias: bool = True) -> nn.Dense:
  """A Dense layer whose kernel and bias carry logical axis names."""
  return nn.Dense(
      features,
      use_bias=use_bias,
      dtype=dtype,
      param_dtype=jnp.float32,
      kernel_init=nn.with_logical_partitioning(default_kernel_init, axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)),
      name=name)


def layer_norm(name: str, eps: float, dtype: Dtype) -> nn.LayerNorm:
  """A LayerNorm named `name`, scale and bias sharded along 'embed'."""
  return nn.LayerNorm(
      epsilon=eps,
      dtype=dtype,
      param_dtype=jnp.float32,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
      name=name)


def constrain(x, axes: tuple[str | None, ...]):
  """Logical sharding constraint on an activation (a no-op outside a mesh)."""
  return nn.with_logical_constraint(x, axes)


class SelfAttention(nn.Module):
  """Multi-head self-attention with a key padding mask."""
  num_heads: int
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, deterministic: bool):
    d = x_btd.shape[-1]
    if d % self.num_heads:
      raise ValueError(f"model width {d} is not divisible by num_heads={self.num_heads}")
    head_dim = d // self.num_heads

    def heads(name):
      y = dense(d, ("embed", "heads"), name, self.dtype)(x_btd)
      return y.reshape(*y.shape[:-1], self.num_heads, head_dim)

    q_bthk, k_bshk, v_bshk = heads("query"), heads("key"), heads("value")
    logits_bhts = jnp.einsum("bthk,bshk->bhts", q_bthk, k_bshk) / jnp.sqrt(head_dim).astype(
        self.dtype)
    # Softmax in float32 whatever the compute dtype: bf16 logits lose the small differences.
    logits_bhts = logits_bhts.astype(jnp.float32)
    big_neg = jnp.finfo(jnp.float32).min
    logits_bhts = jnp.where(mask_bt[:, None, None, :], logits_bhts, big_neg)
    probs_bhts = nn.softmax(logits_bhts, axis=-1).astype(self.dtype)
    probs_bhts = nn.Dropout(self.dropout_rate)(probs_bhts, deterministic=deterministic)
    out_bthk = jnp.einsum("bhts,bshk->bthk", probs_bhts, v_bshk)
    out_btd = out_bthk.reshape(*out_bthk.shape[:-2], d)
    return dense(d, ("heads", "embed"), "out", self.dtype)(out_btd)


class MLP(nn.Module):
  """Dense D→mlp_dim, GELU, dropout, dense back to D."""
  mlp_dim: int
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, deterministic: bool):
    d = x_btd.shape[-1]
    h_btf = dense(self.mlp_dim, ("embed", "mlp"), "wi", self.dtype)(x_btd)
    # Exact (erf) GELU, as BERT and DistilBERT checkpoints were trained with.
    h_btf = nn.gelu(h_btf, approximate=False)
    h_btf = constrain(h_btf, ("batch", "length", "mlp"))
    h_btd = dense(d, ("mlp", "embed"), "wo", self.dtype)(h_btf)
    return nn.Dropout(self.dropout_rate)(h_btd, deterministic=deterministic)


class TransformerBlock(nn.Module):
  """One transformer layer.

  `pre_norm=False` is the post-LN block of BERT and DistilBERT (x = LN(x + f(x)));
  `pre_norm=True` the pre-LN block of ViTs (x = x + f(LN(x))).
  """
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  pre_norm: bool = False
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, deterministic: bool = True):
    attention = SelfAttention(self.num_heads, self.dropout_rate, self.dtype, name="attention")
    mlp = MLP(self.mlp_dim, self.dropout_rate, self.dtype, name="mlp")
    attention_norm = layer_norm("attention_norm", self.layer_norm_eps, self.dtype)
    mlp_norm = layer_norm("mlp_norm", self.layer_norm_eps, self.dtype)
    drop = nn.Dropout(self.dropout_rate)
    if self.pre_norm:
      x_btd = x_btd + drop(attention(attention_norm(x_btd), mask_bt, deterministic),
                           deterministic=deterministic)
      x_btd = x_btd + mlp(mlp_norm(x_btd), deterministic)
    else:
      x_btd = attention_norm(
          x_btd + drop(attention(x_btd, mask_bt, deterministic), deterministic=deterministic))
      x_btd = mlp_norm(x_btd + mlp(x_btd, deterministic))
    return constrain(x_btd, ("batch", "length", "embed"))


class TransformerStack(nn.Module):
  """`num_layers` blocks applied in turn. Returns (B, T, D)."""
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  pre_norm: bool = False
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, deterministic: bool = True):
    for i in range(self.num_layers):
      x_btd = TransformerBlock(
          self.num_heads, self.mlp_dim, self.dropout_rate, self.pre_norm, self.layer_norm_eps,
          self.dtype, name=f"layer_{i}")(x_btd, mask_bt, deterministic)
    return x_btd
