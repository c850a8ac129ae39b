"""The loss terms the phases combine. All return float32 scalars."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def masked_cross_entropy(logits_blv, targets_bl, weights_bl):
  """Weighted mean token cross-entropy (nats): logits (B, L, V), targets (B, L) int ids,
  weights (B, L) (bool or float; 0 leaves a position out). Returns ()."""
  losses = optax.softmax_cross_entropy_with_integer_labels(logits_blv.astype(jnp.float32),
                                                           targets_bl)
  weights = weights_bl.astype(jnp.float32)
  return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def masked_accuracy(logits_blv, targets_bl, weights_bl):
  """Weighted share of positions whose arg-max logit is the target: shapes as
  `masked_cross_entropy`. Returns () in [0, 1]."""
  hits = (jnp.argmax(logits_blv, axis=-1) == targets_bl).astype(jnp.float32)
  weights = weights_bl.astype(jnp.float32)
  return jnp.sum(hits * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def masked_mse(pred_bnp, target_bnp, weights_bn):
  """Mean squared error per value of (B, N, P) predictions and targets, averaged over the
  tokens where weights (B, N) are set. Returns ()."""
  per_token = jnp.mean(jnp.square(pred_bnp - target_bnp), axis=-1)
  weights = weights_bn.astype(jnp.float32)
  return jnp.sum(per_token * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def info_nce(x_bk, y_bk, scale, excluded_bb=None):
  """Symmetric InfoNCE with paired rows as positives; `scale` is 1/τ. The pairs set in
  `excluded_bb` (B, B) bool, off the diagonal, are left out of the negatives (TMR's filtering,
  `similar_caption_mask`).

  Returns (loss, similarity matrix (B, B)). Rows are assumed L2-normalised.
  """
  sims_bb = scale * (x_bk @ y_bk.T)
  if excluded_bb is not None:
    sims_bb = jnp.where(excluded_bb, -jnp.inf, sims_bb)
  labels = jnp.arange(sims_bb.shape[0])
  loss_xy = optax.softmax_cross_entropy_with_integer_labels(sims_bb, labels).mean()
  loss_yx = optax.softmax_cross_entropy_with_integer_labels(sims_bb.T, labels).mean()
  return 0.5 * (loss_xy + loss_yx), sims_bb


def flops_penalty(v_bv):
  """SPLADE's FLOPS regulariser Σ_j (mean_b |v_bj|)² of lexical vectors (B, V). Returns ().

  Pushes words that many vectors of the batch use towards zero weight (Paria et al. 2020).
  """
  return jnp.sum(jnp.square(jnp.mean(jnp.abs(v_bv), axis=0)))


def off_target_l1(v_bv, on_target_bv):
  """Σ_j v_bj over the words outside each row's target set, averaged over rows. Returns ().

  FLOPS is a penalty on how often a word is used across the batch; this one says which words
  a vector may use at all (those of its caption), so the weights that do not describe the
  input fall to exactly zero instead of lingering at a flat level.
  """
  return jnp.mean(jnp.sum(jnp.where(on_target_bv, 0.0, v_bv), axis=-1))


def in_batch_accuracy(sims_bb):
  """Share of rows of a (B, B) similarity matrix whose best column is their own pair."""
  return jnp.mean((jnp.argmax(sims_bb, axis=-1) == jnp.arange(sims_bb.shape[0])).astype(
      jnp.float32))


def nonzero_terms(v_bv):
  """Mean number of words with non-zero weight per lexical vector (B, V). Returns ()."""
  return jnp.mean(jnp.sum((v_bv > 0).astype(jnp.float32), axis=-1))


def warmup_quadratic(step, warmup_steps: int):
  """min(1, (step + 1) / warmup_steps)², SPLADE's FLOPS warm-up; 1 when warmup_steps ≤ 0."""
  if warmup_steps <= 0:
    return jnp.float32(1.0)
  return jnp.minimum(1.0, (step.astype(jnp.float32) + 1.0) / warmup_steps) ** 2


def similar_caption_mask(sentence_bk, threshold: float):
  """(B, B) bool: the off-diagonal pairs whose captions' sentence embeddings (B, K), unit norm,
  are closer than TMR's `threshold_selfsim` (on TMR's [0, 1] scale: cosine above
  2·threshold − 1). TMR leaves these out of the contrastive negatives: two captions that say
  the same thing are not a mismatch."""
  sims_bb = sentence_bk @ sentence_bk.T
  return (sims_bb > 2.0 * threshold - 1.0) & ~jnp.eye(sims_bb.shape[0], dtype=bool)


def masked_smooth_l1(pred, target, mask):
  """Smooth L1 (β = 1, PyTorch's SmoothL1Loss) averaged over the values of the positions set in
  `mask` (pred's shape without its last axis). Returns ()."""
  per_position = jnp.mean(optax.huber_loss(pred, target, delta=1.0), axis=-1)
  weights = mask.astype(jnp.float32)
  return jnp.sum(per_position * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def gaussian_kl(q, p):
  """KL(q ‖ p) of diagonal Gaussians given as (μ, log σ²), averaged over every dimension (TMR's
  `KLLoss`). Returns ()."""
  mu_q, logvar_q = q
  mu_p, logvar_p = p
  ratio = logvar_q - logvar_p
  return jnp.mean(0.5 * (jnp.exp(ratio) + jnp.square(mu_p - mu_q) / jnp.exp(logvar_p) - 1.0
                         - ratio))
