"""Phase 3, LexMMM (motion → words).

The motion lexical head's logits, max-pooled over tokens, give the bottleneck b_motion; it
feeds the weak decoder of LexMLM, which must rebuild the paired caption (50% masked). The text encoder is
frozen, and by default so is the decoder: the motion has to speak the decoder's language.

A motion head copied from the text head starts with a nearly flat word distribution a
(entropy ≈ log V): the decoder's gradient through softmax(max Z) is then ~1/V and the phase
barely moves. The bag-of-words term, cross-entropy between a and the caption's words
(weighted by informativeness), gives the head a direct signal of which words describe the
motion; `loss.bag_of_words_weight=0` leaves the decoder objective alone.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask
from lexmo_jax.phases.lexmlm import decoder_reconstruction


def caption_word_distribution(input_ids_bl, attention_mask_bl, word_weight_v):
  """(B, V): each caption's words, weighted by informativeness, summing to one."""
  b = input_ids_bl.shape[0]
  weights_bl = jnp.where(attention_mask_bl > 0, word_weight_v[input_ids_bl], 0.0)
  target_bv = jnp.zeros((b, word_weight_v.shape[0]), jnp.float32).at[
      jnp.arange(b)[:, None], input_ids_bl].max(weights_bl)
  return target_bv / jnp.maximum(target_bv.sum(-1, keepdims=True), 1e-6)


def loss(ctx: PhaseContext, params, batch, rng, step):
  """LexMMM's objective: the weak decoder's cross-entropy rebuilding the masked caption from
  the motion's bottleneck b_motion + bag_of_words_weight · cross-entropy between the motion's
  word distribution and the caption's informative words.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T), batch["input_ids"] and
  batch["attention_mask"] (B, L). Returns (total, terms): mlm_decoder, bag_of_words (nats),
  decoder_accuracy and decoder_accuracy_zero_bottleneck.
  """
  del step
  c = ctx.loss_config
  k_drop, k_dec = jax.random.split(rng)
  z_bv = ctx.apply(params, LexMo.motion_max_logits, batch["motion"], batch["motion_mask"],
                   rng=k_drop)
  embeddings = ctx.apply_pure(params, LexMo.word_embeddings)
  a_bv, b_bd = lexical.bottleneck(z_bv, embeddings, vocab_mask(ctx.constants))
  dec_loss, dec_acc, zero_acc = decoder_reconstruction(ctx, params, batch, b_bd, k_dec)
  target_bv = caption_word_distribution(batch["input_ids"], batch["attention_mask"],
                                        ctx.constants["word_weights"])
  bow_loss = -jnp.mean(jnp.sum(target_bv * jnp.log(a_bv + 1e-9), axis=-1))
  total = dec_loss + c.bag_of_words_weight * bow_loss
  return total, {"mlm_decoder": dec_loss, "decoder_accuracy": dec_acc,
                 "decoder_accuracy_zero_bottleneck": zero_acc, "bag_of_words": bow_loss}


def copy_text_head(params: dict, previous_phase: str) -> dict:
  """The motion head starts as a copy of the text head (projection = word embeddings)."""
  if previous_phase in ("lexmmm", "lexcmlp"):
    return params
  text = params["text"]
  head = dict(text["mlm_head"])
  head["projection"] = text["word_embeddings"]
  params = dict(params)
  params["motion_head"] = head
  return params


def check_loss(loss, check) -> None:
  """Refuses bad LexMMM loss fields: the decoder mask rate in [0, 1], a non-negative
  bag-of-words weight."""
  check.rate("decoder_mask_rate")
  check.non_negative("bag_of_words_weight")


def make_phase(loss_config) -> Phase:
  """LexMMM; `loss_config.train_decoder` also trains the weak decoder."""
  trainable = ("motion", "motion_head") + (
      ("text_decoder",) if loss_config.train_decoder else ())
  return Phase(
      name="lexmmm",
      loss=loss,
      trainable=trainable,
      batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
      follows=("cmmm", "lexmmm"),
      needs_text_statistics=True,
      prepare_params=copy_text_head,
  )

