"""Phase 2, CMMM (motion only).

Two independently masked views (50–75% of tokens each) of the same clip. L = MSE of the
masked tokens' normalised values, rebuilt by a light decoder, + InfoNCE between the views.
"""
from __future__ import annotations

import jax

from lexmo_jax import losses
from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.models.motion_encoder import tokenize
from lexmo_jax.phases.base import Phase, PhaseContext


def random_token_mask(rng, mask_bn, min_rate: float, max_rate: float):
  """Masks a per-clip random fraction in [min_rate, max_rate] of the valid tokens."""
  k_rate, k_token = jax.random.split(rng)
  rate_b = jax.random.uniform(k_rate, mask_bn.shape[:1], minval=min_rate, maxval=max_rate)
  return mask_bn & (jax.random.uniform(k_token, mask_bn.shape) < rate_b[:, None])


def loss(ctx: PhaseContext, params, batch, rng, step):
  """CMMM's objective: reconstruction_weight · MSE of the masked tokens of two views +
  contrastive_weight · InfoNCE between the views' projected [CLS] states.

  Reads batch["motion"] (B, T, F) and batch["motion_mask"] (B, T). Returns (total, terms):
  reconstruction, contrastive (nats) and view_accuracy (share of views matched in-batch).
  """
  del step
  c = ctx.loss_config
  motion, mmask = batch["motion"], batch["motion_mask"]
  targets_bnp, tmask_bn = tokenize(ctx.model.config.motion, motion, mmask)
  recon, pooled = [], []
  for view_rng in jax.random.split(rng, 2):
    k_mask, k_drop, k_dec = jax.random.split(view_rng, 3)
    masked_bn = random_token_mask(k_mask, tmask_bn, c.min_mask_rate, c.max_mask_rate)
    h, full_mask = ctx.apply(params, LexMo.motion_states, motion, mmask, masked_bn, rng=k_drop)
    pred = ctx.apply(params, LexMo.reconstruct, h, full_mask, rng=k_dec)
    recon.append(losses.masked_mse(pred, targets_bnp, masked_bn))
    pooled.append(lexical.l2_normalise(ctx.apply_pure(params, LexMo.project, h[:, 0])))
  recon_loss = 0.5 * (recon[0] + recon[1])
  nce_loss, sims = losses.info_nce(pooled[0], pooled[1], 1.0 / c.temperature)
  total = c.reconstruction_weight * recon_loss + c.contrastive_weight * nce_loss
  return total, {"reconstruction": recon_loss, "contrastive": nce_loss,
                 "view_accuracy": losses.in_batch_accuracy(sims)}


def check_loss(loss, check) -> None:
  """Refuses bad CMMM loss fields: mask rates in [0, 1] with min ≤ max, a positive
  temperature, non-negative weights."""
  check.rate("min_mask_rate", "max_mask_rate")
  check.require(loss.min_mask_rate <= loss.max_mask_rate, "min_mask_rate",
                "must not exceed loss.max_mask_rate")
  check.require(loss.temperature > 0, "temperature", "must be positive")
  check.non_negative("reconstruction_weight", "contrastive_weight")


def make_phase(loss_config=None) -> Phase:
  """The phase (its settings need no config)."""
  del loss_config
  return PHASE


PHASE = Phase(
    name="cmmm",
    loss=loss,
    trainable=("motion", "motion_decoder", "motion_projection"),
    batch_keys=("motion", "motion_mask"),
    follows=("lexmlm",),
)
