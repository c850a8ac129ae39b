"""Transformer building blocks shared by the text encoder, the motion encoder and the decoders.

Every parameter carries logical axis names (`embed`, `heads`, `mlp`, ...) so that the
sharding rules held in the config place it on the mesh; key activations are constrained
the same way. Shapes use the letters b (batch), t (tokens), d (model width), f (MLP width).
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
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


@jax.checkpoint
def exact_gelu(x):
  """GELU with erf, as BERT and ViT use it, recomputed in the backward pass: its derivative
  needs several tensors of the MLP's width, which would otherwise be kept from the forward
  pass (in a small encoder, most of the step's activation memory)."""
  return nn.gelu(x, approximate=False)


def _mix32(h):
  """MurmurHash3's 32-bit finaliser: a bijection of uint32 whose every output bit depends on
  every input bit."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def uniform16(rng, shape) -> jax.Array:
  """(shape) uint16, uniform: a keyed hash of each element's index.

  The 64-bit key is drawn from `rng` with JAX's threefry generator; the values are
  _mix32(_mix32(i·φ + k₀) ⊕ k₁) (φ the golden-ratio constant), two 16-bit values per 32-bit
  word. Drawing them with threefry itself costs about eight times as much on a CPU, which
  in a small model's step was a tenth of the whole step. Statistically fine for dropout
  masks; not for anything that needs a cryptographic or splittable generator.
  """
  n = math.prod(shape)
  if n > 2**33:
    raise ValueError(f"uniform16 counts elements in 32 bits: {n} is too many")
  k0, k1 = jax.random.bits(rng, (2,), jnp.uint32)
  index = jax.lax.iota(jnp.uint32, -(-n // 2))
  words = _mix32(_mix32(index * jnp.uint32(0x9E3779B9) + k0) ^ k1)
  return jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)[:n].reshape(shape)


class Dropout(nn.Module):
  """Inverted dropout whose keep decisions take 16 random bits each (`uniform16`).

  `flax.linen.Dropout` draws a 32-bit uniform per element with threefry. Here the rate is
  exact to 2⁻¹⁶, and kept values are scaled by 1 / (1 − that rate), as in flax. Uses the
  'dropout' rng collection.
  """
  rate: float

  @nn.compact
  def __call__(self, x, deterministic: bool):
    if deterministic or self.rate == 0.0:
      return x
    if self.rate >= 1.0:
      return jnp.zeros_like(x)
    threshold = round(self.rate * 2**16)
    keep = uniform16(self.make_rng("dropout"), x.shape) >= threshold
    return jnp.where(keep, x / jnp.asarray(1.0 - threshold / 2**16, x.dtype), 0).astype(x.dtype)


class SelfAttention(nn.Module):
  """Multi-head attention of x over itself, or over `memory_bsd` (cross-attention).

  `mask` is a key padding mask (B, S) or a full mask (B, T, S) (causal decoders); True
  marks what may be attended to.

  Incremental decoding (`cache_position` p, an int scalar, given): x holds positions
  p … p + T − 1 of a sequence of S positions, S the last axis of `mask`, a full mask (B, T, S)
  over all of them. Every position's keys and values live in the 'cache' collection
  (`cached_key`, `cached_value`, (B, H, S, head_dim), zeros when first created): the call
  writes those of x at p and attends over all S, so the mask must exclude the positions no
  call has written yet. Feeding a sequence in pieces this way gives the outputs of one call
  over all of it with its causal mask.
  """
  num_heads: int
  dropout_rate: float = 0.0
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask, deterministic: bool, memory_bsd=None, cache_position=None):
    d = x_btd.shape[-1]
    if d % self.num_heads:
      raise ValueError(f"model width {d} is not divisible by num_heads={self.num_heads}")
    head_dim = d // self.num_heads
    source_bsd = x_btd if memory_bsd is None else memory_bsd

    def heads(name, y_bsd):
      # Heads before tokens: both attention products are then plain batched matmuls.
      y = dense(d, ("embed", "heads"), name, self.dtype)(y_bsd)
      return jnp.swapaxes(y.reshape(*y.shape[:-1], self.num_heads, head_dim), 1, 2)

    q_bhtk, k_bhsk, v_bhsk = (heads("query", x_btd), heads("key", source_bsd),
                              heads("value", source_bsd))
    if cache_position is not None:
      if memory_bsd is not None or mask.ndim != 3:
        raise ValueError("a cached call is self-attention with a full mask (B, T, S)")
      cache_shape = (*k_bhsk.shape[:2], mask.shape[-1], head_dim)

      def cached(name, y_bhtk):
        cache = self.variable("cache", name, jnp.zeros, cache_shape, y_bhtk.dtype)
        cache.value = jax.lax.dynamic_update_slice_in_dim(cache.value, y_bhtk, cache_position,
                                                          axis=2)
        return cache.value

      k_bhsk, v_bhsk = cached("cached_key", k_bhsk), cached("cached_value", v_bhsk)
    logits_bhts = jnp.einsum("bhtk,bhsk->bhts", q_bhtk, k_bhsk) / jnp.sqrt(head_dim).astype(
        self.dtype)
    # Softmax in float32 whatever the compute dtype: bf16 logits lose the small differences.
    logits_bhts = logits_bhts.astype(jnp.float32)
    big_neg = jnp.finfo(jnp.float32).min
    mask_b1ts = mask[:, None, None, :] if mask.ndim == 2 else mask[:, None]
    logits_bhts = jnp.where(mask_b1ts, logits_bhts, big_neg)
    probs_bhts = nn.softmax(logits_bhts, axis=-1).astype(self.dtype)
    probs_bhts = Dropout(self.dropout_rate)(probs_bhts, deterministic=deterministic)
    out_bhtk = jnp.einsum("bhts,bhsk->bhtk", probs_bhts, v_bhsk)
    out_btd = jnp.swapaxes(out_bhtk, 1, 2).reshape(*x_btd.shape[:-1], d)
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
    h_btf = exact_gelu(h_btf)
    h_btf = constrain(h_btf, ("batch", "length", "mlp"))
    h_btd = dense(d, ("mlp", "embed"), "wo", self.dtype)(h_btf)
    return Dropout(self.dropout_rate)(h_btd, deterministic=deterministic)


class TransformerBlock(nn.Module):
  """One transformer layer.

  `pre_norm=False` is the post-LN block of BERT and DistilBERT (x = LN(x + f(x)));
  `pre_norm=True` the pre-LN block of ViTs (x = x + f(LN(x))). `cache_position`: incremental
  decoding, as in `SelfAttention`.
  """
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  pre_norm: bool = False
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, deterministic: bool = True, cache_position=None):
    attention = SelfAttention(self.num_heads, self.dropout_rate, self.dtype, name="attention")
    mlp = MLP(self.mlp_dim, self.dropout_rate, self.dtype, name="mlp")
    attention_norm = layer_norm("attention_norm", self.layer_norm_eps, self.dtype)
    mlp_norm = layer_norm("mlp_norm", self.layer_norm_eps, self.dtype)
    drop = Dropout(self.dropout_rate)
    if self.pre_norm:
      x_btd = x_btd + drop(attention(attention_norm(x_btd), mask_bt, deterministic,
                                     cache_position=cache_position),
                           deterministic=deterministic)
      x_btd = x_btd + mlp(mlp_norm(x_btd), deterministic)
    else:
      x_btd = attention_norm(
          x_btd + drop(attention(x_btd, mask_bt, deterministic, cache_position=cache_position),
                       deterministic=deterministic))
      x_btd = mlp_norm(x_btd + mlp(x_btd, deterministic))
    return constrain(x_btd, ("batch", "length", "embed"))


class TransformerStack(nn.Module):
  """`num_layers` blocks applied in turn. Returns (B, T, D).

  `cache_position`: incremental decoding, as in `SelfAttention`.
  """
  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  pre_norm: bool = False
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, mask_bt, deterministic: bool = True, cache_position=None):
    for i in range(self.num_layers):
      x_btd = TransformerBlock(
          self.num_heads, self.mlp_dim, self.dropout_rate, self.pre_norm, self.layer_norm_eps,
          self.dtype, name=f"layer_{i}")(x_btd, mask_bt, deterministic, cache_position)
    return x_btd


class CrossAttentionBlock(nn.Module):
  """A post-LN decoder layer: causal self-attention, attention over a memory, MLP.

  x = LN(x + SelfAttn(x)); x = LN(x + CrossAttn(x, memory)); x = LN(x + MLP(x)). The
  self-attention, MLP and their norms carry the names of `TransformerBlock`'s, so that a
  BERT-style encoder layer can start them; the cross-attention is the decoder's own.
  """
  num_heads: int
  mlp_dim: int
  dropout_rate: float = 0.0
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btd, self_mask_btt, memory_bsd, memory_mask_bs,
               deterministic: bool = True):
    drop = Dropout(self.dropout_rate)
    attention = SelfAttention(self.num_heads, self.dropout_rate, self.dtype, name="attention")
    x_btd = layer_norm("attention_norm", self.layer_norm_eps, self.dtype)(
        x_btd + drop(attention(x_btd, self_mask_btt, deterministic), deterministic=deterministic))
    cross = SelfAttention(self.num_heads, self.dropout_rate, self.dtype, name="cross_attention")
    x_btd = layer_norm("cross_attention_norm", self.layer_norm_eps, self.dtype)(
        x_btd + drop(cross(x_btd, memory_mask_bs, deterministic, memory_bsd),
                     deterministic=deterministic))
    mlp = MLP(self.mlp_dim, self.dropout_rate, self.dtype, name="mlp")
    x_btd = layer_norm("mlp_norm", self.layer_norm_eps, self.dtype)(
        x_btd + mlp(x_btd, deterministic))
    return constrain(x_btd, ("batch", "length", "embed"))
