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
  _require(config.phase in phases.KNOWN, "phase", f"{config.phase!r} is not one of {phases.KNOWN}")
  _positive(config, "total_steps", "log_every", "checkpoint_every", "keep_checkpoints",
            "data.global_batch_size", "data.max_motion_length", "data.max_text_length",
            "data.min_motion_length", "text.vocab_size", "text.hidden_size", "text.num_layers",
            "text.num_heads", "text.mlp_dim", "motion.hidden_size", "motion.num_layers",
            "motion.num_heads", "motion.mlp_dim", "motion.frames_per_token",
            "motion.patch_frames", "motion.points_per_chain", "model.decoder_layers",
            "eval.batch_size")
  _require(config.seed >= 0, "seed", f"must be non-negative, got {config.seed}")
  chunk = config.model.get("vocab_chunk_size", -1)
  _require(chunk >= -1, "model.vocab_chunk_size",
           f"must be words per chunk, 0 (unfused) or -1 (the backend's best), got {chunk}")
  _require(config.dtype in DTYPES, "dtype", f"{config.dtype!r} is not one of {DTYPES}")
  _require(config.data.kind in ("humanml3d", "kitml"), "data.kind",
           f"{config.data.kind!r} is not 'humanml3d' or 'kitml'")
  _require(config.motion.tokenizer in ("patches", "frames"), "motion.tokenizer",
           f"{config.motion.tokenizer!r} is not 'patches' or 'frames'")
  _require(config.text.model_type in ("distilbert", "bert", "t5"), "text.model_type",
           f"{config.text.model_type!r} is not 'distilbert', 'bert' or 't5'")
  t5 = config.text.model_type == "t5"
  _require(not t5 or config.phase == "motionpatches", "text.model_type",
           "a T5 text tower serves the dense MotionPatches baseline (the text-encoder "
           "ablation, configs/baselines/motionpatches.py:text=t5-small); the lexical phases "
           "need a masked-LM head (distilbert or bert)")
  _require(not t5 or "t5" in config.text, "text.t5",
           "a T5 text tower needs the text.t5 section (d_kv, feed_forward_proj, relative "
           "attention buckets): use configs/baselines/motionpatches.py:text=t5-SIZE")
  for section in ("motion",) if t5 else ("text", "motion"):  # T5 sets d_kv apart
    width, heads = config[section].hidden_size, config[section].num_heads
    _require(width % heads == 0, f"{section}.num_heads",
             f"{section}.hidden_size={width} is not divisible by num_heads={heads}")
  # The motion head starts as a copy of the text head, so both sides share one width (tasks
  # with their own models project each side on its own).
  _require(phases.get_phase(config).model is not None
           or config.motion.hidden_size == config.text.hidden_size, "motion.hidden_size",
           f"must equal text.hidden_size={config.text.hidden_size} (the motion lexical head "
           f"is initialised as a copy of the text head), got {config.motion.hidden_size}")
  _require(config.data.max_text_length <= config.text.max_position, "data.max_text_length",
           f"{config.data.max_text_length} exceeds text.max_position={config.text.max_position}")
  _require(config.data.min_motion_length < config.data.max_motion_length,
           "data.min_motion_length", "must be below data.max_motion_length")
  for field in ("text.dropout_rate", "motion.dropout_rate") + (
      ("caption.dropout_rate",) if "caption" in config else ()):
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
  _validate_caption(config)
  _validate_phase(config)
  if config.init_from:
    _require(pathlib.Path(config.init_from).is_dir(), "init_from",
             f"{config.init_from} is not a folder (the previous phase's --workdir)")
  if config.text.init:
    _require(pathlib.Path(config.text.init).exists(), "text.init",
             f"{config.text.init} does not exist (a Hugging Face model folder)")
  if config.motion.get("init"):
    _require(pathlib.Path(config.motion.init).exists(), "motion.init",
             f"{config.motion.init} does not exist (a Hugging Face ViT folder or a .npz)")
    _require(config.motion.tokenizer == "patches", "motion.init",
             "an image ViT reads motion patches: set --config.motion.tokenizer=patches")


def _validate_optim(config):
  for group, factor in config.optim.lr_scale.items():
    _require(factor >= 0, f"optim.lr_scale.{group}", f"must be non-negative, got {factor}")


