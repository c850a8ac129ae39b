"""Where a run's parameters come from: its own last checkpoint (resume), the previous
phase's workdir (`config.init_from`), a Hugging Face text checkpoint (`config.text.init`),
or a fresh initialisation — in that order of precedence."""
from __future__ import annotations

import logging
import pathlib

import jax
import ml_collections
import numpy as np

from lexmo_jax.train.checkpointing import Checkpointer
from lexmo_jax.train.state import TrainState

logger = logging.getLogger("lexmo_jax.train")


class HandoffError(ValueError):
  pass


def read_workdir_record(workdir: str | pathlib.Path) -> tuple[Checkpointer, int, dict]:
  """(checkpointer, latest step, run record) of a finished or running workdir."""
  directory = pathlib.Path(workdir) / "checkpoints"
  if not directory.is_dir():
    raise HandoffError(f"{workdir} holds no checkpoints/ folder: not a training workdir")
  ckpt = Checkpointer(directory, read_only=True)
  step = ckpt.latest_step()
  if step is None:
    raise HandoffError(f"{directory} holds no complete checkpoint")
  return ckpt, step, ckpt.read_meta(step)


def _shape_mismatches(previous_config: dict, config) -> list[str]:
  """Config fields that differ between two phases and change parameter shapes."""
  fields = [("text", k) for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                  "mlp_dim", "max_position", "type_vocab_size")]
  fields += [("motion", k) for k in ("tokenizer", "frames_per_token", "points_per_chain",
                                     "patch_frames", "hidden_size", "num_layers", "mlp_dim")]
  fields += [("model", k) for k in ("decoder_layers", "motion_decoder_hidden",
                                    "motion_decoder_layers", "projection_dim")]
  fields += [("data", "kind"), ("data", "max_motion_length")]
  out = []
  for section, key in fields:
    theirs = previous_config.get(section, {}).get(key)
    ours = config[section][key]
    if theirs is not None and theirs != ours:
      out.append(f"{section}.{key}: {theirs!r} there, {ours!r} here")
  return out


def _check_previous(config, phase, record: dict) -> str:
  previous = record.get("phase")
  if previous not in phase.follows:
    raise HandoffError(
        f"config.init_from={config.init_from} is a {previous!r} workdir; {phase.name} starts "
        f"from a workdir of {' or '.join(phase.follows) or 'no earlier phase'}")
  return previous


def check_init_from(config, phase, workdir: str | pathlib.Path) -> None:
  """Refuses, before any data is prepared, a `config.init_from` that is not a finished
  workdir of a phase this one follows (a run that resumes from `workdir` does not read it).

  Raises:
    HandoffError: naming the workdir and the phases it should be.
  """
  own = pathlib.Path(workdir) / "checkpoints"
  if not config.init_from or (own.is_dir() and any(own.iterdir())):
    return
  ckpt, _, record = read_workdir_record(config.init_from)
  ckpt.close()
  _check_previous(config, phase, record)


# Config fields that shape only the motion side of the model.
_MOTION_SIDE = ("motion.", "data.kind:", "data.max_motion_length:")


def _text_only_start(record: dict) -> tuple[str, ...]:
  """The parameter groups a chain's first phase trained when it trained text only (LexMLM:
  its motion side is still its random initialisation), else ()."""
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  try:
    previous = phases.phase_module(record.get("phase")).make_phase(
        ml_collections.ConfigDict(record.get("config", {}).get("loss", {})))
  except (ValueError, KeyError, AttributeError, TypeError):
    return ()
  if previous.follows or not all(g.startswith("text") for g in previous.trainable):
    return ()
  return previous.trainable


def params_from_previous_phase(config, phase, trainer):
  """The parameters the phase in `config.init_from` trained, placed on this mesh.

  A chain may change dataset kind (HumanML3D to KIT-ML) or the motion encoder's shape after
  a phase that trained text only (LexMLM): its text groups carry over, and the motion side,
  which it never trained, starts fresh. Any other shape change is refused.
  """
  ckpt, step, record = read_workdir_record(config.init_from)
  carried = None
  try:
    previous = _check_previous(config, phase, record)
    mismatches = _shape_mismatches(record.get("config", {}), config)
    if mismatches:
      text_groups = _text_only_start(record)
      if not (text_groups and all(m.startswith(_MOTION_SIDE) for m in mismatches)):
        raise HandoffError(f"config.init_from={config.init_from} has incompatible shapes: "
                           + "; ".join(mismatches))
      carried = text_groups
      logger.info("%s trained text only, so its text encoder carries over although the motion "
                  "side differs (%s); the motion side starts fresh", previous,
                  "; ".join(mismatches))
    abstract = {k: v for k, v in trainer.abstract_state.params.items()
                if k not in phase.new_groups and (carried is None or k in carried)}
    params = (ckpt.restore_params(step, abstract) if carried is None
              else ckpt.restore_param_groups(step, abstract))
  finally:
    ckpt.close()
  logger.info("%s starts from %s (%s, step %d)", phase.name, config.init_from, previous, step)
  fresh_groups = [k for k in trainer.abstract_state.params if k not in params]
  if fresh_groups:
    fresh = jax.device_get(trainer.init_state(config.seed).params)
    params = {**params, **{k: fresh[k] for k in fresh_groups}}
  if phase.prepare_params is not None:
    params = phase.prepare_params(params, previous)
  return params


