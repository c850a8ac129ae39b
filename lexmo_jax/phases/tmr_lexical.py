"""†TMR: TMR's two encoders with a lexical head each, the lexical vector in place of the dense
embedding, trained by LexCMLP's objective alone (symmetric InfoNCE over the L2-normalised
lexical vectors at a learnable temperature, plus the warmed-up FLOPS regulariser on each
side), from scratch: no LexMLM, CMMM or LexMMM before it. The text encoder stays frozen as in
TMR. `configs/baselines/tmr_lexical.py`.
"""
from __future__ import annotations

import jax

from lexmo_jax.models.tmr import TMRModel
from lexmo_jax.phases import lexcmlp, tmr
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask
from lexmo_jax.models import lexical


def loss(ctx: PhaseContext, params, batch, rng, step):
  """LexCMLP's contrastive and FLOPS terms on †TMR's lexical vectors (`lexcmlp.alignment`).
  Reads batch["input_ids"], batch["attention_mask"] (B, L), batch["motion"] (B, T, F) and
  batch["motion_mask"] (B, T)."""
  k_text, k_motion = jax.random.split(rng)
  words = vocab_mask(ctx.constants)
  z_text = ctx.apply(params, TMRModel.text_max_logits, batch["input_ids"],
                     batch["attention_mask"], rng=k_text)
  z_motion = ctx.apply(params, TMRModel.motion_max_logits, batch["motion"],
                       batch["motion_mask"], rng=k_motion)
  return lexcmlp.alignment(ctx, params, TMRModel.logit_scale,
                           lexical.lexical_vector(z_text, words),
                           lexical.lexical_vector(z_motion, words), step)


def check_loss(loss_config, check) -> None:
  check.require(loss_config.temperature_init > 0, "temperature_init", "must be positive")
  check.require(loss_config.max_logit_scale > 0, "max_logit_scale", "must be positive")
  check.non_negative("flops_weight", "flops_warmup_steps")


def check_config(config, check) -> None:
  tmr.check_config(config, check)


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="tmr_lexical", loss=loss,
               trainable=("text_actor", "motion_actor", "text_head", "motion_head",
                          "temperature"),
               batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
               model=tmr.model, retrieves=True)
