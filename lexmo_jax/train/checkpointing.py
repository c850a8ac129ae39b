"""Orbax checkpoints of a run: parameters, optimiser state and a JSON record of the run.

Items per step: `params`, `opt_state` (restored straight into the target shardings) and
`meta` (phase, step, config, data position). A later phase reads only `params` of its
predecessor, so the optimiser state of another parameter subset never gets in the way.
"""
from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

logger = logging.getLogger("lexmo_jax.checkpoint")

ITEMS = ("params", "opt_state", "meta")


class Checkpointer:
  """Keeps the last `keep` checkpoints of a workdir, saving asynchronously."""

  def __init__(self, directory: str | pathlib.Path, keep: int = 3, read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=not read_only, read_only=read_only,
        enable_async_checkpointing=not read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, params, opt_state, meta: dict[str, Any]) -> bool:
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

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()


def abstract_like(tree, shardings):
  """ShapeDtypeStructs that carry the target shardings (restore targets)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree,
                      shardings)
