"""Checks a config once, at start, so that a bad field fails before any work is done.

ml_collections already refuses unknown fields and wrong types on the command line (the
config is locked); this module checks values and their consistency, naming the field.
"""
from __future__ import annotations

import pathlib

from lexmo_jax.sharding.mesh import MESH_AXES, mesh_shape

DTYPES = ("float32", "bfloat16")


class ConfigError(ValueError):
  pass


def _require(ok: bool, field: str, message: str):
  if not ok:
    raise ConfigError(f"config.{field}: {message}")


def _positive(config, *fields: str):
  for field in fields:
    value = config
    for part in field.split("."):
      value = value[part]
    _require(isinstance(value, int) and value > 0, field, f"must be a positive integer, got {value!r}")


def _rate(config, field: str, low: float = 0.0, high: float = 1.0):
  section, key = field.split(".")
  value = config[section][key]
  _require(low <= value <= high, field, f"must lie in [{low}, {high}], got {value}")


def validate(config, num_devices: int) -> None:
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  _require(config.phase in phases.ORDER, "phase", f"{config.phase!r} is not one of {phases.ORDER}")
  _positive(config, "total_steps", "log_every", "checkpoint_every", "keep_checkpoints",
            "data.global_batch_size", "data.max_motion_length", "data.max_text_length",
            "data.min_motion_length", "text.vocab_size", "text.hidden_size", "text.num_layers",
            "text.num_heads", "text.mlp_dim", "motion.hidden_size", "motion.num_layers",
            "motion.num_heads", "motion.mlp_dim", "motion.frames_per_token",
            "motion.patch_frames", "motion.points_per_chain", "model.decoder_layers",
            "eval.batch_size")
  _require(config.seed >= 0, "seed", f"must be non-negative, got {config.seed}")
  _require(config.dtype in DTYPES, "dtype", f"{config.dtype!r} is not one of {DTYPES}")
  _require(config.data.kind in ("humanml3d", "kitml"), "data.kind",
           f"{config.data.kind!r} is not 'humanml3d' or 'kitml'")
  _require(config.motion.tokenizer in ("patches", "frames"), "motion.tokenizer",
           f"{config.motion.tokenizer!r} is not 'patches' or 'frames'")
  _require(config.text.model_type in ("distilbert", "bert"), "text.model_type",
           f"{config.text.model_type!r} is not 'distilbert' or 'bert'")
  for section in ("text", "motion"):
    width, heads = config[section].hidden_size, config[section].num_heads
    _require(width % heads == 0, f"{section}.num_heads",
             f"{section}.hidden_size={width} is not divisible by num_heads={heads}")
  # The motion head starts as a copy of the text head, so both sides share one width.
  _require(config.motion.hidden_size == config.text.hidden_size, "motion.hidden_size",
           f"must equal text.hidden_size={config.text.hidden_size} (the motion lexical head "
           f"is initialised as a copy of the text head), got {config.motion.hidden_size}")
  _require(config.data.max_text_length <= config.text.max_position, "data.max_text_length",
           f"{config.data.max_text_length} exceeds text.max_position={config.text.max_position}")
  _require(config.data.min_motion_length < config.data.max_motion_length,
           "data.min_motion_length", "must be below data.max_motion_length")
  for field in ("text.dropout_rate", "motion.dropout_rate"):
    _rate(config, field)
  _require(config.optim.learning_rate > 0, "optim.learning_rate", "must be positive")
  _require(config.optim.warmup_steps >= 0, "optim.warmup_steps", "must be non-negative")
  _require(config.optim.schedule in ("cosine", "constant"), "optim.schedule",
           f"{config.optim.schedule!r} is not 'cosine' or 'constant'")

  try:
    shape = mesh_shape(config.mesh, num_devices)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  sizes = dict(zip(MESH_AXES, shape))
  batch_axes = dict(config.sharding_rules).get("batch") or ()
  batch_axes = (batch_axes,) if isinstance(batch_axes, str) else tuple(batch_axes)
  split = 1
  for axis in batch_axes:
    split *= sizes[axis]
  _require(config.data.global_batch_size % split == 0, "data.global_batch_size",
           f"{config.data.global_batch_size} is not divisible by the {split} ways the batch is "
           f"split over the mesh {sizes}")
  _validate_optim(config)
  _validate_phase(config)
  if config.init_from:
    _require(pathlib.Path(config.init_from).is_dir(), "init_from",
             f"{config.init_from} is not a folder (the previous phase's --workdir)")
  if config.text.init:
    _require(pathlib.Path(config.text.init).exists(), "text.init",
             f"{config.text.init} does not exist (a Hugging Face model folder)")


def _validate_optim(config):
  for group, factor in config.optim.lr_scale.items():
    _require(factor >= 0, f"optim.lr_scale.{group}", f"must be non-negative, got {factor}")


def _validate_phase(config):
  loss = config.loss
  if config.phase == "lexmlm":
    _rate(config, "loss.encoder_mask_rate")
    _rate(config, "loss.decoder_mask_rate")
    _require(loss.replace_with_mask + loss.replace_with_random <= 1.0, "loss.replace_with_mask",
             "replace_with_mask + replace_with_random must not exceed 1")
  if config.phase in ("lexmlm", "lexmmm", "lexcmlp"):
    _require(loss.word_weighting in ("agreement", "idf", "uniform"), "loss.word_weighting",
             f"{loss.word_weighting!r} is not 'agreement', 'idf' or 'uniform'")
    _require(all(isinstance(t, str) and t.isupper() for t in loss.content_pos),
             "loss.content_pos", f"must list universal POS tags such as NOUN, VERB, got "
             f"{tuple(loss.content_pos)!r}")
  for field in ("self_prediction_weight", "bag_of_words_weight", "text_self_prediction_weight",
                "motion_bag_of_words_weight", "decoder_weight"):
    if field in loss:
      _require(loss[field] >= 0, f"loss.{field}", f"must be non-negative, got {loss[field]}")
  if config.phase == "lexmmm":
    _rate(config, "loss.decoder_mask_rate")
  if config.phase == "cmmm":
    _rate(config, "loss.min_mask_rate")
    _rate(config, "loss.max_mask_rate")
    _require(loss.min_mask_rate <= loss.max_mask_rate, "loss.min_mask_rate",
             "must not exceed loss.max_mask_rate")
    _require(loss.temperature > 0, "loss.temperature", "must be positive")
  if config.phase == "lexcmlp":
    _require(loss.temperature_init > 0, "loss.temperature_init", "must be positive")
    _require(loss.flops_weight >= 0, "loss.flops_weight", "must be non-negative")
