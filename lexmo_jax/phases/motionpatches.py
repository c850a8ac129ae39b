"""The dense MotionPatches baseline (Yu et al., CVPR 2024): both towers and their projection
heads trained by a symmetric InfoNCE over the cosine similarities of paired captions and
motions, at MotionPatches' fixed temperature (0.07: its logit scale is a parameter that no
optimiser group holds). `configs/baselines/motionpatches.py` holds its recipe.
"""
from __future__ import annotations

import jax

from lexmo_jax import losses
from lexmo_jax.models import lexical, motion_patches
from lexmo_jax.models.motion_patches import MotionPatchesModel
from lexmo_jax.phases.base import Phase, PhaseContext


def loss(ctx: PhaseContext, params, batch, rng, step):
  """Symmetric InfoNCE (nats) of the L2-normalised projections and the in-batch text→motion
  top-1 accuracy. Reads batch["input_ids"], batch["attention_mask"] (B, L), batch["motion"]
  (B, T, F) and batch["motion_mask"] (B, T)."""
  del step
  k_text, k_motion = jax.random.split(rng)
  t = ctx.apply(params, MotionPatchesModel.text_features, batch["input_ids"],
                batch["attention_mask"], rng=k_text)
  m = ctx.apply(params, MotionPatchesModel.motion_features, batch["motion"],
                batch["motion_mask"], rng=k_motion)
  nce, sims = losses.info_nce(lexical.l2_normalise(t), lexical.l2_normalise(m),
                              1.0 / ctx.loss_config.temperature)
  return nce, {"contrastive": nce, "t2m_batch_accuracy": losses.in_batch_accuracy(sims)}


def check_loss(loss_config, check) -> None:
  check.require(loss_config.temperature > 0, "temperature", "must be positive")


def check_config(config, check) -> None:
  check.positive("motionpatches.projection_dim")
  check.require(0.0 <= config.motionpatches.dropout_rate < 1.0, "motionpatches.dropout_rate",
                f"must lie in [0, 1), got {config.motionpatches.dropout_rate}")


def _model(config, constants):
  del constants
  return MotionPatchesModel(motion_patches.model_config(config))


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="motionpatches", loss=loss,
               trainable=("text", "motion", "text_projection", "motion_projection"),
               batch_keys=("motion", "motion_mask", "input_ids", "attention_mask"),
               model=_model, retrieves=True)
