"""Fused lexical pooling: max over tokens of the vocabulary logits, without holding them.

Every lexical vector and every lexicon bottleneck starts from z = max over a sequence's
valid tokens of Z = X·Pᵀ + b, where X (B, T, D) are the lexical head's transformed token
states, P (V, D) its vocabulary projection and b (V,) its bias. Z itself is (B, T, V): at
TMR's batch (32 clips × 197 tokens × 30522 words) 766 MB of float32, written and read again
forward and backward although only its maximum over T is used. `fused_max_logits` computes
z one vocabulary chunk at a time, keeping the index of the maximal token; its gradient goes
to that token only (the first one where several tie, as `jnp.argmax` picks), so the backward
pass needs no logits at all: dX[b, t] = Σ_v [t = argmax_bv] g_bv P_v and
dP_v = Σ_b g_bv X[b, argmax_bv]: per chunk, a gather and a scatter of (B, chunk) rows of
width D instead of two (B, T, V) × (V, D) matrix products. Only the (B, V) indices are kept
from the forward pass, so nothing is recomputed.

`max_logits` is the one entry point: chunk_size=0 computes Z whole (the unfused reference).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@jax.custom_vjp
def max_over_tokens(z_btv):
  """Max over axis 1. Returns (B, V).

  Its gradient goes to the first maximal token only, as one select: JAX's generic rule for
  `max` (compare, count ties, divide) costs several passes over the (B, T, V) logits, which
  dominates a step of a small model.
  """
  return jnp.max(z_btv, axis=1)


def _max_over_tokens_fwd(z_btv):
  index_bv = jnp.argmax(z_btv, axis=1)
  return jnp.take_along_axis(z_btv, index_bv[:, None, :], axis=1)[:, 0], (index_bv, z_btv.shape)


def _max_over_tokens_bwd(residuals, g_bv):
  index_bv, shape = residuals
  token_1t1 = jax.lax.broadcasted_iota(index_bv.dtype, (1, shape[1], 1), 1)
  return (jnp.where(token_1t1 == index_bv[:, None, :], g_bv[:, None, :], 0.0).astype(g_bv.dtype),)


max_over_tokens.defvjp(_max_over_tokens_fwd, _max_over_tokens_bwd)


def _chunk_start(i, v: int, chunk_size: int):
  """First word of chunk i. The last chunk is moved back to end at the vocabulary's end, so
  every chunk is a slice of the parameters themselves (no padded copy); the words it shares
  with the one before are computed twice, identically."""
  return jnp.minimum(i * chunk_size, v - chunk_size)


def vocabulary_logits(x_btd, projection_cd, bias_c):
  """Z = X·Pᵀ + b over the words of P, (B, T, C) float32: the product in X's dtype, then the
  float32 bias."""
  z = jnp.einsum("btd,cd->btc", x_btd, projection_cd.astype(x_btd.dtype))
  return z.astype(jnp.float32) + bias_c


def _max_and_argmax(z_btc):
  """Max over axis 1 and the first token that reaches it: ((B, C), (B, C) int32).

  Two plain reductions (max, then the largest T − t among the tokens at the max) vectorise
  on every backend, unlike `argmax`'s value-index reduction, which on a CPU costs several
  times the max; token numbers are exact in float32 up to 2^24 tokens.
  """
  t = z_btc.shape[1]
  max_bc = jnp.max(z_btc, axis=1)
  rank_btc = t - jax.lax.broadcasted_iota(jnp.float32, z_btc.shape, 1)
  rank_bc = jnp.max(jnp.where(z_btc == max_bc[:, None], rank_btc, 0.0), axis=1)
  return max_bc, (t - rank_bc).astype(jnp.int32)


def _forward(x_btd, projection_vd, bias_v, mask_bt, chunk_size: int):
  """(z (B, V) float32, index of the maximal valid token (B, V) int32)."""
  v = projection_vd.shape[0]
  chunk_size = min(chunk_size, v)
  neg = jnp.finfo(jnp.float32).min

  def one_chunk(i, carry):
    z_bv, index_bv = carry
    start = _chunk_start(i, v, chunk_size)
    z_btc = vocabulary_logits(x_btd, jax.lax.dynamic_slice_in_dim(projection_vd, start, chunk_size),
                          jax.lax.dynamic_slice_in_dim(bias_v, start, chunk_size))
    max_bc, index_bc = _max_and_argmax(jnp.where(mask_bt[..., None], z_btc, neg))
    return (jax.lax.dynamic_update_slice_in_dim(z_bv, max_bc, start, 1),
            jax.lax.dynamic_update_slice_in_dim(index_bv, index_bc, start, 1))

  b = x_btd.shape[0]
  init = (jnp.zeros((b, v), jnp.float32), jnp.zeros((b, v), jnp.int32))
  return jax.lax.fori_loop(0, -(-v // chunk_size), one_chunk, init)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def fused_max_logits(x_btd, projection_vd, bias_v, mask_bt, chunk_size: int):
  """max over valid tokens of X·Pᵀ + b, one vocabulary chunk at a time.

  Args:
    x_btd: (B, T, D) the lexical head's transformed token states, in the compute dtype.
    projection_vd: (V, D) the vocabulary projection (float32 parameters).
    bias_v: (V,) the vocabulary bias.
    mask_bt: (B, T) bool, the valid tokens.
    chunk_size: vocabulary entries per chunk (> 0); the extra memory is B·T·chunk floats
      forward and 2·B·chunk·D backward.

  Returns:
    (B, V) float32. A row without a valid token is float32's lowest value everywhere and
    sends no gradient.
  """
  return _forward(x_btd, projection_vd, bias_v, mask_bt, chunk_size)[0]


def _fused_fwd(x_btd, projection_vd, bias_v, mask_bt, chunk_size):
  z_bv, index_bv = _forward(x_btd, projection_vd, bias_v, mask_bt, chunk_size)
  return z_bv, (x_btd, projection_vd, bias_v, mask_bt, index_bv)


def _fused_bwd(chunk_size, residuals, g_bv):
  x_btd, projection_vd, bias_v, mask_bt, index_bv = residuals
  b, t, d = x_btd.shape
  v = projection_vd.shape[0]
  chunk_size = min(chunk_size, v)
  # Rows without a valid token took no logit: their gradient is dropped.
  g_bv = jnp.where(jnp.any(mask_bt, axis=1)[:, None], g_bv, 0.0).astype(jnp.float32)
  x_btd32 = x_btd.astype(jnp.float32)
  # Gathers and scatters are per sequence (vmapped over the batch), so that a batch sharded
  # over devices stays sharded: each device reads and writes its own sequences only.
  gather = jax.vmap(lambda x_td, index_c: x_td.at[index_c].get(mode="promise_in_bounds"))
  scatter_add = jax.vmap(lambda d_td, index_c, u_cd: d_td.at[index_c].add(
      u_cd, mode="promise_in_bounds"))

  def one_chunk(i, carry):
    d_x_btd, d_projection_vd = carry
    start = _chunk_start(i, v, chunk_size)
    g_bc = jax.lax.dynamic_slice_in_dim(g_bv, start, chunk_size, 1)
    index_bc = jax.lax.dynamic_slice_in_dim(index_bv, start, chunk_size, 1)
    projection_cd = jax.lax.dynamic_slice_in_dim(projection_vd, start, chunk_size)
    # dP_v = Σ_b g_bv · X[b, argmax_bv]: complete for each word, so a word the last chunk
    # shares with the one before is written again with the same value.
    d_projection_cd = jnp.sum(g_bc[..., None] * gather(x_btd32, index_bc), axis=0)
    # dX[b, argmax_bv] += g_bv · P_v, once per word.
    fresh_1c = (start + jnp.arange(chunk_size) >= i * chunk_size)[None]
    updates_bcd = (jnp.where(fresh_1c, g_bc, 0.0)[..., None]
                   * projection_cd.astype(jnp.float32)[None])
    d_x_btd = scatter_add(d_x_btd, index_bc, updates_bcd)
    return d_x_btd, jax.lax.dynamic_update_slice_in_dim(d_projection_vd, d_projection_cd, start, 0)

  init = (jnp.zeros((b, t, d), jnp.float32), jnp.zeros((v, d), jnp.float32))
  d_x_btd, d_projection = jax.lax.fori_loop(0, -(-v // chunk_size), one_chunk, init)
  return (d_x_btd.astype(x_btd.dtype), d_projection.astype(projection_vd.dtype),
          jnp.sum(g_bv, axis=0).astype(bias_v.dtype), None)


fused_max_logits.defvjp(_fused_fwd, _fused_bwd)


# Words per chunk where the caller asks for the backend's best (-1): small chunks keep a CPU's
# caches warm (measured: bench/RESULTS.md); an accelerator wants few, large products.
CPU_CHUNK_SIZE = 256
ACCELERATOR_CHUNK_SIZE = 4096


def default_chunk_size() -> int:
  """The chunk size -1 stands for on the default backend."""
  return CPU_CHUNK_SIZE if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK_SIZE


def max_logits(x_btd, projection_vd, bias_v, mask_bt, chunk_size: int = -1):
  """z = max over valid tokens of Z = X·Pᵀ + b. Returns (B, V) float32.

  chunk_size > 0 never holds Z (`fused_max_logits`); -1 does so with `default_chunk_size()`;
  0 computes Z whole and pools it, the reference the fused path equals (to float rounding
  of the products' order).
  """
  if chunk_size < 0:
    chunk_size = default_chunk_size()
  if chunk_size > 0:
    return fused_max_logits(x_btd, projection_vd, bias_v, mask_bt.astype(bool), chunk_size)
  z_btv = jnp.where(mask_bt.astype(bool)[..., None],
                    vocabulary_logits(x_btd, projection_vd, bias_v), jnp.finfo(jnp.float32).min)
  return max_over_tokens(z_btv)
