"""Runs survive SIGKILL, SIGTERM, damaged checkpoints, mesh changes and multi-host
preemption; a NaN loss stops them cleanly.

The interrupted runs are the real command (`python -m lexmo_jax.main`) in subprocesses with
eight fake CPU devices (or two processes of four); their metrics are compared with an
uninterrupted run's. The subprocesses share a JAX compilation cache, so that a program is
compiled once for all of them.
"""
import dataclasses
import importlib
import os
import pathlib
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from conftest import ROOT, read_metrics, tiny_config, xla_flags
from lexmo_jax import config_validation, phases
from lexmo_jax.sharding.mesh import make_mesh
from lexmo_jax.train import data as data_lib
from lexmo_jax.train import loop
from lexmo_jax.train.checkpointing import Checkpointer, CheckpointError
from lexmo_jax.train.trainer import build_trainer

PHASE = "lexmlm"
TOTAL, EVERY, KEEP = 8, 2, 2


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = value
  return out


def _tiny_flags(phase: str, root, **overrides) -> list[str]:
  """Command-line overrides that turn `configs/<phase>.py:runlocal` into tiny_config(...)."""
  runlocal = _flat(importlib.import_module(f"configs.{phase}").get_config("runlocal").to_dict())
  tiny = _flat(tiny_config(phase, root, **overrides).to_dict())
  return [f"--config.{k}={v}" for k, v in tiny.items() if runlocal.get(k) != v]


def _main_env(cache_dir, devices: int = 8, **extra) -> dict:
  return dict(os.environ, XLA_FLAGS=xla_flags(devices),
              JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache_dir), **extra)


