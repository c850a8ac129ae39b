"""The one training loop that serves all four phases.

It resumes from the workdir's last checkpoint, or starts from the previous phase's
parameters (`config.init_from`), or from scratch; streams the phase's data from the step it
is at; logs, checkpoints, stops cleanly on SIGTERM (preemption) and refuses to go on past a
NaN/Inf loss.

What a workdir holds after interruptions:
  * Killed outright (SIGKILL, a crash): the checkpoints saved so far. Rerunning the same
    command resumes from the newest complete one, with the same data order, so the steps
    after it reproduce an uninterrupted run's. metrics.jsonl is appended to, so the steps
    the killed run logged after that checkpoint appear twice; the later line of a step is the
    one of the run that went on.
  * Preempted (SIGTERM): the step under way finishes, a checkpoint of it is written and
    `train_and_evaluate` returns normally (the command exits 0); rerunning resumes there.
  * Ctrl-C (SIGINT): the same, then RunInterrupted (the command says how to resume and exits
    130 at once); a second Ctrl-C before that ends the process at once, the last saved
    checkpoint kept.
  * Started twice on one workdir: the second run is refused at start (WorkdirBusyError,
    `workdir_lock`), the first goes on untouched.
    On several processes all stop at the same step (see `Preemption`). A SIGTERM that comes
    before the first step (while compiling) ends the process at once, losing nothing.
  * A non-finite loss or gradient: NonFiniteLossError names the step and every loss term;
    nothing from that step on is checkpointed, so the newest checkpoint is the last good one.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import pathlib
import signal
import sys
import threading
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from lexmo_jax import phases
from lexmo_jax.train import data as data_lib
from lexmo_jax.train import write_errors
from lexmo_jax.train.checkpointing import Checkpointer
from lexmo_jax.train.handoff import check_init_from, initial_params
from lexmo_jax.train.metrics_log import MetricsLog, Progress
from lexmo_jax.train.trainer import Trainer, build_trainer
from lexmo_jax.train.workdir_lock import WorkdirLock

logger = logging.getLogger("lexmo_jax.train")


class NonFiniteLossError(FloatingPointError):
  pass


class RunInterrupted(RuntimeError):
  """Ctrl-C stopped the run; the step it reached is saved (`step`)."""

  def __init__(self, step: int):
    super().__init__(f"stopped by Ctrl-C at step {step}: that step is saved; rerun the same "
                     "command to resume from it")
    self.step = step


class Preemption:
  """Whether the run was asked to stop (SIGTERM from a scheduler, or Ctrl-C), decided alike on
  every process.

  One process: SIGTERM and the first SIGINT (Ctrl-C) raise a flag; the loop finishes the step
  under way and saves it. A second Ctrl-C ends the process at once (exit 130) without a
  traceback; the last saved checkpoint stays usable. Several processes (jax.distributed):
  JAX's preemption service catches SIGTERM on any host and picks a step all hosts will reach;
  `reached(step)` is True at that step on every host, so they save the same checkpoint
  together. It must be asked once per step, on every process.

  Attributes:
    signal: 'SIGTERM' or 'SIGINT', what asked the run to stop ('' until then).
  """

  def __init__(self):
    self.event = threading.Event()
    self.signal = ""
    self._previous = {}
    self._multihost = jax.process_count() > 1

  def __enter__(self):
    if not self._multihost and threading.current_thread() is threading.main_thread():
      self._previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_term),
                        signal.SIGINT: signal.signal(signal.SIGINT, self._on_interrupt)}
    return self

  def __exit__(self, *exc):
    for number, handler in self._previous.items():
      signal.signal(number, handler)

  def _on_term(self, *_):
    self.signal = self.signal or "SIGTERM"
    self.event.set()

  def _on_interrupt(self, *_):
    if self.event.is_set():
      _say("\nsecond Ctrl-C: stopped at once; the last saved checkpoint is kept (rerun the "
           "same command to resume from it)\n")
      os._exit(130)  # pylint: disable=protected-access
    self.signal = "SIGINT"
    self.event.set()
    _say("\nCtrl-C: finishing the step under way and saving it (Ctrl-C again to stop at "
         "once)\n")

  def reached(self, step: int) -> bool:
    if self._multihost:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.event.is_set()


def _say(text: str) -> None:
  """Writes to stderr from a signal handler: one raw write that never raises (a full or
  non-blocking pipe only loses the line; the loop says it again when it stops)."""
  try:
    os.write(2, text.encode())
  except OSError:
    pass


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


def _mean_metrics(fetched: list[dict[str, float]]) -> dict[str, float]:
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def _check_finite(step: int, metrics: dict[str, float]):
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  if bad:
    terms = ", ".join(f"{k}={v}" for k, v in metrics.items())
    raise NonFiniteLossError(
        f"non-finite loss at step {step} ({', '.join(sorted(bad))} not finite): {terms}. "
        "The run stopped; the last good checkpoint is kept.")


def _fetch_checked(step: int, metrics) -> dict[str, float]:
  """A step's metrics on the host, refused if any is NaN/Inf (a NaN gradient norm too: the
  update it made has spoilt the parameters even when the loss itself was finite)."""
  values = {k: float(v) for k, v in jax.device_get(metrics).items()}
  _check_finite(step, values)
  return values


def train_and_evaluate(config, workdir: str | pathlib.Path, devices=None) -> dict[str, float]:
  """Runs config.phase to config.total_steps in `workdir`. Returns the last logged metrics.

  `devices` are the mesh's devices (default: all of them, as the command uses).
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  # Only process 0 writes to the workdir, so only it holds the lock.
  with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext() as lock:
    return _train_locked(config, workdir, devices, lock)


