"""Run outputs a person reads: metrics.jsonl, TensorBoard summaries and a progress line."""
from __future__ import annotations

import json
import logging
import pathlib
import sys
import time

logger = logging.getLogger("lexmo_jax.train")


class MetricsLog:
  """Appends one JSON object per logged step to <workdir>/metrics.jsonl (and TensorBoard).

  A resumed run appends, so the interrupted run's history stays readable. Only the main
  process writes.
  """

  def __init__(self, workdir: str | pathlib.Path, enabled: bool = True):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if enabled:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._tf = tf
      self._tb = tf.summary.create_file_writer(str(pathlib.Path(workdir) / "tensorboard"))

  def write(self, step: int, metrics: dict[str, float]):
    """Appends the step's line and summaries.

    Raises:
      WriteFailure: either could not be written (naming the file and why).
    """
    from lexmo_jax.train import write_errors  # pylint: disable=g-import-not-at-top
    if not self.enabled:
      return
    record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    try:
      with self.path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    except OSError as e:
      raise write_errors.output_failure(self.path, "the metrics log", e) from None
    try:
      with self._tb.as_default():
        for k, v in metrics.items():
          self._tf.summary.scalar(k, float(v), step=int(step))
      self._tb.flush()
    except Exception as e:  # pylint: disable=broad-except
      raise write_errors.output_failure(self.path.parent / "tensorboard",
                                        "the TensorBoard events in", e) from None

  def close(self):
    if self._tb is not None:
      self._tb.close()


class Progress:
  """Prints `phase step/total loss … steps/s ETA` lines."""

  def __init__(self, phase: str, start_step: int, total_steps: int, enabled: bool = True):
    self.phase = phase
    self.total = total_steps
    self.enabled = enabled
    self._t0 = time.perf_counter()
    self._s0 = start_step

  def rate(self, step: int) -> float:
    elapsed = time.perf_counter() - self._t0
    return (step - self._s0) / elapsed if elapsed > 0 else 0.0

  def restart_clock(self, step: int):
    """Measures from here on (the first step includes compilation)."""
    self._t0, self._s0 = time.perf_counter(), step

  def report(self, step: int, metrics: dict[str, float]):
    if not self.enabled:
      return
    rate = self.rate(step)
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    terms = " ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                     if k not in ("loss", "learning_rate", "steps_per_second"))
    line = (f"[{self.phase}] step {step}/{self.total} loss={metrics['loss']:.4f} {terms} "
            f"lr={metrics.get('learning_rate', 0):.2e} {rate:.2f} steps/s ETA {format_eta(eta)}")
    print(line, file=sys.stdout, flush=True)


def format_eta(seconds: float) -> str:
  if seconds != seconds:  # NaN: no rate yet
    return "--:--"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
