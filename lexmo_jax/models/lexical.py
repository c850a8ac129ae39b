"""The lexical representation: word-weight vectors and the lexicon bottleneck.

A lexical vector has one coordinate per vocabulary entry (word piece); its weight says how
strongly the text or motion is described by that word.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lexmo_jax.models import lexical_pooling
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
  def __call__(self, h_btd, embedding_vd=None, pool_mask_bt=None, chunk_size: int = -1,
               vocab_ids_k=None):
    """Per-token logits Z (B, T, V) float32; with `pool_mask_bt` (B, T) bool, their max over
    the valid tokens instead (B, V), computed `chunk_size` words at a time without holding Z
    (`lexical_pooling.max_logits`: 0 = whole, -1 = the backend's best). With `vocab_ids_k`
    (K,), the per-token logits of those entries only (B, T, K)."""
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
    if vocab_ids_k is not None:
      projection_vd = jnp.take(projection_vd, vocab_ids_k, axis=0)
      bias_v = jnp.take(bias_v, vocab_ids_k, axis=0)
    if pool_mask_bt is not None:
      z_bv = lexical_pooling.max_logits(x_btd, projection_vd, bias_v, pool_mask_bt, chunk_size)
      return constrain(z_bv, ("batch", "vocab"))
    logits_btv = lexical_pooling.vocabulary_logits(x_btd, projection_vd, bias_v)
    return constrain(logits_btv, ("batch", "length", "vocab"))


def masked_max(logits_btv, mask_bt):
  """Max over the valid tokens of logits the caller holds. Returns (B, V)."""
  neg = jnp.finfo(logits_btv.dtype).min
  return lexical_pooling.max_over_tokens(jnp.where(mask_bt[..., None], logits_btv, neg))


def lexical_vector(max_logits_bv, vocab_mask_v=None):
  """SPLADE-max: v = max over valid tokens of log(1 + ReLU(Z)). Returns (B, V) ≥ 0.

  Takes the max-pooled logits z = max_t Z (B, V) (`LexicalHead` with a pool mask, or
  `masked_max`): since log1p∘relu is monotone, the max can be taken on the logits first.
  `vocab_mask_v` (V,) bool zeroes entries that are not words ([CLS], [PAD], ...).
  """
  v_bv = jnp.log1p(jax.nn.relu(max_logits_bv))
  if vocab_mask_v is not None:
    v_bv = jnp.where(vocab_mask_v, v_bv, 0.0)
  return constrain(v_bv, ("batch", "vocab"))


def bottleneck(max_logits_bv, embedding_vd, vocab_mask_v=None):
  """Lexicon bottleneck: a = softmax(max_t Z), b = a · sg(E). Returns (a (B, V), b (B, D)).

  Takes the max-pooled logits z = max_t Z (B, V), as `lexical_vector` does."""
  z_bv = max_logits_bv
  if vocab_mask_v is not None:
    z_bv = jnp.where(vocab_mask_v, z_bv, jnp.finfo(z_bv.dtype).min)
  a_bv = jax.nn.softmax(z_bv, axis=-1)
  b_bd = a_bv @ jax.lax.stop_gradient(embedding_vd).astype(a_bv.dtype)
  return a_bv, b_bd


def l2_normalise(x, eps: float = 1e-6):
  """x (..., D) divided by its L2 norm along the last axis (at least eps)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)