def _start_main(workdir, flags, env, log_name: str = "main.log",
                extra_args=()) -> subprocess.Popen:
  """The training command in the background; its output goes to <workdir>/../<log_name>."""
  with open(pathlib.Path(workdir).parent / log_name, "w") as log:
    return subprocess.Popen(
        [sys.executable, "-m", "lexmo_jax.main", f"--config=configs/{PHASE}.py:runlocal",
         f"--workdir={workdir}", *extra_args, *flags],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _run_main(workdir, flags, env, log_name: str = "main.log") -> tuple[int, str]:
  process = _start_main(workdir, flags, env, log_name)
  code = process.wait(timeout=300)
  return code, (pathlib.Path(workdir).parent / log_name).read_text()


class HeldRun:
  """The training command with its output in a pipe the test reads and can fill.

  `hold_after(step)` reads the run's progress until it reports `step` (its checkpoint of the
  step before is then requested), then fills the pipe: the run blocks at its next line, so it
  cannot finish before the test acts, however fast or slow the machine. `release()` drains
  the pipe again so that a run that was sent SIGTERM can reach its next step and stop.
  Everything the run wrote goes to <workdir>/../<log_name>.
  """

  def __init__(self, workdir, flags, env, log_name: str):
    self.log_path = pathlib.Path(workdir).parent / log_name
    self._log = open(self.log_path, "wb")
    self._read, self._write = os.pipe()
    self.process = subprocess.Popen(
        [sys.executable, "-m", "lexmo_jax.main", f"--config=configs/{PHASE}.py:runlocal",
         f"--workdir={workdir}", *flags],
        cwd=ROOT, env=dict(env, PYTHONUNBUFFERED="1"), stdout=self._write,
        stderr=subprocess.STDOUT)
    self._pending = b""
    self._drain = None

  def hold_after(self, step: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"\] step {step}/".encode())
    while not pattern.search(self._pending):
      ready, _, _ = select.select([self._read], [], [], 1.0)
      if not ready:
        if self.process.poll() is not None:
          raise AssertionError(f"the run ended (code {self.process.returncode}) before step "
                               f"{step}: {self.log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
          self.process.kill()
          raise AssertionError(f"no progress line for step {step} after {timeout} s")
        continue
      chunk = os.read(self._read, 65536)
      self._log.write(chunk)
      self._log.flush()
      self._pending = self._pending[-4096:] + chunk
    os.set_blocking(self._write, False)
    try:
      while True:
        os.write(self._write, b"\n" * 4096)
    except BlockingIOError:
      pass  # the pipe is full: the run's next write blocks

  def release(self) -> None:
    def drain():
      while chunk := os.read(self._read, 65536):
        self._log.write(re.sub(rb"\n{2,}", b"\n", chunk))  # without the filler
    os.close(self._write)
    self._write = None
    self._drain = threading.Thread(target=drain, daemon=True)
    self._drain.start()

  def wait(self, timeout: float = 120) -> int:
    code = self.process.wait(timeout=timeout)
    if self._write is not None:
      os.close(self._write)
    if self._drain is not None:
      self._drain.join(timeout=30)
    os.close(self._read)
    self._log.close()
    return code


def _wait_for_checkpoint(workdir, step: int, process: subprocess.Popen, timeout: float = 300):
  """Polls until checkpoint `step` is complete (Orbax renames it into place when done)."""
  target = pathlib.Path(workdir) / "checkpoints" / str(step)
  deadline = time.monotonic() + timeout
  while not target.is_dir():
    if process.poll() is not None:
      raise AssertionError(f"the run ended (code {process.returncode}) before checkpoint {step}")
    if time.monotonic() > deadline:
      process.kill()
      raise AssertionError(f"no checkpoint {step} after {timeout} s")
    time.sleep(0.02)


def _latest_per_step(workdir) -> dict[int, dict]:
  """metrics.jsonl keyed by step; a step logged twice (before and after a restart) keeps its
  later line, the one of the run that went on."""
  return {r["step"]: r for r in read_metrics(workdir)}


def _assert_same_metrics(got: dict[int, dict], want: dict[int, dict], steps, rtol: float):
  for step in steps:
    for key in ("loss", "mlm_encoder", "mlm_decoder", "grad_norm", "learning_rate"):
      np.testing.assert_allclose(got[step][key], want[step][key], rtol=rtol,
                                 err_msg=f"step {step} {key}")


def _checkpoint_steps(workdir) -> list[int]:
  return sorted(int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir()
                if p.name.isdigit())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return tmp_path_factory.getbasetemp() / "jax_compilation_cache"


@pytest.fixture(scope="module")
def flags(synthetic_root):
  return _tiny_flags(PHASE, synthetic_root, total_steps=TOTAL, checkpoint_every=EVERY,
                     keep_checkpoints=KEEP)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, flags, cache_dir):
  """An uninterrupted run: (workdir, metrics by step)."""
  workdir = tmp_path_factory.mktemp("reference") / "run"
  code, log = _run_main(workdir, flags, _main_env(cache_dir))
  assert code == 0, log
  return workdir, _latest_per_step(workdir)


def test_reference_run_keeps_last_checkpoints_with_their_record(reference, synthetic_root):
  workdir, metrics = reference
  assert sorted(metrics) == list(range(1, TOTAL + 1))
  assert _checkpoint_steps(workdir) == [TOTAL - EVERY, TOTAL]
  ckpt = Checkpointer(workdir / "checkpoints", read_only=True)
  try:
    record = ckpt.read_meta(TOTAL - EVERY)
  finally:
    ckpt.close()
  assert record["phase"] == PHASE and record["step"] == TOTAL - EVERY
  assert record["data"]["next_step"] == TOTAL - EVERY
  assert record["data"]["global_batch_size"] == 8
  assert record["config"]["data"]["root"] == str(synthetic_root)
  assert record["config"]["keep_checkpoints"] == KEEP


def test_rerun_after_sigkill_continues_exactly(tmp_path, flags, cache_dir, reference):
  workdir = tmp_path / "run"
  run = HeldRun(workdir, flags, _main_env(cache_dir), "killed.log")
  run.hold_after(EVERY + 1)
  _wait_for_checkpoint(workdir, EVERY, run.process)
  run.process.send_signal(signal.SIGKILL)
  assert run.wait(timeout=60) == -signal.SIGKILL
  logged_before = [r["step"] for r in read_metrics(workdir)]

  code, log = _run_main(workdir, flags, _main_env(cache_dir), "rerun.log")
  assert code == 0, log
  assert "taking over the lock of a run that is gone" in log  # the killed run's
  restored = int(re.search(rf"resuming {PHASE} from step (\d+)", log).group(1))
  assert restored % EVERY == 0 and EVERY <= restored <= logged_before[-1]
  # The file holds the killed run's lines, then the resumed run's from the step after the
  # checkpoint it restored.
  steps = [r["step"] for r in read_metrics(workdir)]
  assert steps == logged_before + list(range(restored + 1, TOTAL + 1))
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-6)