def params_from_text_checkpoint(config, trainer):
  """Fresh parameters whose text encoder is a Hugging Face checkpoint's (DistilBERT/BERT, or
  T5 when `config.text.model_type` is 't5')."""
  from lexmo_jax.models import hf_checkpoint, t5_encoder  # pylint: disable=g-import-not-at-top
  state = trainer.init_state(config.seed)
  params = jax.device_get(state.params)
  try:
    _, text_params = (t5_encoder.load_t5_params(config.text.init)
                      if config.text.model_type == "t5"
                      else hf_checkpoint.load_text_params(config.text.init))
  except (OSError, ValueError) as e:
    raise HandoffError(f"config.text.init={config.text.init}: {e}") from None
  expected = jax.tree.map(np.shape, params["text"])
  got = jax.tree.map(np.shape, text_params)
  if expected != got:
    raise HandoffError(f"config.text.init={config.text.init}: its parameter shapes do not match "
                       f"config.text (expected {expected}, got {got})")
  params["text"] = text_params
  return params


def with_motion_checkpoint(config, params: dict) -> dict:
  """`params` whose motion encoder starts from the image ViT at `config.motion.init`
  (`lexmo_jax.models.vit_checkpoint`), each tensor's fate logged (loaded, adapted, new,
  unused)."""
  from lexmo_jax.models import vit_checkpoint  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models.build import motion_config  # pylint: disable=g-import-not-at-top
  path = config.motion.init
  try:
    motion, report = vit_checkpoint.load_motion_vit(path, motion_config(config),
                                                    params["motion"])
  except (vit_checkpoint.ViTCheckpointError, OSError) as e:
    raise HandoffError(f"config.motion.init={path}: {e}") from None
  logger.info("the motion encoder starts from the ViT at %s:\n  %s", path, "\n  ".join(report))
  return {**params, "motion": motion}


def initial_params(config, phase, trainer, ckpt: Checkpointer) -> tuple[TrainState, int]:
  """(state, first step to run)."""
  newest = ckpt.latest_meta()
  if newest is not None:
    _, record = newest
    if record.get("phase") != phase.name:
      raise HandoffError(f"{ckpt.directory} holds checkpoints of phase {record.get('phase')!r}, "
                         f"not {phase.name!r}: use another --workdir")
    restored = ckpt.restore_latest(trainer.abstract_state.params,
                                   trainer.abstract_state.opt_state)
    latest = restored.step
    state = trainer.abstract_state.replace(step=latest, params=restored.params,
                                           opt_state=restored.opt_state)
    state = jax.tree.map(lambda x, s: x if isinstance(x, jax.Array) else jax.device_put(
        np.asarray(x), s), state, trainer.state_shardings)
    logger.info("resuming %s from step %d", phase.name, latest)
    return state, latest
  if config.init_from:
    return trainer.state_from_params(params_from_previous_phase(config, phase, trainer)), 0
  if config.motion.get("init"):
    params = (params_from_text_checkpoint(config, trainer) if config.text.init
              else jax.device_get(trainer.init_state(config.seed).params))
    return trainer.state_from_params(with_motion_checkpoint(config, params)), 0
  if config.text.init:
    logger.info("%s: the text encoder starts pre-trained, from %s", phase.name, config.text.init)
    return trainer.state_from_params(params_from_text_checkpoint(config, trainer)), 0
  if phase.model is not None:  # a task with its own model has no text encoder to warn of
    return trainer.init_state(config.seed), 0
  logger.warning("%s: the text encoder starts from random weights (config.text.init is empty); "
                 "the method starts from a pre-trained DistilBERT: pass "
                 "--config.text.init=/path/to/distilbert-base-uncased (a local Hugging Face "
                 "folder) for that", phase.name)
  return trainer.init_state(config.seed), 0
