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
from lexmo_jax.phases.lexmlm import self_prediction
from lexmo_jax.phases.lexmmm import caption_word_distribution


def lexical_vectors(ctx: PhaseContext, params, batch, rng=None, with_logits: bool = False):
  """Text and motion lexical vectors of a batch: ((B, V), (B, V)).

  With `with_logits`, also the text's per-token logits (B, L, V) and the motion's max-pooled
  logits (B, V), which the anchoring terms read.
  """
  k_text, k_motion = jax.random.split(rng) if rng is not None else (None, None)
  am = batch["attention_mask"]
  words = vocab_mask(ctx.constants)
  text_logits = ctx.apply(params, LexMo.text_logits, batch["input_ids"], am, rng=k_text)
  v_text = lexical.lexical_vector(text_logits, am.astype(bool), words)
  motion_logits, mask = ctx.apply(params, LexMo.motion_logits, batch["motion"],
                                  batch["motion_mask"], rng=k_motion)
  v_motion = lexical.lexical_vector(motion_logits, mask, words)
  if not with_logits:
    return v_text, v_motion
  return v_text, v_motion, text_logits, lexical.masked_max(motion_logits, mask)


def anchoring_terms(ctx: PhaseContext, batch, text_logits, motion_max_bv):
  """Terms that keep both sides' coordinates on their words while they align.

  text_self_prediction: the text head still predicts each word piece of the caption as
  itself (LexMLM's term); motion_bag_of_words: the motion's word distribution
  softmax(max Z) still matches its caption's informative words (LexMMM's term). Without
  them, contrastive training is free to move what a caption or motion says onto any
  coordinates, and the space stops being readable. Also returns (B, V) the caption's
  informative word pieces (weight > 0), the words each pair's vectors may use.
  """
  ids, am = batch["input_ids"], batch["attention_mask"]
  words = vocab_mask(ctx.constants)
  self_loss = self_prediction(text_logits, ids, am, jnp.zeros_like(ids, bool),
                              ctx.constants["word_weights"])
  z_bv = jnp.where(words, motion_max_bv, jnp.finfo(motion_max_bv.dtype).min)
  target_bv = caption_word_distribution(ids, am, ctx.constants["word_weights"])
  bow_loss = -jnp.mean(jnp.sum(target_bv * jax.nn.log_softmax(z_bv, axis=-1), axis=-1))
  return self_loss, bow_loss, target_bv > 0


def loss(ctx: PhaseContext, params, batch, rng, step):
  """LexCMLP's objective: symmetric InfoNCE of the L2-normalised lexical vectors (learnable
  temperature, capped by max_logit_scale) + flops_weight (quadratic warm-up) · FLOPS of both
  sides + the anchoring terms and off_caption_weight · off-caption L1 of both sides.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T), batch["input_ids"] and
  batch["attention_mask"] (B, L). Returns (total, terms): contrastive, flops_text/motion,
  flops_weight, temperature, text_self_prediction, motion_bag_of_words,
  off_caption_text/motion (summed weight per vector), t2m_batch_accuracy and
  text_terms/motion_terms (non-zero words per vector).
  """
  c = ctx.loss_config
  v_text, v_motion, text_logits, motion_max = lexical_vectors(ctx, params, batch, rng,
                                                              with_logits=True)
  scale = ctx.apply_pure(params, LexMo.logit_scale)
  if not c.learn_temperature:
    scale = jax.lax.stop_gradient(scale)
  scale = jnp.minimum(scale, c.max_logit_scale)
  nce, sims = losses.info_nce(lexical.l2_normalise(v_text), lexical.l2_normalise(v_motion), scale)
  flops_weight = c.flops_weight * losses.warmup_quadratic(step, c.flops_warmup_steps)
  flops_text, flops_motion = losses.flops_penalty(v_text), losses.flops_penalty(v_motion)
  self_loss, bow_loss, caption_words_bv = anchoring_terms(ctx, batch, text_logits, motion_max)
  off_text = losses.off_target_l1(v_text, caption_words_bv)
  off_motion = losses.off_target_l1(v_motion, caption_words_bv)
  total = (nce + flops_weight * (flops_text + flops_motion)
           + c.text_self_prediction_weight * self_loss + c.motion_bag_of_words_weight * bow_loss
           + c.off_caption_weight * (off_text + off_motion))
  return total, {"contrastive": nce, "flops_text": flops_text, "flops_motion": flops_motion,
                 "flops_weight": flops_weight, "temperature": 1.0 / scale,
                 "text_self_prediction": self_loss, "motion_bag_of_words": bow_loss,
                 "off_caption_text": off_text, "off_caption_motion": off_motion,
                 "t2m_batch_accuracy": losses.in_batch_accuracy(sims),
                 "text_terms": losses.nonzero_terms(v_text),
                 "motion_terms": losses.nonzero_terms(v_motion)}


def check_loss(loss, check) -> None:
  """Refuses bad LexCMLP loss fields: positive temperature and logit-scale cap,
  non-negative weights and warm-up."""
  check.require(loss.temperature_init > 0, "temperature_init", "must be positive")
  check.require(loss.max_logit_scale > 0, "max_logit_scale", "must be positive")
  check.non_negative("flops_weight", "flops_warmup_steps", "text_self_prediction_weight",
                     "motion_bag_of_words_weight", "off_caption_weight")


def make_phase(loss_config) -> Phase:
  """LexCMLP; alignment starts at `loss_config.temperature_init` (from init_from as from
  scratch: the model's temperature is initialised to it too)."""
  temperature_init = loss_config.temperature_init

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
      needs_text_statistics=True,
      prepare_params=set_temperature,
  )
