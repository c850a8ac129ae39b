"""The main command refuses bad configs and missing data at start, naming the problem."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, xla_flags


def _main(*args, devices: int = 1):
  env = dict(os.environ)
  env["XLA_FLAGS"] = xla_flags(devices)
  return subprocess.run([sys.executable, "-m", "lexmo_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--config.data.globl_batch_size=8"], "globl_batch_size"),
    (["--config.data.global_batch_size=eight"], "global_batch_size"),
    (["--config.loss.encoder_mask_rate=1.5"], "config.loss.encoder_mask_rate: must lie in [0.0, 1.0]"),
    (["--config.text.num_heads=3"], "config.text.num_heads: text.hidden_size=64 is not divisible"),
    (["--config.mesh.fsdp=3"], "config.mesh"),
])
def test_bad_config_fields_are_refused_at_start(tmp_path, args, message):
  result = _main("--config=configs/lexmlm.py:runlocal", f"--workdir={tmp_path}", *args)
  assert result.returncode != 0
  assert message in result.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_batch_not_divisible_by_devices_is_refused(tmp_path):
  result = _main("--config=configs/cmmm.py:runlocal", f"--workdir={tmp_path}",
                 "--config.data.global_batch_size=12", devices=8)
  assert result.returncode == 2
  assert "config.data.global_batch_size: 12 is not divisible by the 8 ways" in result.stderr


def test_full_scale_without_dataset_stops_at_once_with_instructions(tmp_path):
  result = _main("--config=configs/lexmlm.py", f"--workdir={tmp_path / 'run'}",
                 f"--config.data.root={tmp_path / 'HumanML3D'}")
  assert result.returncode == 2
  for expected in ("new_joint_vecs", "texts", "Mean.npy", "runlocal"):
    assert expected in result.stderr, result.stderr


def test_compile_mode_reports_memory_and_flops(tmp_path):
  result = _main("--config=configs/lexcmlp.py:runlocal", f"--workdir={tmp_path}",
                 "--mode=compile", "--config.mesh.data=2", "--config.mesh.fsdp=2",
                 "--config.mesh.tensor=2", devices=8)
  assert result.returncode == 0, result.stderr
  out = result.stdout
  numbers = {name: float(re.search(rf"^\s*{name}\s+([0-9.]+) GiB", out, re.M).group(1))
             for name in ("parameters", "optimizer", "arguments", "temporaries")}
  assert all(v > 0 for v in numbers.values()), out
  # Adam keeps two moments of every trained parameter.
  assert numbers["optimizer"] >= numbers["parameters"], out
  flops = float(re.search(r"FLOPs per step\s+([0-9.]+) TFLOP", out).group(1))
  assert flops > 0, out
  assert "mesh {'data': 2, 'fsdp': 2, 'tensor': 2} on 8 cpu device(s)" in out, out
