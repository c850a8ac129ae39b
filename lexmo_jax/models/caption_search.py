"""Greedy and beam search over a decoder's next-piece distribution, batched and jit-able.

Both take `next_log_probs(seqs_nl, t) -> (N, V)`: the log-probabilities of piece t + 1 of
each sequence given its pieces 0..t (later positions hold padding and must not matter, as
in a causal decoder). Sequences start with `start_id` at position 0 and are `max_length`
pieces long at most, the start included; a sequence ends with `end_id` and is padded after.

Beam search keeps `beam_size` live hypotheses per row; a hypothesis that ends leaves the beam
for the row's finished set, scored by its log-probability divided by GNMT's length penalty
((5 + n) / 6)^α (Wu et al. 2016; n the pieces after the start, end included). A row stops
when no live hypothesis is left or at `max_length`, where the live ones are finished as they
stand. The answer is the best finished hypothesis. With beam_size 1 this is greedy search.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

NextLogProbs = Callable[[jax.Array, jax.Array], jax.Array]


def _start(rows: int, max_length: int, start_id: int, pad_id: int) -> jax.Array:
  return jnp.full((rows, max_length), pad_id, jnp.int32).at[:, 0].set(start_id)


def greedy_search(next_log_probs: NextLogProbs, batch_size: int, max_length: int,
                  start_id: int, end_id: int, pad_id: int) -> tuple[jax.Array, jax.Array]:
  """The most probable next piece at every step.

  Returns:
    sequences (B, max_length) int32 and their log-probabilities (B,) float32.
  """
  if max_length < 2:
    raise ValueError(f"max_length must leave room for one piece after the start, got "
                     f"{max_length}")

  def cond(carry):
    t, _, done, _ = carry
    return (t < max_length - 1) & ~jnp.all(done)

  def body(carry):
    t, seqs, done, total = carry
    log_probs_nv = next_log_probs(seqs, t).astype(jnp.float32)
    piece = jnp.argmax(log_probs_nv, axis=-1).astype(jnp.int32)
    piece = jnp.where(done, pad_id, piece)
    gained = jnp.take_along_axis(log_probs_nv, piece[:, None], axis=-1)[:, 0]
    total = total + jnp.where(done, 0.0, gained)
    seqs = seqs.at[:, t + 1].set(piece)
    return t + 1, seqs, done | (piece == end_id), total

  init = (jnp.int32(0), _start(batch_size, max_length, start_id, pad_id),
          jnp.zeros((batch_size,), bool), jnp.zeros((batch_size,), jnp.float32))
  _, seqs, _, total = jax.lax.while_loop(cond, body, init)
  return seqs, total


def length_penalty(length, alpha: float):
  """GNMT's ((5 + n) / 6)^α; 1 when α = 0."""
  return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _keep_best(scores_a, seqs_a, scores_b, seqs_b, k: int):
  """The k best of two sets of hypotheses per row: scores (B, ·), sequences (B, ·, L)."""
  scores = jnp.concatenate([scores_a, scores_b], axis=1)
  seqs = jnp.concatenate([seqs_a, seqs_b], axis=1)
  best, idx = jax.lax.top_k(scores, k)
  return best, jnp.take_along_axis(seqs, idx[..., None], axis=1)


def beam_search(next_log_probs: NextLogProbs, batch_size: int, max_length: int, start_id: int,
                end_id: int, pad_id: int, beam_size: int,
                alpha: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """Beam search; `next_log_probs` sees B·beam_size rows (row b's beams are rows
  b·K … b·K + K − 1).

  Returns:
    sequences (B, max_length) int32 and their length-penalised scores (B,) float32.
  """
  seqs, scores = beam_search_hypotheses(next_log_probs, batch_size, max_length, start_id,
                                        end_id, pad_id, beam_size, alpha)
  return seqs[:, 0], scores[:, 0]


def beam_search_hypotheses(next_log_probs: NextLogProbs, batch_size: int, max_length: int,
                           start_id: int, end_id: int, pad_id: int, beam_size: int,
                           alpha: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """`beam_search`, returning every finished hypothesis: sequences (B, K, max_length), best
  first, and their length-penalised scores (B, K) (−inf where fewer than K finished)."""
  if beam_size < 1:
    raise ValueError(f"beam_size must be at least 1, got {beam_size}")
  if max_length < 2:
    raise ValueError(f"max_length must leave room for one piece after the start, got "
                     f"{max_length}")
  b, k = batch_size, beam_size
  neg = -jnp.inf

  def cond(carry):
    t, _, alive_score, _, _ = carry
    return (t < max_length - 1) & jnp.any(alive_score > neg)

  def body(carry):
    t, alive, alive_score, done, done_score = carry
    log_probs = next_log_probs(alive.reshape(b * k, max_length), t).astype(jnp.float32)
    vocab = log_probs.shape[-1]
    candidates = alive_score[..., None] + log_probs.reshape(b, k, vocab)
    score, flat = jax.lax.top_k(candidates.reshape(b, k * vocab), k)
    beam, piece = flat // vocab, (flat % vocab).astype(jnp.int32)
    seqs = jnp.take_along_axis(alive, beam[..., None], axis=1).at[:, :, t + 1].set(piece)
    live = score > neg
    ended = live & (piece == end_id)
    ended_score = jnp.where(ended, score / length_penalty(t + 1, alpha), neg)
    done_score, done = _keep_best(done_score, done, ended_score, seqs, k)
    return t + 1, seqs, jnp.where(ended, neg, score), done, done_score

  start = _start(b * k, max_length, start_id, pad_id).reshape(b, k, max_length)
  # Only the first beam is live at the start: k copies of one prefix would fill the beam
  # with duplicates.
  alive_score = jnp.full((b, k), neg).at[:, 0].set(0.0)
  init = (jnp.int32(0), start, alive_score, start, jnp.full((b, k), neg))
  t, alive, alive_score, done, done_score = jax.lax.while_loop(cond, body, init)
  # Hypotheses still live at max_length end there.
  forced = jnp.where(alive_score > neg, alive_score / length_penalty(t, alpha), neg)
  done_score, done = _keep_best(done_score, done, forced, alive, k)
  return done, done_score