def _validate_caption(config):
  if "caption" not in config:
    _require(config.phase != "captioning", "caption",
             "the captioning task needs a caption section (configs/captioning.py)")
    return
  from lexmo_jax.models.caption_decoder import CONDITIONS  # pylint: disable=g-import-not-at-top
  c = config.caption
  _positive(config, "caption.decoder_layers", "caption.lexical_words", "caption.beam_size")
  _require(c.condition in CONDITIONS, "caption.condition",
           f"{c.condition!r} is not one of {', '.join(CONDITIONS)}")
  _require(c.rerank_weight >= 0, "caption.rerank_weight",
           f"must be non-negative (0 = no re-ranking), got {c.rerank_weight}")
  _require(c.output_vocabulary in ("captions", "all"), "caption.output_vocabulary",
           f"{c.output_vocabulary!r} is not 'captions' or 'all'")
  _require(c.length_penalty >= 0, "caption.length_penalty",
           f"must be non-negative (GNMT's α; 0 = none), got {c.length_penalty}")
  _require(2 <= c.max_length <= config.text.max_position, "caption.max_length",
           f"must lie in [2, text.max_position={config.text.max_position}] word pieces, "
           f"got {c.max_length}")
  _require(0 <= c.min_length < c.max_length - 1, "caption.min_length",
           f"must lie in [0, caption.max_length - 2 = {c.max_length - 2}] word pieces, got "
           f"{c.min_length}")
  _require(config.phase != "captioning" or bool(config.init_from), "init_from",
           "the captioning task starts from a finished lexcmlp or lexmmm workdir (its motion "
           "encoder and lexical head); pass --config.init_from=DIR")


class LossCheck:
  """What a phase's `check_loss` uses to refuse a bad `config.loss` field, by name."""

  def __init__(self, loss):
    self.loss = loss

  def require(self, ok: bool, field: str, message: str) -> None:
    _require(ok, f"loss.{field}", message)

  def rate(self, *fields: str) -> None:
    """Each field lies in [0, 1]."""
    for field in fields:
      value = self.loss[field]
      self.require(0.0 <= value <= 1.0, field, f"must lie in [0.0, 1.0], got {value}")

  def non_negative(self, *fields: str) -> None:
    """Each field, where the phase's config has it, is >= 0."""
    for field in fields:
      if field in self.loss:
        value = self.loss[field]
        self.require(value >= 0, field, f"must be non-negative, got {value}")


class SectionCheck:
  """What a task's `check_config` uses to refuse its own config sections, naming the field."""

  def __init__(self, config):
    self.config = config

  def require(self, ok: bool, field: str, message: str) -> None:
    _require(ok, field, message)

  def positive(self, *fields: str) -> None:
    """Each dotted field is a positive integer."""
    _positive(self.config, *fields)

  def non_negative(self, *fields: str) -> None:
    """Each dotted field is >= 0."""
    for field in fields:
      section, key = field.split(".")
      value = self.config[section][key]
      _require(value >= 0, field, f"must be non-negative, got {value}")

  def existing_path(self, field: str, what: str) -> None:
    """The dotted field, when not empty, names an existing file or folder."""
    section, key = field.split(".")
    value = self.config[section][key]
    _require(not value or pathlib.Path(value).exists(), field, f"{value} does not exist ({what})")


def _validate_phase(config):
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  loss, check = config.loss, LossCheck(config.loss)
  # Settings that several phases share (how caption words are weighted).
  if "word_weighting" in loss:
    check.require(loss.word_weighting in ("agreement", "idf", "uniform"), "word_weighting",
                  f"{loss.word_weighting!r} is not 'agreement', 'idf' or 'uniform'")
  if "content_pos" in loss:
    check.require(all(isinstance(t, str) and t.isupper() for t in loss.content_pos),
                  "content_pos", f"must list universal POS tags such as NOUN, VERB, got "
                  f"{tuple(loss.content_pos)!r}")
  module = phases.phase_module(config.phase)
  module.check_loss(loss, check)
  # A task with sections of its own checks them (`check_config(config, check)`).
  if hasattr(module, "check_config"):
    module.check_config(config, SectionCheck(config))
