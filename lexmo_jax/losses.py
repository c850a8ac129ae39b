"""The loss terms the phases combine. All return float32 scalars."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def masked_cross_entropy(logits_blv, targets_bl, weights_bl):
  """Mean token cross-entropy over the positions where `weights_bl` is set."""
  losses = optax.softmax_cross_entropy_with_integer_labels(logits_blv.astype(jnp.float32),
                                                           targets_bl)
  weights = weights_bl.astype(jnp.float32)
  return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def masked_accuracy(logits_blv, targets_bl, weights_bl):
  hits = (jnp.argmax(logits_blv, axis=-1) == targets_bl).astype(jnp.float32)
  weights = weights_bl.astype(jnp.float32)
  return jnp.sum(hits * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def masked_mse(pred_bnp, target_bnp, weights_bn):
  """Mean squared error per value, averaged over the tokens where `weights_bn` is set."""
  per_token = jnp.mean(jnp.square(pred_bnp - target_bnp), axis=-1)
  weights = weights_bn.astype(jnp.float32)
  return jnp.sum(per_token * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def info_nce(x_bk, y_bk, scale):
  """Symmetric InfoNCE with paired rows as positives; `scale` is 1/τ.

  Returns (loss, similarity matrix (B, B)). Rows are assumed L2-normalised.
  """
  sims_bb = scale * (x_bk @ y_bk.T)
  labels = jnp.arange(sims_bb.shape[0])
  loss_xy = optax.softmax_cross_entropy_with_integer_labels(sims_bb, labels).mean()
  loss_yx = optax.softmax_cross_entropy_with_integer_labels(sims_bb.T, labels).mean()
  return 0.5 * (loss_xy + loss_yx), sims_bb


def flops_penalty(v_bv):
  """FLOPS regulariser Σ_j (mean_b v_bj)²: pushes rarely-used words to zero weight."""
  return jnp.sum(jnp.square(jnp.mean(jnp.abs(v_bv), axis=0)))


def in_batch_accuracy(sims_bb):
  """Fraction of rows whose best column is their own pair."""
  return jnp.mean((jnp.argmax(sims_bb, axis=-1) == jnp.arange(sims_bb.shape[0])).astype(
      jnp.float32))


def nonzero_terms(v_bv):
  """Mean number of words with non-zero weight per vector."""
  return jnp.mean(jnp.sum((v_bv > 0).astype(jnp.float32), axis=-1))


def warmup_quadratic(step, warmup_steps: int):
  if warmup_steps <= 0:
    return jnp.float32(1.0)
  return jnp.minimum(1.0, (step.astype(jnp.float32) + 1.0) / warmup_steps) ** 2

