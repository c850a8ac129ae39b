"""The conditioning task: a projection of the pre-trained text encoder to a generator's width.

Text-to-motion generators (T2M, MDM, T2M-GPT, MoMask) read one pooled text vector of CLIP
ViT-B/32's width (512), which CLIP's contrastive image–text training shaped. The pre-trained
text encoder's pooled state (the mean of its token states) has the text width instead; this
task learns a linear map of it to `conditioning.dim` the same way CLIP's came about: by a
symmetric InfoNCE between the projected pooled caption and the projected pooled motion ([CLS]
state) of the training pairs, at a fixed temperature. Both encoders stay frozen (the lexical
space does not move); only the two projections train. `lexmo_jax.conditioning.TextConditioner`
serves the text side.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext


def loss(ctx: PhaseContext, params, batch, rng, step):
  """Symmetric InfoNCE (nats) of the L2-normalised projections of captions and motions at
  temperature `loss.temperature`, and the in-batch text→motion top-1 accuracy.

  Reads batch["input_ids"], batch["attention_mask"] (B, L), batch["motion"] (B, T, F) and
  batch["motion_mask"] (B, T).
  """
  del rng, step
  text_bd, _ = ctx.apply(params, LexMo.text_pooled, batch["input_ids"], batch["attention_mask"])
  motion_bd = ctx.apply(params, LexMo.motion_pooled, batch["motion"], batch["motion_mask"])
  t = ctx.apply_pure(params, LexMo.condition_text, jax.lax.stop_gradient(text_bd))
  m = ctx.apply_pure(params, LexMo.condition_motion, jax.lax.stop_gradient(motion_bd))
  t = t / jnp.linalg.norm(t, axis=-1, keepdims=True).clip(1e-6)
  m = m / jnp.linalg.norm(m, axis=-1, keepdims=True).clip(1e-6)
  logits = t @ m.T / ctx.loss_config.temperature
  labels = jnp.arange(logits.shape[0])
  t2m = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  m2t = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
  accuracy = (jnp.argmax(logits, -1) == labels).astype(jnp.float32).mean()
  return (t2m + m2t) / 2, {"info_nce": (t2m + m2t) / 2, "t2m_top1": accuracy}


def check_loss(loss_config, check) -> None:
  """Refuses a non-positive temperature."""
  check.require(loss_config.temperature > 0, "temperature", "must be positive")


def check_config(config, check) -> None:
  """Refuses a non-positive width and a run without its pre-trained workdir."""
  check.positive("conditioning.dim")
  check.require(bool(config.init_from), "init_from", "the conditioning task starts from a "
                "finished lexcmlp or lexmmm workdir: pass --config.init_from=DIR")


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(
      name="conditioning",
      loss=loss,
      trainable=("text_condition", "motion_condition"),
      batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
      follows=("lexmmm", "lexcmlp"),
      new_groups=("text_condition", "motion_condition"),
  )
