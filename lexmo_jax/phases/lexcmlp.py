"""Phase 4, LexCMLP (alignment).

Symmetric InfoNCE over the L2-normalised lexical vectors of paired motion and text (learnable
temperature), plus the FLOPS sparsity penalty on each side, its weight warmed up.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lexmo_jax import losses
from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask


def lexical_vectors(ctx: PhaseContext, params, batch, rng=None):
  """Text and motion lexical vectors of a batch: ((B, V), (B, V))."""
  k_text, k_motion = jax.random.split(rng) if rng is not None else (None, None)
  am = batch["attention_mask"]
  text_logits = ctx.apply(params, LexMo.text_logits, batch["input_ids"], am, rng=k_text)
  v_text = lexical.lexical_vector(text_logits, am.astype(bool), vocab_mask(ctx.constants))
  motion_logits, mask = ctx.apply(params, LexMo.motion_logits, batch["motion"],
                                  batch["motion_mask"], rng=k_motion)
  v_motion = lexical.lexical_vector(motion_logits, mask, vocab_mask(ctx.constants))
  return v_text, v_motion


def loss(ctx: PhaseContext, params, batch, rng, step):
  c = ctx.loss_config
  v_text, v_motion = lexical_vectors(ctx, params, batch, rng)
  scale = ctx.apply_pure(params, LexMo.logit_scale)
  if not c.learn_temperature:
    scale = jax.lax.stop_gradient(scale)
  scale = jnp.minimum(scale, c.max_logit_scale)
  nce, sims = losses.info_nce(lexical.l2_normalise(v_text), lexical.l2_normalise(v_motion), scale)
  flops_weight = c.flops_weight * losses.warmup_quadratic(step, c.flops_warmup_steps)
  flops_text, flops_motion = losses.flops_penalty(v_text), losses.flops_penalty(v_motion)
  total = nce + flops_weight * (flops_text + flops_motion)
  return total, {"contrastive": nce, "flops_text": flops_text, "flops_motion": flops_motion,
                 "flops_weight": flops_weight, "temperature": 1.0 / scale,
                 "t2m_batch_accuracy": losses.in_batch_accuracy(sims),
                 "text_terms": losses.nonzero_terms(v_text),
                 "motion_terms": losses.nonzero_terms(v_motion)}


def make_phase(temperature_init: float) -> Phase:
  def set_temperature(params: dict, previous_phase: str) -> dict:
    """Alignment starts at the configured temperature, unless it resumes an alignment."""
    if previous_phase == "lexcmlp":
      return params
    params = dict(params)
    log_scale = params["temperature"]["log_scale"]
    params["temperature"] = {"log_scale": jnp.full_like(log_scale, -math.log(temperature_init))}
    return params

  return Phase(
      name="lexcmlp",
      loss=loss,
      trainable=("text", "motion", "motion_head", "temperature"),
      batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
      follows=("lexmmm", "lexcmlp"),
      prepare_params=set_temperature,
  )