def test_sigterm_saves_the_step_reached_and_rerun_resumes(tmp_path, flags, cache_dir, reference):
  workdir = tmp_path / "run"
  run = HeldRun(workdir, flags, _main_env(cache_dir), "preempted.log")
  run.hold_after(EVERY + 1)
  _wait_for_checkpoint(workdir, EVERY, run.process)
  run.process.send_signal(signal.SIGTERM)
  run.release()
  assert run.wait(timeout=120) == 0, (tmp_path / "preempted.log").read_text()
  reached = read_metrics(workdir)[-1]["step"]
  assert reached < TOTAL
  assert f"SIGTERM at step {reached}" in (tmp_path / "preempted.log").read_text()
  assert max(_checkpoint_steps(workdir)) == reached
  ckpt = Checkpointer(workdir / "checkpoints", read_only=True)
  try:
    assert ckpt.read_meta(reached)["step"] == reached
  finally:
    ckpt.close()

  code, log = _run_main(workdir, flags, _main_env(cache_dir), "rerun.log")
  assert code == 0, log
  assert f"resuming {PHASE} from step {reached}" in log
  assert [r["step"] for r in read_metrics(workdir)] == list(range(1, TOTAL + 1))
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-6)


def test_ctrl_c_saves_the_step_reached_exits_130_and_rerun_resumes(tmp_path, flags, cache_dir,
                                                                  reference):
  workdir = tmp_path / "run"
  run = HeldRun(workdir, flags, _main_env(cache_dir), "interrupted.log")
  run.hold_after(EVERY + 1)
  _wait_for_checkpoint(workdir, EVERY, run.process)
  run.process.send_signal(signal.SIGINT)
  run.release()
  assert run.wait(timeout=120) == 130, (tmp_path / "interrupted.log").read_text()
  log = (tmp_path / "interrupted.log").read_text()
  reached = read_metrics(workdir)[-1]["step"]
  assert reached < TOTAL and max(_checkpoint_steps(workdir)) == reached
  assert f"Ctrl-C at step {reached}: saving it" in log
  assert f"\nstopped by Ctrl-C at step {reached}: that step is saved" in log
  assert "Traceback" not in log and "KeyboardInterrupt" not in log

  code, log = _run_main(workdir, flags, _main_env(cache_dir), "rerun.log")
  assert code == 0, log
  assert f"resuming {PHASE} from step {reached}" in log
  assert [r["step"] for r in read_metrics(workdir)] == list(range(1, TOTAL + 1))
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-6)


def test_a_second_run_on_a_busy_workdir_is_refused_and_the_first_goes_on(
    tmp_path, flags, cache_dir):
  # The first run is long, so that it is still training when the second one starts, however
  # slow the second's start-up; SIGTERM then ends it.
  long_flags = [f for f in flags if not f.startswith("--config.total_steps=")]
  long_flags.append("--config.total_steps=100000")
  workdir = tmp_path / "run"
  run = HeldRun(workdir, long_flags, _main_env(cache_dir), "first.log")
  run.hold_after(EVERY + 1)
  code, log = _run_main(workdir, long_flags, _main_env(cache_dir), "second.log")
  assert code == 2, log
  assert (f"is in use by another run (process {run.process.pid} on host "
          f"{socket.gethostname()}, started ") in log
  assert "Traceback" not in log and "step 1/" not in log
  assert run.process.poll() is None  # the first run goes on
  run.process.send_signal(signal.SIGTERM)
  run.release()
  assert run.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
  # Every step logged once, by the first run; its checkpoint is the step it reached.
  steps = [r["step"] for r in read_metrics(workdir)]
  assert steps == list(range(1, steps[-1] + 1))
  assert max(_checkpoint_steps(workdir)) == steps[-1]


