"""The captioning task: the pre-trained motion encoder learns to write its motion's caption.

A text decoder (`lexmo_jax.models.caption_decoder`) reads the motion's token states and its
heaviest words and is trained by teacher forcing: cross-entropy of each caption word piece
given the ones before it ([CLS] starts a caption, [SEP] ends it). It starts from a finished
LexMMM or LexCMLP workdir; the decoder's self-attention, MLP and output head start as the
text encoder's layers where their shapes allow, its cross-attention and memory projections
fresh. By default only the decoder trains (`loss.train_motion_encoder` also fine-tunes the
motion encoder and its lexical head, which then moves the lexical space the captioner reads).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext, vocab_mask


def teacher_forcing(ctx: PhaseContext, params, batch, rng):
  """(B, L − 1, K) logits over the output vocabulary (K pieces) of caption pieces 1.. given
  pieces ..t, the targets as positions in that vocabulary (B, L − 1) and their weights
  (B, L − 1) (1 on valid target pieces)."""
  k_memory, k_decoder = jax.random.split(rng)
  memory, memory_mask = ctx.apply(params, LexMo.caption_memory, batch["motion"],
                                  batch["motion_mask"], vocab_mask(ctx.constants), rng=k_memory)
  ids, am = batch["input_ids"], batch["attention_mask"]
  vocabulary_k = ctx.constants["caption_vocabulary"]
  logits = ctx.apply(params, LexMo.caption_logits, memory, memory_mask, ids[:, :-1],
                     am[:, :-1], vocab_ids_k=vocabulary_k, rng=k_decoder)
  # Every piece of a training caption is in the vocabulary (it is made of them).
  targets = jnp.searchsorted(vocabulary_k, ids[:, 1:]).clip(0, vocabulary_k.shape[0] - 1)
  return logits, targets, am[:, 1:].astype(jnp.float32)


def loss(ctx: PhaseContext, params, batch, rng, step):
  """Cross-entropy (nats per word piece, label-smoothed by loss.label_smoothing) of the
  caption given the motion, and the next-piece accuracy.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T), batch["input_ids"] and
  batch["attention_mask"] (B, L).
  """
  del step
  logits, targets, weights = teacher_forcing(ctx, params, batch, rng)
  vocab = logits.shape[-1]
  smoothing = ctx.loss_config.label_smoothing
  labels = optax.smooth_labels(jax.nn.one_hot(targets, vocab), smoothing)
  per_piece = optax.softmax_cross_entropy(logits.astype(jnp.float32), labels)
  count = jnp.maximum(weights.sum(), 1.0)
  ce = (per_piece * weights).sum() / count
  hits = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return ce, {"caption_cross_entropy": ce, "next_piece_accuracy": (hits * weights).sum() / count}


def _text_layers_into_decoder(params: dict, previous_phase: str) -> dict:
  """The decoder's self-attention, MLP, norms and head start as the text encoder's (layer i
  from text layer i, as far as both go); its cross-attention and memory parts stay fresh."""
  del previous_phase
  params = dict(params)
  decoder = dict(params["caption_decoder"])
  text = params["text"]
  shared = ("attention", "attention_norm", "mlp", "mlp_norm")
  for name, layer in list(decoder.items()):
    source = text["encoder"].get(name) if name.startswith("layer_") else None
    if source is not None:
      decoder[name] = {**layer, **{part: source[part] for part in shared}}
  decoder["head"] = {**decoder["head"], **{part: value for part, value in
                                           text["mlm_head"].items() if part != "projection"}}
  params["caption_decoder"] = decoder
  return params


def check_loss(loss, check) -> None:
  """Refuses bad captioning loss fields: label smoothing in [0, 1]."""
  check.rate("label_smoothing")


def make_phase(loss_config) -> Phase:
  """The captioning task; `loss_config.train_motion_encoder` also fine-tunes the motion
  encoder and its lexical head."""
  trainable = ("caption_decoder",) + (
      ("motion", "motion_head") if loss_config.train_motion_encoder else ())
  return Phase(
      name="captioning",
      loss=loss,
      trainable=trainable,
      batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
      follows=("lexmmm", "lexcmlp"),
      prepare_params=_text_layers_into_decoder,
      new_groups=("caption_decoder",),
      needs_caption_vocabulary=True,
  )
