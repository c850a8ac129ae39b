"""The lexical representation: word-weight vectors and the lexicon bottleneck.

A lexical vector has one coordinate per vocabulary entry (word piece); its weight says how
strongly the text or motion is described by that word.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lexmo_jax.models.transformer import Dtype, constrain, default_kernel_init, dense, layer_norm


class LexicalHead(nn.Module):
  """The "LM head": dense D→D, GELU, LayerNorm, then logits over the vocabulary.

  With `tied=True` the vocabulary projection is the word-embedding matrix passed at call
  time (the text side); otherwise the head owns its projection (the motion side, which is
  initialised as a copy of the text head).
  """
  vocab_size: int
  tied: bool = True
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, h_btd, embedding_vd=None):
    d = h_btd.shape[-1]
    x_btd = dense(d, ("embed", "embed_out"), "transform", self.dtype)(h_btd)
    x_btd = nn.gelu(x_btd, approximate=False)
    x_btd = layer_norm("transform_norm", self.layer_norm_eps, self.dtype)(x_btd)
    if self.tied:
      if embedding_vd is None:
        raise ValueError("a tied lexical head needs the word-embedding matrix")
      projection_vd = embedding_vd
    else:
      projection_vd = self.param(
          "projection", nn.with_logical_partitioning(default_kernel_init, ("vocab", "embed")),
          (self.vocab_size, d), jnp.float32)
    bias_v = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)),
                        (self.vocab_size,), jnp.float32)
    logits_btv = jnp.einsum("btd,vd->btv", x_btd, projection_vd.astype(self.dtype))
    logits_btv = logits_btv.astype(jnp.float32) + bias_v
    return constrain(logits_btv, ("batch", "length", "vocab"))


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


def masked_max(logits_btv, mask_bt):
  """Max over the valid tokens. Returns (B, V)."""
  neg = jnp.finfo(logits_btv.dtype).min
  return max_over_tokens(jnp.where(mask_bt[..., None], logits_btv, neg))


def lexical_vector(logits_btv, mask_bt, vocab_mask_v=None):
  """SPLADE-max: v = max over valid tokens of log(1 + ReLU(Z)). Returns (B, V) ≥ 0.

  `vocab_mask_v` (V,) bool zeroes entries that are not words ([CLS], [PAD], ...).
  Since log1p∘relu is monotone, the max can be taken on the logits first.
  """
  v_bv = jnp.log1p(jax.nn.relu(masked_max(logits_btv, mask_bt)))
  if vocab_mask_v is not None:
    v_bv = jnp.where(vocab_mask_v, v_bv, 0.0)
  return constrain(v_bv, ("batch", "vocab"))


def bottleneck(logits_btv, mask_bt, embedding_vd, vocab_mask_v=None):
  """Lexicon bottleneck: a = softmax(max_t Z), b = a · sg(E). Returns (a (B, V), b (B, D))."""
  z_bv = masked_max(logits_btv, mask_bt)
  if vocab_mask_v is not None:
    z_bv = jnp.where(vocab_mask_v, z_bv, jnp.finfo(z_bv.dtype).min)
  a_bv = jax.nn.softmax(z_bv, axis=-1)
  b_bd = a_bv @ jax.lax.stop_gradient(embedding_vd).astype(a_bv.dtype)
  return a_bv, b_bd


def l2_normalise(x, eps: float = 1e-6):
  """x (..., D) divided by its L2 norm along the last axis (at least eps)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)