@pytest.fixture
def small_filesystem(tmp_path):
  """A 28 MB tmpfs: room for one checkpoint of the tiny model (about 17 MB), not two."""
  mount = tmp_path / "small"
  mount.mkdir()
  made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=28m", "tmpfs", str(mount)],
                        capture_output=True, text=True, check=False)
  if made.returncode:
    pytest.skip(f"a small filesystem needs mount (root): {made.stderr.strip()}; the failing "
                "writes are also tested without it in tests/test_workdir_lock.py")
  yield mount
  subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_stops_the_run_in_one_line_and_the_rerun_resumes(
    small_filesystem, flags, cache_dir, reference):
  workdir = small_filesystem / "run"
  code, log = _run_main(workdir, flags, _main_env(cache_dir), "full.log")
  assert code == 1, log
  errors = [line for line in log.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in log and "Event loop" not in log, log
  assert re.search(rf"cannot write the checkpoint of step {2 * EVERY} to {workdir}/checkpoints: "
                   r"No space left on device \(about [\d.]+ MB needed, [\d.]+ MB free there\)",
                   errors[0]), errors[0]
  assert _checkpoint_steps(workdir) == [EVERY]  # the earlier checkpoint, complete
  subprocess.run(["mount", "-o", "remount,size=200m", str(small_filesystem)], check=True)
  code, log = _run_main(workdir, flags, _main_env(cache_dir), "rerun.log")
  assert code == 0, log
  assert f"resuming {PHASE} from step {EVERY}" in log
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-6)


def _damage(folder: pathlib.Path):
  for f in folder.rglob("*"):
    if f.is_file():
      f.write_bytes(b"\x00 not a checkpoint")


def test_damaged_latest_checkpoint_is_reported_and_previous_used(tmp_path, flags, cache_dir,
                                                                 reference):
  workdir = tmp_path / "run"
  shutil.copytree(reference[0], workdir)
  _damage(workdir / "checkpoints" / str(TOTAL) / "params")

  code, log = _run_main(workdir, flags, _main_env(cache_dir), "rerun.log")
  assert code == 0, log
  assert re.search(rf"checkpoints: the checkpoint of step {TOTAL} cannot be read \(\w+", log), log
  assert f"resuming {PHASE} from step {TOTAL - EVERY}" in log
  assert _checkpoint_steps(workdir) == [TOTAL - EVERY, TOTAL]
  assert [p.name.split("-")[0] for p in (workdir / "broken_checkpoints").iterdir()] == [str(TOTAL)]
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-6)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start_job(workdir, flags, cache_dir, tag: str) -> list[subprocess.Popen]:
  """Two processes as SLURM would start them (one task per node), four devices each."""
  coordinator = f"localhost:{_free_port()}"
  processes = []
  for rank in range(2):
    env = _main_env(cache_dir, devices=4, SLURM_JOB_ID="1", SLURM_STEP_NODELIST="localhost",
                    SLURM_NTASKS="2", SLURM_PROCID=str(rank), SLURM_LOCALID="0",
                    JAX_COORDINATOR_ADDRESS=coordinator)
    processes.append(_start_main(workdir, flags, env, f"{tag}_{rank}.log", ["--distributed"]))
  return processes


def _wait_all(processes, workdir, tag: str) -> list[str]:
  codes = [p.wait(timeout=300) for p in processes]
  logs = [(workdir.parent / f"{tag}_{rank}.log").read_text() for rank in range(2)]
  assert codes == [0, 0], "\n\n".join(logs)
  return logs


