"""Whole-word masking whose choice of words follows their informativeness.

Word weights (V,) come from the training captions (`lexmo_jax.phases.informativeness`): a
word that says nothing about the motion ("a", "the", "person") is rarely or never chosen; a
descriptive motion word ("waltz", "clockwise", "jump") often. Words are drawn without
replacement with probability ∝ weight^strength (Gumbel top-k), a fixed fraction of each
caption's maskable words (weight > 0).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np



def word_starts(input_ids_bl, attention_mask_bl, is_continuation_v, maskable_v):
  """(B, L) bool: positions that begin a maskable word."""
  valid = attention_mask_bl.astype(bool) & maskable_v[input_ids_bl]
  return valid & ~is_continuation_v[input_ids_bl]


def whole_word_mask(rng, input_ids_bl, attention_mask_bl, *, rate: float, is_continuation_v,
                    word_weight_v, strength: float = 1.0):
  """Chooses round(rate × words) whole words per caption. Returns a (B, L) bool mask.

  `word_weight_v` is 0 for tokens that must never be masked (special tokens).
  """
  maskable_v = word_weight_v > 0
  starts_bl = word_starts(input_ids_bl, attention_mask_bl, is_continuation_v, maskable_v)
  # Each word piece belongs to the word begun by the last start at or before it.
  word_index_bl = jnp.cumsum(starts_bl.astype(jnp.int32), axis=1) - 1
  n_words_b = jnp.sum(starts_bl, axis=1)
  k_b = jnp.where(n_words_b > 0,
                  jnp.maximum(1, jnp.round(rate * n_words_b)).astype(jnp.int32), 0)
  gumbel_bl = jax.random.gumbel(rng, input_ids_bl.shape)
  log_w_bl = jnp.log(jnp.maximum(word_weight_v[input_ids_bl], 1e-6))
  score_bl = jnp.where(starts_bl, strength * log_w_bl + gumbel_bl, -jnp.inf)
  rank_bl = jnp.argsort(jnp.argsort(-score_bl, axis=1), axis=1)
  chosen_start_bl = starts_bl & (rank_bl < k_b[:, None])
  # Spread each chosen start to the pieces of its word.
  b, l = input_ids_bl.shape
  chosen_word_bl = jnp.zeros((b, l + 1), jnp.int32).at[
      jnp.arange(b)[:, None], jnp.where(starts_bl, word_index_bl, l)].max(
          chosen_start_bl.astype(jnp.int32)) > 0
  in_word_bl = attention_mask_bl.astype(bool) & maskable_v[input_ids_bl] & (word_index_bl >= 0)
  return in_word_bl & jnp.take_along_axis(chosen_word_bl, jnp.maximum(word_index_bl, 0), axis=1)


def corrupt(rng, input_ids_bl, mask_bl, *, mask_id: int, vocab_size: int,
            replace_with_mask: float, replace_with_random: float):
  """BERT corruption of the chosen positions: [MASK], a random token, or unchanged."""
  k_choice, k_token = jax.random.split(rng)
  u_bl = jax.random.uniform(k_choice, input_ids_bl.shape)
  random_bl = jax.random.randint(k_token, input_ids_bl.shape, 0, vocab_size, input_ids_bl.dtype)
  out = jnp.where(mask_bl & (u_bl < replace_with_mask), mask_id, input_ids_bl)
  use_random = mask_bl & (u_bl >= replace_with_mask) & (
      u_bl < replace_with_mask + replace_with_random)
  return jnp.where(use_random, random_bl, out)


def masking_rates(input_ids: np.ndarray, attention_mask: np.ndarray, *, rate: float,
                  is_continuation_v: np.ndarray, word_weight_v: np.ndarray,
                  strength: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """How often `whole_word_mask` masks each token over a caption corpus (one draw).

  Returns:
    (masked, seen): (V,) counts of the captions in which a token was masked, and in which it
    appeared at all; masked / seen is its masking rate.
  """
  continuation_v, weight_v = jnp.asarray(is_continuation_v), jnp.asarray(word_weight_v)
  mask = np.asarray(jax.jit(
      lambda r, i, a: whole_word_mask(r, i, a, rate=rate, is_continuation_v=continuation_v,
                                      word_weight_v=weight_v, strength=strength))(
          jax.random.key(seed), input_ids, attention_mask))
  vocab_size = word_weight_v.shape[0]
  valid = attention_mask.astype(bool)
  seen = np.bincount(input_ids[valid], minlength=vocab_size)
  masked = np.bincount(input_ids[mask & valid], minlength=vocab_size)
  return masked, seen
