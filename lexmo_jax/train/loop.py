"""The one training loop that serves all four phases.

It resumes from the workdir's last checkpoint, or starts from the previous phase's
parameters (`config.init_from`), or from scratch; streams the phase's data from the step it
is at; logs, checkpoints, stops cleanly on SIGTERM (preemption) and refuses to go on past a
NaN/Inf loss.
"""
from __future__ import annotations

import json
import logging
import pathlib
import signal
import threading
import time

import jax
import numpy as np

from lexmo_jax import phases
from lexmo_jax.models.build import build_model
from lexmo_jax.sharding.mesh import make_mesh
from lexmo_jax.sharding.rules import rules_from_config
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.checkpointing import Checkpointer
from lexmo_jax.train.handoff import initial_params
from lexmo_jax.train.metrics_log import MetricsLog, Progress
from lexmo_jax.train.optimizer import make_optimizer
from lexmo_jax.train.trainer import Trainer

logger = logging.getLogger("lexmo_jax.train")


class NonFiniteLossError(FloatingPointError):
  pass


class PreemptionFlag:
  """Set by SIGTERM (how TPU/GPU schedulers announce preemption)."""

  def __init__(self):
    self.event = threading.Event()
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def __bool__(self):
    return self.event.is_set()


def run_record(config, step: int, stream) -> dict:
  """What a checkpoint says about the run besides the arrays."""
  return {
      "phase": config.phase,
      "step": int(step),
      "total_steps": int(config.total_steps),
      "config": json.loads(config.to_json_best_effort()),
      "data": {"next_step": int(step), "seed": int(config.seed),
               "global_batch_size": int(config.data.global_batch_size),
               "steps_per_epoch": int(stream.steps_per_epoch)},
  }


def _mean_metrics(pending: list[dict]) -> dict[str, float]:
  fetched = jax.device_get(pending)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def _check_finite(step: int, metrics: dict[str, float]):
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    terms = ", ".join(f"{k}={v}" for k, v in metrics.items())
    raise NonFiniteLossError(
        f"non-finite loss at step {step} ({', '.join(sorted(bad))} not finite): {terms}. "
        "The run stopped; the last good checkpoint is kept.")


def train_and_evaluate(config, workdir: str | pathlib.Path) -> dict[str, float]:
  """Runs config.phase to config.total_steps in `workdir`. Returns the last logged metrics."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  phase = phases.get_phase(config)
  mesh, rules = make_mesh(config.mesh), rules_from_config(config)

  tok = data_lib.load_tokenizer(config)
  split_data = data_lib.load_split(config, config.data.train_split)
  stream = data_lib.train_stream(config, split_data, tok, jax.process_index(),
                                 jax.process_count())
  constants = data_lib.phase_constants(config, phase, tok, split_data, workdir)
  tx, schedule = make_optimizer(config.optim, config.total_steps)
  trainer = Trainer(config, phase, build_model(config), tx, schedule, mesh, rules, constants)
  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
  if is_main:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

  with trainer.activated():
    state, start_step = initial_params(config, phase, trainer, ckpt)
  log = MetricsLog(workdir, enabled=is_main)
  progress = Progress(phase.name, start_step, config.total_steps, enabled=is_main)
  if start_step >= config.total_steps:
    logger.info("%s already at step %d of %d: nothing to do", workdir, start_step,
                config.total_steps)
    ckpt.close()
    return {}

  batches = stream.dataset(start_step).as_numpy_iterator()
  pending: list[dict] = []
  last: dict[str, float] = {}
  step = start_step
  with trainer.activated(), PreemptionFlag() as preempted:
    t_log = time.perf_counter()
    while step < config.total_steps:
      state, metrics = trainer.step(state, trainer.global_batch(next(batches)))
      step += 1
      pending.append(metrics)
      loss = float(metrics["loss"])
      if not np.isfinite(loss):
        _check_finite(step, {k: float(v) for k, v in jax.device_get(metrics).items()})
      if step == start_step + 1:
        progress.restart_clock(step)  # the first step paid for compilation
        t_log = time.perf_counter()
      if step % config.log_every == 0 or step == config.total_steps:
        last = _mean_metrics(pending)
        elapsed = time.perf_counter() - t_log
        last["steps_per_second"] = len(pending) / elapsed if elapsed > 0 else 0.0
        pending, t_log = [], time.perf_counter()
        log.write(step, last)
        progress.report(step, last)
      if step % config.checkpoint_every == 0 or step == config.total_steps or preempted:
        ckpt.save(step, state.params, state.opt_state, run_record(config, step, stream))
      if preempted:
        logger.warning("SIGTERM at step %d: checkpoint saved; rerun the same command to resume",
                       step)
        break
  ckpt.wait()
  ckpt.close()
  log.close()
  return last
