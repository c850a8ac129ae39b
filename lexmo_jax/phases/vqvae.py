"""The motion VQ-VAE task: the tokeniser of the text-to-motion generator.

T2M-GPT's first stage (Zhang et al., CVPR 2023): a convolutional autoencoder whose latents,
one every 2**down_t frames, are replaced by their nearest code. Trained on the training
motions alone (no text, no earlier phase); `lexmo_jax.phases.generator` then learns to write
the codes of a motion from its caption. Objective: `motion_vqvae.vqvae_loss`.
"""
from __future__ import annotations

import jax.numpy as jnp

from lexmo_jax.models import generation
from lexmo_jax.models.generation import GenerationModel
from lexmo_jax.models.motion_vqvae import vqvae_loss
from lexmo_jax.phases.base import Phase, PhaseContext


def whole_codes_mask(motion_mask_bt, frames_per_code: int):
  """The frame mask (B, T) cut to whole codes: frames past the last complete group of
  `frames_per_code` frames are dropped (a code reads all of its frames)."""
  t = motion_mask_bt.shape[1]
  kept_b = motion_mask_bt.sum(1) // frames_per_code * frames_per_code
  return jnp.arange(t)[None] < kept_b[:, None]


def loss(ctx: PhaseContext, params, batch, rng, step):
  """T2M-GPT's reconstruction, position and commitment terms and the codebook term.

  Reads batch["motion"] (B, T, F) and batch["motion_mask"] (B, T)."""
  del rng, step
  model: GenerationModel = ctx.model
  mask = whole_codes_mask(batch["motion_mask"], 2**model.config.down_t)
  outputs = ctx.apply(params, GenerationModel.autoencode, batch["motion"], mask)
  c = ctx.loss_config
  return vqvae_loss(outputs, batch["motion"], mask, joints=model.config.num_joints, commitment=c.commitment,
                    velocity_weight=c.velocity_weight, codebook_weight=c.codebook_weight)


def _model(config, constants):
  del constants
  return GenerationModel(generation.model_config(config))


def check_loss(loss_config, check) -> None:
  """Refuses negative weights."""
  check.non_negative("commitment", "velocity_weight", "codebook_weight")


def check_config(config, check) -> None:
  """Refuses bad `vqvae.*` sizes and a motion length that is not whole codes."""
  check.positive("vqvae.width", "vqvae.depth", "vqvae.down_t", "vqvae.dilation_growth",
                 "vqvae.codebook_size", "vqvae.code_dim")
  frames = 2**config.vqvae.down_t
  check.require(config.data.max_motion_length % frames == 0, "data.max_motion_length",
                f"{config.data.max_motion_length} is not a multiple of 2**vqvae.down_t = "
                f"{frames} frames (one code)")


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="vqvae", loss=loss, trainable=("vqvae",),
               batch_keys=("motion", "motion_mask"), model=_model)
