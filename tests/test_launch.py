"""The launch scripts parse, refuse bad arguments and print their plan with --dry-run.

The command they start is run as a two-process job in test_resume.py
(test_two_process_job_matches_one_process_and_resumes_on_another_mesh).
"""
import subprocess

import pytest

from conftest import ROOT

SCRIPTS = ("launch/tpu_pod.sh", "launch/slurm_gpu.sh")


def _bash(*args):
  return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses(script):
  result = _bash("-n", script)
  assert result.returncode == 0, result.stderr


def test_slurm_dry_run_prints_the_job(tmp_path):
  result = _bash("launch/slurm_gpu.sh", "--nodes", "4", "--gpus-per-node", "8", "--phase",
                 "lexcmlp", "--workdir", "/shared/runs/lexcmlp", "--init-from",
                 "/shared/runs/lexmmm", "--data-root", "/shared/HumanML3D", "--dry-run", "--",
                 "--config.mesh.fsdp=8")
  assert result.returncode == 0, result.stderr
  out = result.stdout
  assert "plan: 4 node(s) × 8 GPU(s), phase lexcmlp, workdir /shared/runs/lexcmlp" in out
  for line in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --signal=TERM@120",
               "export JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7"):
    assert line in out.splitlines(), out
  command = next(line for line in out.splitlines() if line.startswith("srun "))
  for flag in ("-m lexmo_jax.main", "--config=configs/lexcmlp.py",
               "--workdir=/shared/runs/lexcmlp", "--distributed",
               "--config.init_from=/shared/runs/lexmmm", "--config.data.root=/shared/HumanML3D",
               "--config.mesh.fsdp=8"):
    assert flag in command, command
  assert not (tmp_path / "runs").exists()


def test_tpu_dry_run_prints_the_commands():
  result = _bash("launch/tpu_pod.sh", "--name", "lexmo-v4", "--zone", "us-central2-b", "--type",
                 "v4-32", "--phase", "lexmlm", "--workdir", "/mnt/runs/lexmlm", "--dry-run", "--",
                 "--config.data.global_batch_size=512")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0] == "plan: TPU slice lexmo-v4 (v4-32, us-central2-b), phase lexmlm, workdir " \
                     "/mnt/runs/lexmlm"
  assert [line.split()[:5] for line in lines[1:]] == [
      ["+", "gcloud", "compute", "tpus", "tpu-vm"]] * 3
  assert "--accelerator-type=v4-32" in lines[1]
  assert "--worker=all" in lines[3]
  remote = lines[3].replace("\\", "")
  for flag in ("jax[tpu]==", "-m lexmo_jax.main", "--config=configs/lexmlm.py",
               "--workdir=/mnt/runs/lexmlm", "--distributed",
               "--config.data.global_batch_size=512"):
    assert flag in remote, remote


@pytest.mark.parametrize("script, args, message", [
    ("launch/slurm_gpu.sh", ["--phase", "lexmlm"], "need --phase and --workdir"),
    ("launch/slurm_gpu.sh", ["--phase", "lexmllm", "--workdir", "w"], "unknown phase: lexmllm"),
    ("launch/tpu_pod.sh", ["--name", "n", "--zone", "z", "--type", "t", "--workdir", "w"],
     "missing --phase"),
    ("launch/tpu_pod.sh", ["--bogus"], "unknown argument: --bogus"),
])
def test_bad_arguments_are_refused(script, args, message):
  result = _bash(script, *args, "--dry-run")
  assert result.returncode == 2
  assert message in result.stderr
