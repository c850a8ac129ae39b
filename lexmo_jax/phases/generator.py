"""The text-to-motion generator task: a causal transformer writes a motion's codes from its
caption's text condition (T2M-GPT's second stage; Zhang et al., CVPR 2023).

It starts from a finished VQ-VAE workdir (`init_from`), whose encoder, frozen, turns each
training motion into its codes. The condition of each training caption is computed once at
start by the text encoder that `generator.condition` names (`lexmo_jax.conditioning`): the
lexical text encoder's 512-d projection, or the packaged sentence encoder as the baseline;
the batch's `caption` field picks a row of that table. For classifier-free guidance a
fraction `loss.condition_drop` of the rows read the learned null condition instead. As
T2M-GPT does, a fraction 1 − `loss.code_keep` of the input codes is replaced by random codes
(the targets stay the true ones), so that the generator learns to recover from its own
mistakes at sampling time.
"""
from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import humanml3d
from lexmo_jax.models import generation
from lexmo_jax.models.code_generator import generator_loss
from lexmo_jax.models.generation import GenerationModel
from lexmo_jax.phases.base import Phase, PhaseContext
from lexmo_jax.phases.vqvae import whole_codes_mask

logger = logging.getLogger("lexmo_jax.train")


def training_codes(ctx: PhaseContext, params, batch):
  """(codes (B, N) int32, lengths (B,) int32) of the batch's motions, by the frozen VQ-VAE."""
  model: GenerationModel = ctx.model
  frames = 2**model.config.down_t
  mask = whole_codes_mask(batch["motion_mask"], frames)
  motion = jnp.where(mask[..., None], batch["motion"], 0.0)
  codes = ctx.apply_pure(params, GenerationModel.encode, motion)
  return jax.lax.stop_gradient(codes), (mask.sum(1) // frames).astype(jnp.int32)


def loss(ctx: PhaseContext, params, batch, rng, step):
  """Cross-entropy of each motion's codes then END given its caption's condition.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T) and batch["caption"] (B,)
  (the row of constants["conditions"], (captions, C))."""
  del step
  codes, lengths = training_codes(ctx, params, batch)
  condition = ctx.constants["conditions"][batch["caption"]]
  k_drop, k_keep, k_codes, k_dropout = jax.random.split(rng, 4)
  b, n = codes.shape
  c = ctx.loss_config
  drop = jax.random.uniform(k_drop, (b,)) < c.condition_drop
  keep = jax.random.uniform(k_keep, (b, n)) < c.code_keep
  codebook = ctx.model.config.codebook_size
  inputs = jnp.where(keep, codes, jax.random.randint(k_codes, (b, n), 0, codebook))
  logits = ctx.apply(params, GenerationModel.next_code_logits, condition, inputs,
                     rng=k_dropout, drop_condition=drop)
  value, terms = generator_loss(logits, codes, lengths)
  terms["codes_per_motion"] = lengths.astype(jnp.float32).mean()
  return value, terms


def condition_table(config, split_data) -> np.ndarray:
  """(captions, C) float32: the condition of every training caption, in batch["caption"]'s
  order (`humanml3d.all_captions`)."""
  from lexmo_jax.conditioning import condition_encoder  # pylint: disable=g-import-not-at-top
  g = config.generator
  encoder = condition_encoder(g.condition, g.text_encoder)
  captions = humanml3d.all_captions(split_data.pairs)
  logger.info("generator conditions: %s over %d training captions", encoder.label,
              len(captions))
  return encoder(captions)


def _constants(config, tok, split_data, workdir):
  del tok, workdir
  return {"conditions": condition_table(config, split_data)}


def _model(config, constants):
  return GenerationModel(generation.model_config(config, constants["conditions"].shape[1]))


def check_loss(loss_config, check) -> None:
  """Refuses rates outside [0, 1]."""
  check.rate("condition_drop", "code_keep")


def check_config(config, check) -> None:
  """Refuses a bad condition source, sampling settings or sizes, and a run without its
  VQ-VAE workdir."""
  from lexmo_jax.conditioning import CONDITION_SOURCES  # pylint: disable=g-import-not-at-top
  from lexmo_jax.phases import vqvae  # pylint: disable=g-import-not-at-top
  vqvae.check_config(config, check)
  g = config.generator
  check.require(g.condition in CONDITION_SOURCES, "generator.condition",
                f"{g.condition!r} is not one of {', '.join(CONDITION_SOURCES)}")
  check.require(g.condition != "lexical" or bool(g.text_encoder), "generator.text_encoder",
                "generator.condition='lexical' reads a conditioning workdir "
                "(configs/conditioning.py): pass --config.generator.text_encoder=DIR")
  check.existing_path("generator.text_encoder", "a conditioning workdir, its export, or a "
                      "sentence-transformers folder")
  if g.condition == "lexical" and g.text_encoder:
    from lexmo_jax.conditioning import projection_problem  # pylint: disable=g-import-not-at-top
    problem = projection_problem(g.text_encoder)
    check.require(problem is None, "generator.text_encoder", problem or "")
  check.positive("generator.width", "generator.num_layers", "generator.num_heads",
                 "generator.mlp_dim", "generator.min_codes")
  check.require(g.width % g.num_heads == 0, "generator.num_heads",
                f"generator.width={g.width} is not divisible by num_heads={g.num_heads}")
  check.non_negative("generator.guidance_scale", "generator.temperature", "generator.top_k")
  check.require(0.0 <= g.dropout_rate <= 1.0, "generator.dropout_rate",
                f"must lie in [0, 1], got {g.dropout_rate}")
  check.require(bool(config.init_from), "init_from", "the generator starts from a finished "
                "vqvae workdir (configs/vqvae.py): pass --config.init_from=DIR")


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="generator", loss=loss, trainable=("generator",),
               batch_keys=("motion", "motion_mask", "caption"), follows=("vqvae",),
               new_groups=("generator",), model=_model, constants=_constants)
