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


def lexical_vectors(ctx: PhaseContext, params, batch, rng=None, with_text_logits: bool = False):
  """Text and motion lexical vectors of a batch and the motion's max-pooled logits:
  ((B, V), (B, V), (B, V)), then the text's per-token logits (B, L, V) with
  `with_text_logits` (else None).

  Neither side's per-token logits are held unless asked for (the fused pooling of
  `lexical_pooling`); the text's are when self-prediction reads them.
  """
  k_text, k_motion = jax.random.split(rng) if rng is not None else (None, None)
  ids, am = batch["input_ids"], batch["attention_mask"]
  words = vocab_mask(ctx.constants)
  text_logits = None
  if with_text_logits:
    text_logits = ctx.apply(params, LexMo.text_logits, ids, am, rng=k_text)
    z_text = lexical.masked_max(text_logits, am.astype(bool))
  else:
    z_text = ctx.apply(params, LexMo.text_max_logits, ids, am, rng=k_text)
  z_motion = ctx.apply(params, LexMo.motion_max_logits, batch["motion"], batch["motion_mask"],
                       rng=k_motion)
  return (lexical.lexical_vector(z_text, words), lexical.lexical_vector(z_motion, words),
          z_motion, text_logits)


def anchoring_terms(ctx: PhaseContext, batch, text_logits, motion_max_bv):
  """Terms that keep both sides' coordinates on their words while they align.

  text_self_prediction: the text head still predicts each word piece of the caption as
  itself (LexMLM's term; None, and the caption's per-token logits never formed, when
  `text_logits` is None); motion_bag_of_words: the motion's word distribution
  softmax(max Z) still matches its caption's informative words (LexMMM's term). Without
  them, contrastive training is free to move what a caption or motion says onto any
  coordinates, and the space stops being readable. Also returns (B, V) the caption's
  informative word pieces (weight > 0), the words each pair's vectors may use.
  """
  ids, am = batch["input_ids"], batch["attention_mask"]
  words = vocab_mask(ctx.constants)
  self_loss = None
  if text_logits is not None:
    self_loss = self_prediction(text_logits, ids, am, jnp.zeros_like(ids, bool),
                                ctx.constants["word_weights"])
  z_bv = jnp.where(words, motion_max_bv, jnp.finfo(motion_max_bv.dtype).min)
  target_bv = caption_word_distribution(ids, am, ctx.constants["word_weights"])
  bow_loss = -jnp.mean(jnp.sum(target_bv * jax.nn.log_softmax(z_bv, axis=-1), axis=-1))
  return self_loss, bow_loss, target_bv > 0


def alignment(ctx: PhaseContext, params, logit_scale_method, v_text, v_motion, step):
  """LexCMLP's objective proper on lexical vectors (B, V) of paired captions and motions:
  symmetric InfoNCE of the L2-normalised vectors at the model's learnable temperature
  (`logit_scale_method`; capped by max_logit_scale, frozen unless learn_temperature) +
  flops_weight (quadratic warm-up) · FLOPS of both sides. Returns (total, terms):
  contrastive, flops_text/motion, flops_weight, temperature, t2m_batch_accuracy and
  text_terms/motion_terms (non-zero words per vector)."""
  c = ctx.loss_config
  scale = ctx.apply_pure(params, logit_scale_method)
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


def loss(ctx: PhaseContext, params, batch, rng, step):
  """LexCMLP's objective: symmetric InfoNCE of the L2-normalised lexical vectors (learnable
  temperature, capped by max_logit_scale) + flops_weight (quadratic warm-up) · FLOPS of both
  sides + the anchoring terms and off_caption_weight · off-caption L1 of both sides.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T), batch["input_ids"] and
  batch["attention_mask"] (B, L). Returns (total, terms): contrastive, flops_text/motion,
  flops_weight, temperature, text_self_prediction (only where its weight is not 0),
  motion_bag_of_words,
  off_caption_text/motion (summed weight per vector), t2m_batch_accuracy and
  text_terms/motion_terms (non-zero words per vector).
  """
  c = ctx.loss_config
  v_text, v_motion, motion_max, text_logits = lexical_vectors(
      ctx, params, batch, rng, with_text_logits=c.text_self_prediction_weight > 0)
  total, terms = alignment(ctx, params, LexMo.logit_scale, v_text, v_motion, step)
  self_loss, bow_loss, caption_words_bv = anchoring_terms(ctx, batch, text_logits, motion_max)
  off_text = losses.off_target_l1(v_text, caption_words_bv)
  off_motion = losses.off_target_l1(v_motion, caption_words_bv)
  total = (total + c.motion_bag_of_words_weight * bow_loss
           + c.off_caption_weight * (off_text + off_motion))
  terms.update({"motion_bag_of_words": bow_loss, "off_caption_text": off_text,
                "off_caption_motion": off_motion})
  if self_loss is not None:
    total = total + c.text_self_prediction_weight * self_loss
    terms["text_self_prediction"] = self_loss
  return total, terms


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
