"""The dense TMR baseline (Petrovich et al., ICCV 2023): TEMOS's motion synthesis from text
and from motion, plus a contrastive term whose negatives leave out pairs of near-identical
captions. `configs/baselines/tmr.py` holds its recipe.

L = λ_recons · (SmoothL1(motion from text) + SmoothL1(motion from motion))
  + λ_KL · (KL(text‖motion) + KL(motion‖text) + KL(text‖N(0, I)) + KL(motion‖N(0, I)))
  + λ_latent · SmoothL1(z_text, z_motion)
  + λ_contrastive · InfoNCE(z_text, z_motion; τ, filtered)
with TMR's weights (1, 1e-5, 1e-5, 0.1), τ = 0.1, z sampled from each side's Gaussian. The
filter reads a sentence embedding of each training caption, computed once at start by
`tmr.sentence_encoder` (TMR: all-mpnet-base-v2; default here the packaged all-MiniLM-L6-v2).
Reconstruction is averaged over the valid frames (TMR averages over the zero-padded batch).
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax

from input_pipeline import humanml3d
from lexmo_jax import losses
from lexmo_jax.models import tmr as tmr_model
from lexmo_jax.models.tmr import TMRModel
from lexmo_jax.phases.base import Phase, PhaseContext

logger = logging.getLogger("lexmo_jax.train")


def _sample(rng, distribution, factor: float):
  """z = μ + factor · σ · ε (TMR's `fact`; 0 gives μ itself)."""
  mu, logvar = distribution
  if not factor:
    return mu
  return mu + factor * jnp.exp(0.5 * logvar) * jax.random.normal(rng, mu.shape, mu.dtype)


def loss(ctx: PhaseContext, params, batch, rng, step):
  """TMR's objective (module docstring). Reads batch["input_ids"], batch["attention_mask"]
  (B, L), batch["motion"] (B, T, F), batch["motion_mask"] (B, T) and batch["caption"] (B,),
  the row of constants["caption_sentences"] (captions, K)."""
  del step
  c = ctx.loss_config
  keys = jax.random.split(rng, 6)
  motion, mask = batch["motion"], batch["motion_mask"]
  text = ctx.apply(params, TMRModel.text_distribution, batch["input_ids"],
                   batch["attention_mask"], rng=keys[0])
  moving = ctx.apply(params, TMRModel.motion_distribution, motion, mask, rng=keys[1])
  z_text = _sample(keys[2], text, c.sample_factor)
  z_motion = _sample(keys[3], moving, c.sample_factor)
  from_text = ctx.apply(params, TMRModel.decode, z_text, mask, rng=keys[4])
  from_motion = ctx.apply(params, TMRModel.decode, z_motion, mask, rng=keys[5])
  recons = (losses.masked_smooth_l1(from_text, motion, mask)
            + losses.masked_smooth_l1(from_motion, motion, mask))
  standard = (jnp.zeros_like(text[0]), jnp.zeros_like(text[1]))
  kl = (losses.gaussian_kl(text, moving) + losses.gaussian_kl(moving, text)
        + losses.gaussian_kl(moving, standard) + losses.gaussian_kl(text, standard))
  latent = jnp.mean(optax.huber_loss(z_text, z_motion, delta=1.0))
  sentences = ctx.constants["caption_sentences"][batch["caption"]]
  excluded = losses.similar_caption_mask(sentences, c.threshold_selfsim)
  nce, sims = losses.info_nce(_unit(z_text), _unit(z_motion), 1.0 / c.temperature, excluded)
  total = (c.recons_weight * recons + c.kl_weight * kl + c.latent_weight * latent
           + c.contrastive_weight * nce)
  return total, {"recons": recons, "kl": kl, "latent": latent, "contrastive": nce,
                 "filtered_negatives": excluded.sum(1).astype(jnp.float32).mean(),
                 "t2m_batch_accuracy": losses.in_batch_accuracy(sims)}


def _unit(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def caption_sentences(config, tok, split_data, workdir):
  """{"caption_sentences": (captions, K) float32}: the unit sentence embedding of every
  training caption, in batch["caption"]'s order (`humanml3d.all_captions`)."""
  del tok, workdir
  from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
  encoder = sentence_encoder.SentenceEncoder.from_pretrained(config.tmr.sentence_encoder)
  captions = humanml3d.all_captions(split_data.pairs)
  logger.info("TMR's negative filter: sentence embeddings of %d training captions",
              len(captions))
  return {"caption_sentences": np.asarray(encoder.encode(captions), np.float32)}


def check_loss(loss_config, check) -> None:
  check.require(loss_config.temperature > 0, "temperature", "must be positive")
  check.rate("threshold_selfsim")
  check.non_negative("recons_weight", "kl_weight", "latent_weight", "contrastive_weight",
                     "sample_factor")


def check_config(config, check) -> None:
  """Refuses bad sizes and a run without a pre-trained text encoder (TMR keeps it frozen:
  from random weights its features would say nothing)."""
  t = config.tmr
  check.positive("tmr.latent_dim", "tmr.num_layers", "tmr.num_heads", "tmr.mlp_dim")
  check.require(t.latent_dim % t.num_heads == 0, "tmr.num_heads",
                f"tmr.latent_dim={t.latent_dim} is not divisible by num_heads={t.num_heads}")
  check.require(0.0 <= t.dropout_rate < 1.0, "tmr.dropout_rate",
                f"must lie in [0, 1), got {t.dropout_rate}")
  check.require(bool(config.text.init), "text.init", "TMR reads a frozen pre-trained text "
                "encoder's token features: pass --config.text.init=<a Hugging Face "
                "DistilBERT/BERT folder> (the :runlocal variant uses the packaged MiniLM)")
  check.require(not config.motion.get("init"), "motion.init", "TMR's motion encoder is an "
                "ACTOR encoder over frames, not an image ViT: leave motion.init empty")
  check.existing_path("tmr.sentence_encoder", "a sentence-transformers folder for the "
                      "negative filter")


def model(config, constants):
  del constants
  return TMRModel(tmr_model.model_config(config))


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="tmr", loss=loss,
               trainable=("text_actor", "motion_actor", "motion_decoder"),
               batch_keys=("motion", "motion_mask", "input_ids", "attention_mask", "caption"),
               model=model, constants=caption_sentences, retrieves=True)