def _train_locked(config, workdir: pathlib.Path, devices, lock) -> dict[str, float]:
  is_main = jax.process_index() == 0
  phase = phases.get_phase(config)

  check_init_from(config, phase, workdir)
  tok = data_lib.load_tokenizer(config)
  split_data = data_lib.load_split(config, config.data.train_split)
  stream = data_lib.train_stream(config, split_data, tok, jax.process_index(),
                                 jax.process_count())
  constants = data_lib.phase_constants(config, phase, tok, split_data, workdir)
  trainer = build_trainer(config, constants, devices)
  if is_main:
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))

  ckpt = Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints)
  log = MetricsLog(workdir, enabled=is_main)
  try:
    with trainer.activated():
      state, start_step = initial_params(config, phase, trainer, ckpt)
    if start_step >= config.total_steps:
      logger.info("%s already at step %d of %d: nothing to do", workdir, start_step,
                  config.total_steps)
      return {}
    progress = Progress(phase.name, start_step, config.total_steps, enabled=is_main)
    return _run_steps(config, trainer, state, start_step, stream, ckpt, log, progress, lock)
  finally:
    # Even when the run stops on an error, the checkpoint being written is finished.
    try:
      ckpt.wait()
    except Exception as e:  # pylint: disable=broad-except
      failure = write_errors.checkpoint_failure(ckpt.directory, ckpt.latest_step() or 0, 0, e)
      raise failure from None
    finally:
      ckpt.close()
      log.close()


def _save(ckpt: Checkpointer, step: int, state, record: dict) -> None:
  """Starts the checkpoint of `step` once the filesystem has room for it.

  Raises:
    WriteFailure: no room, or the write (this one or the previous, still in flight) failed.
  """
  size = write_errors.tree_bytes(state.params, state.opt_state)
  write_errors.check_room(ckpt.directory, step, size)
  try:
    ckpt.save(step, state.params, state.opt_state, record)
  except Exception as e:  # pylint: disable=broad-except
    raise write_errors.checkpoint_failure(ckpt.directory, step, size, e) from None


def _run_steps(config, trainer: Trainer, state, start_step: int, stream, ckpt: Checkpointer,
               log: MetricsLog, progress: Progress, lock=None) -> dict[str, float]:
  """Steps start_step + 1 … config.total_steps (or until preempted); the last logged metrics."""
  batches = stream.dataset(start_step).as_numpy_iterator()
  fetched: list[dict[str, float]] = []
  queued = None
  last: dict[str, float] = {}
  step = start_step
  with trainer.activated(), Preemption() as preemption:
    t_log = time.perf_counter()
    while step < config.total_steps:
      state, metrics = trainer.step(state, trainer.global_batch(next(batches)))
      step += 1
      # The previous step's metrics are read only now that this one is queued, so the host
      # stays a step ahead of the devices while every step is still checked.
      if queued is not None:
        fetched.append(_fetch_checked(*queued))
      queued = (step, metrics)
      if step == start_step + 1:
        progress.restart_clock(step)  # the first step paid for compilation
        t_log = time.perf_counter()
      preempted = preemption.reached(step)
      to_log = step % config.log_every == 0 or step == config.total_steps
      to_save = step % config.checkpoint_every == 0 or step == config.total_steps or preempted
      if to_log or to_save:
        # No checkpoint may hold a state that a non-finite step produced.
        fetched.append(_fetch_checked(*queued))
        queued = None
      if to_log:
        last = _mean_metrics(fetched)
        elapsed = time.perf_counter() - t_log
        last["steps_per_second"] = len(fetched) / elapsed if elapsed > 0 else 0.0
        fetched, t_log = [], time.perf_counter()
        log.write(step, last)
        progress.report(step, last)
      if to_save:
        _save(ckpt, step, state, run_record(config, step, stream))
        if lock is not None:
          lock.touch()
      if preempted:
        if preemption.signal == "SIGINT":
          logger.warning("Ctrl-C at step %d: saving it", step)
          raise RunInterrupted(step)  # the checkpoint finishes writing on the way out
        logger.warning("SIGTERM at step %d: checkpoint saved; rerun the same command to resume",
                       step)
        break
  return last
