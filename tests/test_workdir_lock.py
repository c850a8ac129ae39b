"""One run per workdir (the lock), and what Ctrl-C does in the training loop."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from lexmo_jax.train import loop
from lexmo_jax.train.workdir_lock import LOCK_FILE, WorkdirBusyError, WorkdirLock


def test_a_held_workdir_is_refused_with_its_holder(tmp_path):
  with WorkdirLock(tmp_path):
    record = json.loads((tmp_path / LOCK_FILE).read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    with pytest.raises(WorkdirBusyError, match=rf"in use by another run \(process "
                                                rf"{os.getpid()} on host "):
      with WorkdirLock(tmp_path):
        pass
  with WorkdirLock(tmp_path):  # released at the end of the run: free again
    pass
  assert (tmp_path / LOCK_FILE).read_text() == ""


def test_a_dead_runs_lock_is_taken_over_with_a_warning(tmp_path, caplog):
  gone = subprocess.Popen([sys.executable, "-c", "pass"])
  gone.wait()
  (tmp_path / LOCK_FILE).write_text(json.dumps(
      {"host": socket.gethostname(), "pid": gone.pid, "started": "earlier"}))
  with caplog.at_level("WARNING"), WorkdirLock(tmp_path):
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
  assert f"taking over the lock of a run that is gone (process {gone.pid}" in caplog.text


def test_a_fresh_lock_of_another_host_is_respected(tmp_path):
  (tmp_path / LOCK_FILE).write_text(json.dumps(
      {"host": "node-17", "pid": 4242, "started": "2026-12-01T08:00:00+00:00"}))
  with pytest.raises(WorkdirBusyError, match="process 4242 on host node-17"):
    with WorkdirLock(tmp_path):
      pass


def test_second_ctrl_c_stops_at_once_without_a_traceback(monkeypatch, capfd):
  def exit_now(code):
    raise SystemExit(code)
  monkeypatch.setattr(os, "_exit", exit_now)
  with loop.Preemption() as preemption:
    preemption._on_interrupt()  # pylint: disable=protected-access
    assert preemption.reached(5) and preemption.signal == "SIGINT"
    with pytest.raises(SystemExit) as stopped:
      preemption._on_interrupt()  # pylint: disable=protected-access
  assert stopped.value.code == 130
  err = capfd.readouterr().err
  assert "Ctrl-C: finishing the step under way" in err
  assert "second Ctrl-C: stopped at once; the last saved checkpoint is kept" in err


def test_failed_writes_are_named_with_their_meaning(tmp_path):
  from lexmo_jax.train import write_errors
  from lexmo_jax.train.metrics_log import MetricsLog

  class FullDisk:
    directory = tmp_path / "checkpoints"

    def save(self, *args):
      raise ValueError('RESOURCE_EXHAUSTED: Error writing "params" in OCDBT database')

  state = type("State", (), {"params": {"w": np.zeros(4, np.float32)}, "opt_state": {}})()
  with pytest.raises(write_errors.WriteFailure,
                     match=rf"checkpoint of step 4 to {FullDisk.directory}: No space left on "
                           r"device \(about 0.0 MB needed, [\d.]+ MB free there\)"):
    loop._save(FullDisk(), 4, state, {})  # pylint: disable=protected-access
  log = MetricsLog(tmp_path / "run")
  (tmp_path / "run" / "metrics.jsonl").mkdir()  # where the file should go, a folder
  with pytest.raises(write_errors.WriteFailure,
                     match=r"cannot write the metrics log .*metrics.jsonl: Is a directory"):
    log.write(1, {"loss": 1.0})
  log.close()
