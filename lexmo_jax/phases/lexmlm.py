"""Phase 1, LexMLM (text only).

L = MLM_enc + w · MLM_dec. The encoder rebuilds the 30%-masked caption; the weak decoder
rebuilds the 50%-masked caption from the lexicon bottleneck b of the encoder's logits.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lexmo_jax import losses
from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases import masking
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask


def caption_masks(ctx: PhaseContext, rng, batch, rate: float):
  """Whole-word mask of the caption, informativeness-weighted as the config says."""
  c = ctx.loss_config
  return masking.whole_word_mask(
      rng, batch["input_ids"], batch["attention_mask"], rate=rate,
      is_continuation_v=ctx.constants["is_continuation"],
      word_weight_v=ctx.constants["word_weights"], strength=c.weighting_strength)


# Rows of a batch on which the decoder also runs from a zeroed bottleneck, to show what b adds.
ZERO_BOTTLENECK_ROWS = 8


def decoder_reconstruction(ctx: PhaseContext, params, batch, b_bd, rng):
  """The weak decoder on the decoder-masked caption, given bottleneck b.

  Returns (cross-entropy, accuracy, accuracy from a zeroed b): the last one, on the first
  rows of the batch without gradient, is the baseline b must beat for the bottleneck to
  carry the caption's meaning.
  """
  k_mask, k_drop = jax.random.split(rng)
  ids, am = batch["input_ids"], batch["attention_mask"]
  dec_mask = caption_masks(ctx, k_mask, batch, ctx.loss_config.decoder_mask_rate)
  dec_ids = jnp.where(dec_mask, ctx.constants["mask_id"], ids)
  logits = ctx.apply(params, LexMo.decode, b_bd, dec_ids, am, rng=k_drop)
  rows = min(ZERO_BOTTLENECK_ROWS, ids.shape[0])
  zero_logits = ctx.apply(jax.lax.stop_gradient(params), LexMo.decode,
                          jnp.zeros_like(b_bd[:rows]), dec_ids[:rows], am[:rows])
  return (losses.masked_cross_entropy(logits, ids, dec_mask),
          losses.masked_accuracy(logits, ids, dec_mask),
          losses.masked_accuracy(zero_logits, ids[:rows], dec_mask[:rows]))


def self_prediction(logits_blv, ids_bl, attention_mask_bl, predicted_bl, word_weight_v):
  """Cross-entropy of the MLM head predicting each unmasked word piece as itself.

  BERT's head learns this from the positions it leaves unchanged, and it is what makes a
  SPLADE vector lexical: at each position the head weighs the word there (and its near
  synonyms). Positions count by their word's informativeness (`word_weight_v`, 0 for
  special tokens), so the head learns to name the words that describe motions, not "a" or
  "person"; the masked positions are left out.
  """
  weight_bl = jnp.where(attention_mask_bl.astype(bool) & ~predicted_bl,
                        word_weight_v[ids_bl], 0.0)
  return losses.masked_cross_entropy(logits_blv, ids_bl, weight_bl)


def loss(ctx: PhaseContext, params, batch, rng, step):
  """LexMLM's objective: MLM cross-entropy of the encoder on its masked caption words +
  decoder_weight · the weak decoder's cross-entropy rebuilding the (more heavily) masked
  caption from the lexicon bottleneck b_text + self_prediction_weight · self-prediction.

  Reads batch["input_ids"] and batch["attention_mask"] (B, L). Returns (total, terms):
  mlm_encoder, mlm_decoder, self_prediction (nats), encoder_accuracy, decoder_accuracy and
  decoder_accuracy_zero_bottleneck (shares of masked words predicted).
  """
  del step
  c = ctx.loss_config
  k_mask, k_corrupt, k_drop, k_dec = jax.random.split(rng, 4)
  ids, am = batch["input_ids"], batch["attention_mask"]
  enc_mask = caption_masks(ctx, k_mask, batch, c.encoder_mask_rate)
  enc_ids = masking.corrupt(k_corrupt, ids, enc_mask, mask_id=ctx.constants["mask_id"],
                            vocab_size=ctx.model.config.text.vocab_size,
                            replace_with_mask=c.replace_with_mask,
                            replace_with_random=c.replace_with_random)
  logits = ctx.apply(params, LexMo.text_logits, enc_ids, am, rng=k_drop)
  enc_loss = losses.masked_cross_entropy(logits, ids, enc_mask)
  embeddings = ctx.apply_pure(params, LexMo.word_embeddings)
  _, b_bd = lexical.bottleneck(lexical.masked_max(logits, am.astype(bool)), embeddings,
                               vocab_mask(ctx.constants))
  dec_loss, dec_acc, zero_acc = decoder_reconstruction(ctx, params, batch, b_bd, k_dec)
  self_loss = self_prediction(logits, ids, am, enc_mask, ctx.constants["word_weights"])
  total = enc_loss + c.decoder_weight * dec_loss + c.self_prediction_weight * self_loss
  return total, {"mlm_encoder": enc_loss, "mlm_decoder": dec_loss, "self_prediction": self_loss,
                 "encoder_accuracy": losses.masked_accuracy(logits, ids, enc_mask),
                 "decoder_accuracy": dec_acc, "decoder_accuracy_zero_bottleneck": zero_acc}


def check_loss(loss, check) -> None:
  """Refuses bad LexMLM loss fields: mask rates in [0, 1], replacement shares summing to
  at most 1, non-negative weights."""
  check.rate("encoder_mask_rate", "decoder_mask_rate")
  check.require(loss.replace_with_mask + loss.replace_with_random <= 1.0, "replace_with_mask",
                "replace_with_mask + replace_with_random must not exceed 1")
  check.non_negative("self_prediction_weight", "decoder_weight")


def make_phase(loss_config=None) -> Phase:
  """The phase (its settings need no config)."""
  del loss_config
  return PHASE


PHASE = Phase(
    name="lexmlm",
    loss=loss,
    trainable=("text", "text_decoder"),
    batch_keys=("input_ids", "attention_mask"),
    follows=(),
    needs_text_statistics=True,
)
