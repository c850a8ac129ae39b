"""Orbax checkpoints of a run: parameters, optimiser state and a JSON record of the run.

Items per step: `params`, `opt_state` (restored straight into the target shardings, on
whatever mesh the restoring run uses) and `meta` (phase, step, config, data position). A later
phase reads only `params` of its predecessor, so the optimiser state of another parameter
subset never gets in the way.

Saves are asynchronous: a step's folder appears under its number only once every item is
written, so a process killed mid-save leaves a temporary folder, which the next writable
`Checkpointer` removes. A step folder that is there but cannot be read back (a damaged disk,
a hand-edited file) is reported and the one before it is used (`restore_latest`); the
damaged folder is moved to `<workdir>/broken_checkpoints/` so that the resumed run can save
that step again.
"""
from __future__ import annotations

import dataclasses
import logging
import pathlib
import shutil
import time
from typing import Any, Callable, TypeVar

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

logger = logging.getLogger("lexmo_jax.checkpoint")

ITEMS = ("params", "opt_state", "meta")
BROKEN = "broken_checkpoints"

T = TypeVar("T")


class CheckpointError(RuntimeError):
  pass


@dataclasses.dataclass
class Restored:
  """A checkpoint read back: its step, arrays placed as the targets say, and its record."""
  step: int
  params: Any
  opt_state: Any
  meta: dict[str, Any]


class Checkpointer:
  """Keeps the last `keep` checkpoints of a workdir, saving asynchronously."""

  def __init__(self, directory: str | pathlib.Path, keep: int = 3, read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    self.read_only = read_only
    # A read-only manager makes Orbax warn (through absl) that it will not save or prune:
    # what read-only means, so not shown to someone who only loads a model.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    if read_only:
      absl_logger.setLevel(logging.ERROR)
    try:
      options = ocp.CheckpointManagerOptions(
          max_to_keep=keep, create=not read_only, read_only=read_only,
          enable_async_checkpointing=not read_only, cleanup_tmp_directories=not read_only)
      self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)
    finally:
      absl_logger.setLevel(level)

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, params, opt_state, meta: dict[str, Any]) -> bool:
    """Starts writing `step` in the background; `wait` blocks until it is on disk."""
    return self._manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        opt_state=ocp.args.StandardSave(opt_state),
        meta=ocp.args.JsonSave(meta)), force=True)

  def read_meta(self, step: int | None = None) -> dict[str, Any]:
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"{self.directory} holds no checkpoint")
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, step: int, abstract_params, abstract_opt_state):
    """(params, opt_state, meta) of `step`, placed as the abstract targets' shardings say."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_params),
        opt_state=ocp.args.StandardRestore(abstract_opt_state),
        meta=ocp.args.JsonRestore()))
    return restored["params"], restored["opt_state"], restored["meta"]

  def restore_params(self, step: int, abstract_params):
    restored = self._manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_params)))
    return restored["params"]

  def restore_param_groups(self, step: int, abstract_groups: dict):
    """Only the top-level parameter groups named in `abstract_groups` (the others on disk,
    whatever their shapes, are not read)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.PyTreeRestore(
            item=abstract_groups,
            restore_args=ocp.checkpoint_utils.construct_restore_args(abstract_groups),
            partial_restore=True)))
    return restored["params"]

  def latest_meta(self) -> tuple[int, dict[str, Any]] | None:
    """(step, record) of the newest checkpoint whose record reads; None if there is none."""
    return self._newest_readable(lambda step: (step, self.read_meta(step)), "record")

  def restore_latest(self, abstract_params, abstract_opt_state) -> Restored | None:
    """The newest checkpoint that restores completely; None if the folder holds none.

    A newer checkpoint that fails is reported (step and error) and skipped; if an older one
    then restores, the failed ones are moved to `broken_checkpoints/` beside this folder.
    Raises CheckpointError, naming every step and its error, when none restores.
    """
    return self._newest_readable(
        lambda step: Restored(step, *self.restore(step, abstract_params, abstract_opt_state)),
        "checkpoint")

  def _newest_readable(self, read: Callable[[int], T], what: str) -> T | None:
    steps = self.all_steps()
    failures = []
    for step in reversed(steps):
      try:
        value, error = read(step), None
      except Exception as e:  # pylint: disable=broad-except
        value, error = None, f"{type(e).__name__}: {e}"
      # Every process must settle on the same step, or they would train different states.
      if _agreed(error is None):
        if failures:
          self._set_aside([s for s, _ in failures])
        return value
      error = error or "another process could not read it"
      logger.warning("%s: the %s of step %d cannot be read (%s); trying the checkpoint "
                     "before it", self.directory, what, step, _first_line(error))
      failures.append((step, error))
    if failures:
      listing = "; ".join(f"step {s}: {_first_line(e)}" for s, e in failures)
      raise CheckpointError(f"{self.directory}: no {what} can be read ({listing}). If the "
                            "config changed since these were written, use another --workdir.")
    return None

  def _set_aside(self, steps: list[int]):
    """Moves broken step folders out of the way, so that those steps can be saved again."""
    if self.read_only:
      return
    if jax.process_index() == 0:
      target = self.directory.parent / BROKEN
      target.mkdir(exist_ok=True)
      for step in steps:
        destination = target / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        while destination.exists():
          destination = destination.with_name(destination.name + "+")
        shutil.move(str(self.directory / str(step)), str(destination))
        logger.warning("moved the unreadable checkpoint of step %d to %s", step, destination)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("lexmo_jax: broken checkpoints set aside")
    self._manager.reload()

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    # Orbax awaits its removal of a killed run's temporary folders only before saving; a
    # run that saves nothing must not exit while that is under way.
    getattr(self._manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()
    self._manager.close()


def _agreed(ok: bool) -> bool:
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def _first_line(text: str) -> str:
  return text.strip().splitlines()[0] if text.strip() else text


def abstract_like(tree, shardings):
  """ShapeDtypeStructs that carry the target shardings (restore targets)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)