def test_two_process_job_matches_one_process_and_resumes_on_another_mesh(tmp_path, flags,
                                                                        cache_dir, reference):
  """The SLURM script's command (`--distributed`) as two processes of four devices each,
  finding each other through SLURM's environment variables: each feeds its own half of every
  batch, only process 0 writes logs, a SIGTERM to one stops both at the same step with a
  checkpoint, the rerun restores it onto another mesh, and the losses are those of one
  process with eight devices."""
  workdir = tmp_path / "job" / "run"
  workdir.parent.mkdir()
  job = _start_job(workdir, flags, cache_dir, "preempted")
  _wait_for_checkpoint(workdir, EVERY, job[0])
  job[1].send_signal(signal.SIGTERM)  # the scheduler preempts one host
  logs = _wait_all(job, workdir, "preempted")
  reached = read_metrics(workdir)[-1]["step"]
  for log in logs:
    assert f"SIGTERM at step {reached}" in log, log
  assert max(_checkpoint_steps(workdir)) == reached

  # Saved on (data=8), restored onto (data=2, fsdp=2, tensor=2).
  mesh_flags = ["--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2"]
  logs = _wait_all(_start_job(workdir, flags + mesh_flags, cache_dir, "rerun"), workdir, "rerun")
  assert f"resuming {PHASE} from step {reached}" in logs[0]
  # Only process 0 writes: one line per step, the rerun's from the step after the checkpoint.
  assert [r["step"] for r in read_metrics(workdir)] == list(range(1, TOTAL + 1))
  assert sorted(p.name for p in workdir.iterdir()) == sorted(
      p.name for p in reference[0].iterdir())
  _assert_same_metrics(_latest_per_step(workdir), reference[1], range(1, TOTAL + 1), rtol=1e-3)


@pytest.mark.parametrize("phase", phases.ORDER)
def test_configs_declare_the_fields_runs_rely_on(phase):
  config = importlib.import_module(f"configs.{phase}").get_config()
  for field in ("total_steps", "log_every", "checkpoint_every", "keep_checkpoints", "seed"):
    assert isinstance(config[field], int), field
  assert {k: type(v) for k, v in config.mesh.items()} == {"data": int, "fsdp": int, "tensor": int}
  assert config.dtype in config_validation.DTYPES
  config.keep_checkpoints = 0
  with pytest.raises(config_validation.ConfigError, match="config.keep_checkpoints: must be"):
    config_validation.validate(config, jax.device_count())


# In-process checks of the checkpointer itself (no model; milliseconds).


def _tree(mesh, spec):
  sharding = NamedSharding(mesh, spec)
  return {"w": jax.device_put(jnp.arange(64.0).reshape(8, 8), sharding),
          "b": {"c": jax.device_put(jnp.ones((8,)), NamedSharding(mesh, PartitionSpec()))}}


def _abstract(tree):
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def test_checkpointer_keeps_n_and_restores_into_another_meshes_shardings(tmp_path):
  saved_on = make_mesh({"data": 8, "fsdp": 1, "tensor": 1})
  tree = _tree(saved_on, PartitionSpec("data", None))
  ckpt = Checkpointer(tmp_path / "checkpoints", keep=2)
  for step in range(1, 6):
    ckpt.save(step, tree, {"count": jnp.int32(step)}, {"phase": "test", "step": step})
  ckpt.wait()
  assert ckpt.all_steps() == [4, 5]
  ckpt.close()

  restore_on = make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  target = _abstract(_tree(restore_on, PartitionSpec("fsdp", "tensor")))
  ckpt = Checkpointer(tmp_path / "checkpoints", read_only=True)
  try:
    restored = ckpt.restore_latest(target, {"count": jax.ShapeDtypeStruct((), jnp.int32)})
  finally:
    ckpt.close()
  assert restored.step == 5 and restored.meta == {"phase": "test", "step": 5}
  assert int(restored.opt_state["count"]) == 5
  assert restored.params["w"].sharding == target["w"].sharding
  assert restored.params["w"].sharding.shard_shape((8, 8)) == (4, 4)
  np.testing.assert_array_equal(np.asarray(restored.params["w"]), np.arange(64.0).reshape(8, 8))


