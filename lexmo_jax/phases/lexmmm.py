"""Phase 3, LexMMM (motion → words).

The motion lexical head gives per-token logits; their bottleneck b_motion feeds the weak
decoder of LexMLM, which must rebuild the paired caption (50% masked). The text encoder is
frozen, and by default so is the decoder: the motion has to speak the decoder's language.
"""
from __future__ import annotations

import jax

from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask
from lexmo_jax.phases.lexmlm import decoder_reconstruction


def loss(ctx: PhaseContext, params, batch, rng, step):
  del step
  k_drop, k_dec = jax.random.split(rng)
  logits, mask = ctx.apply(params, LexMo.motion_logits, batch["motion"], batch["motion_mask"],
                           rng=k_drop)
  embeddings = ctx.apply_pure(params, LexMo.word_embeddings)
  _, b_bd = lexical.bottleneck(logits, mask, embeddings, vocab_mask(ctx.constants))
  dec_loss, dec_acc = decoder_reconstruction(ctx, params, batch, b_bd, k_dec)
  return dec_loss, {"mlm_decoder": dec_loss, "decoder_accuracy": dec_acc}


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


def make_phase(train_decoder: bool) -> Phase:
  trainable = ("motion", "motion_head") + (("text_decoder",) if train_decoder else ())
  return Phase(
      name="lexmmm",
      loss=loss,
      trainable=trainable,
      batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
      follows=("cmmm", "lexmmm"),
      needs_text_statistics=True,
      prepare_params=copy_text_head,
  )


PHASE = make_phase(train_decoder=False)