def test_save_cut_short_by_a_kill_is_ignored_then_removed(tmp_path):
  mesh = make_mesh({"data": 8, "fsdp": 1, "tensor": 1})
  tree = _tree(mesh, PartitionSpec("data", None))
  count = {"count": jax.ShapeDtypeStruct((), jnp.int32)}
  ckpt = Checkpointer(tmp_path / "checkpoints", keep=3)
  for step in (1, 2):
    ckpt.save(step, tree, {"count": jnp.int32(step)}, {"step": step})
  ckpt.close()
  # What SIGKILL during the save of step 3 leaves: Orbax writes into a temporary folder and
  # renames it to the step's number only when every item is complete.
  partial = tmp_path / "checkpoints" / "3.orbax-checkpoint-tmp"
  shutil.copytree(tmp_path / "checkpoints" / "2", partial)
  shutil.rmtree(partial / "opt_state")

  ckpt = Checkpointer(tmp_path / "checkpoints", keep=3)
  try:
    assert ckpt.all_steps() == [1, 2]
    assert ckpt.restore_latest(_abstract(tree), count).step == 2
  finally:
    ckpt.close()
  assert not partial.exists()


def test_no_readable_checkpoint_is_an_error_naming_every_step(tmp_path):
  mesh = make_mesh({"data": 8, "fsdp": 1, "tensor": 1})
  tree = _tree(mesh, PartitionSpec("data", None))
  ckpt = Checkpointer(tmp_path / "checkpoints", keep=3)
  for step in (1, 2):
    ckpt.save(step, tree, {"count": jnp.int32(step)}, {"step": step})
  ckpt.close()
  for step in (1, 2):
    _damage(tmp_path / "checkpoints" / str(step) / "params")
  ckpt = Checkpointer(tmp_path / "checkpoints")
  try:
    with pytest.raises(CheckpointError, match=r"no checkpoint can be read \(step 2: .*; step 1: "):
      ckpt.restore_latest(_abstract(tree), {"count": jax.ShapeDtypeStruct((), jnp.int32)})
  finally:
    ckpt.close()
  # Nothing is moved away when no checkpoint restores: the cause may be the config.
  assert _checkpoint_steps(tmp_path) == [1, 2]
  assert not (tmp_path / "broken_checkpoints").exists()


def _trainer(config, workdir):
  phase = phases.get_phase(config)
  tok = data_lib.load_tokenizer(config)
  split = data_lib.load_split(config, "train")
  constants = data_lib.phase_constants(config, phase, tok, split, workdir)
  return build_trainer(config, constants)


def test_nan_loss_stops_the_run_naming_step_and_terms(synthetic_root, tmp_path, monkeypatch):
  bad_step = 5
  real = phases.get_phase

  def poisoned(config):
    phase = real(config)

    def loss(context, params, batch, rng, step):
      value, terms = phase.loss(context, params, batch, rng, step)
      # `step` counts finished steps, so the loop's step `bad_step` sees bad_step - 1.
      return jnp.where(step + 1 >= bad_step, jnp.nan, value), terms

    return dataclasses.replace(phase, loss=loss)

  monkeypatch.setattr(loop.phases, "get_phase", poisoned)
  config = tiny_config(PHASE, synthetic_root, total_steps=12, checkpoint_every=2, log_every=3)
  with pytest.raises(loop.NonFiniteLossError,
                     match=rf"non-finite loss at step {bad_step} \(loss not finite\)") as error:
    loop.train_and_evaluate(config, tmp_path)
  for term in ("loss=nan", "mlm_encoder=", "mlm_decoder=", "grad_norm="):
    assert term in str(error.value)
  assert _checkpoint_steps(tmp_path) == [2, 4]
  assert [r["step"] for r in read_metrics(tmp_path)] == [3]
  trainer = _trainer(config, tmp_path)
  ckpt = Checkpointer(tmp_path / "checkpoints", read_only=True)
  try:
    restored = ckpt.restore_latest(trainer.abstract_state.params,
                                   trainer.abstract_state.opt_state)
  finally:
    ckpt.close()
  assert restored.step == 4 and restored.meta["step"] == 4
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(restored.params)))
