"""The launch scripts parse, refuse bad arguments and print their plan with --dry-run.

The plans are checked for what makes them work on the clusters they name: a Python of at
least 3.11 on the workers, the accelerator plugin at the jax version pinned in
requirements.txt, only the code copied, and a check of Python and JAX's backend on every
worker before training. The SLURM job and the TPU launch also run here, with stand-ins for
srun, pip, gcloud and the venv's Python; the workers' checks run here on this CPU-only venv,
where they must refuse.

The command they start is run as a two-process job in test_resume.py
(test_two_process_job_matches_one_process_and_resumes_on_another_mesh).
"""
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tarfile

import pytest

from conftest import ROOT

SCRIPTS = ("launch/tpu_pod.sh", "launch/slurm_gpu.sh")
JAX_VERSION = re.search(r"^jax==(\S+)$", (ROOT / "requirements.txt").read_text(),
                        re.M).group(1)
TPU_ARGS = ("--name", "lexmo-v4", "--zone", "us-central2-b", "--type", "v4-32", "--phase",
            "lexmlm", "--workdir", "/mnt/runs/lexmlm", "--data-root", "/mnt/data/HumanML3D",
            "--dry-run", "--",
            "--config.data.global_batch_size=512")
SLURM_ARGS = ("--nodes", "4", "--gpus-per-node", "8", "--phase", "lexcmlp", "--workdir",
              "/shared/runs/lexcmlp", "--init-from", "/shared/runs/lexmmm", "--data-root",
              "/shared/HumanML3D", "--dry-run", "--", "--config.mesh.fsdp=8")


def _bash(*args, env=None):
  return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                        env=env)


def _ok(*args):
  result = _bash(*args)
  assert result.returncode == 0, result.stderr
  return result.stdout


def _options(script):
  """Every option the script's argument loop accepts."""
  text = (ROOT / script).read_text()
  return sorted({option for pattern in re.findall(r"^\s+(-[-\w|]+)\) ", text, re.M)
                 for option in pattern.split("|") if option not in ("--", "--*")})


def _readme_section():
  readme = (ROOT / "README.md").read_text()
  start = readme.index("## Running on accelerators")
  return readme[start:readme.index("\n## ", start + 1)]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses(script):
  result = _bash("-n", script)
  assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_is_documented_in_help_and_readme(script):
  options = _options(script)
  assert {"--dry-run", "--help", "--phase", "--workdir", "--python"} <= set(options)
  usage = _ok(script, "--help")
  section = _readme_section()
  for option in options:
    assert re.search(rf"(^|\s){re.escape(option)}\b", usage), (option, usage)
    if option != "-h":
      assert f"`{option}" in section, f"{script} {option} is not in the README section"


# --- TPU pods ----------------------------------------------------------------------------


def _tpu_steps(out):
  """{step number: the lines printed under '# N. ...'}."""
  steps, current = {}, None
  for line in out.splitlines():
    match = re.match(r"# (\d)\. ", line)
    if match:
      current = int(match.group(1))
      steps[current] = [line]
    elif current is not None:
      steps[current].append(line)
  return steps


def _worker_script(step_lines):
  """The script a `gcloud ... ssh --worker=all --command=...` line runs on every worker."""
  start = next(i for i, line in enumerate(step_lines) if line.startswith("+ gcloud ")
               and " ssh " in line)
  ssh = step_lines[start]
  assert ssh.split()[:6] == ["+", "gcloud", "compute", "tpus", "tpu-vm", "ssh"], ssh
  assert "--worker=all" in ssh and ssh.endswith("--command=\"$(cat <<'EOF'"), ssh
  end = step_lines.index("EOF", start)
  assert step_lines[end + 1] == ')"'
  return "\n".join(step_lines[start + 1:end])


def test_tpu_dry_run_prints_the_plan():
  out = _ok("launch/tpu_pod.sh", *TPU_ARGS)
  lines = out.splitlines()
  assert lines[0] == "plan: TPU slice lexmo-v4 (v4-32, us-central2-b), phase lexmlm, workdir " \
                     "/mnt/runs/lexmlm"
  steps = _tpu_steps(out)
  assert sorted(steps) == [1, 2, 3, 4, 5, 6]

  # 1. Only the code: the tracked files of HEAD, never runs/, data/ or .venv/.
  archive = shlex.split(steps[1][1][2:])
  assert archive[:4] == ["git", "-C", str(ROOT), "archive"] and "HEAD" in archive, archive
  for folder in ("runs", "data", ".venv"):
    assert f":(exclude){folder}" in archive, archive
  tarball = next(a for a in archive if a.startswith("--output=")).split("=", 1)[1]

  # 2. The slice from the runtime image for its TPU generation.
  create = steps[2][1]
  assert create.startswith("+ gcloud compute tpus tpu-vm create lexmo-v4 "), create
  assert "--accelerator-type=v4-32" in create and "--version=tpu-ubuntu2204-base" in create

  # 3. The archive, and nothing else, goes to every worker.
  scp = shlex.split(steps[3][1][2:])
  assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"] and "--worker=all" in scp
  assert tarball in scp and "--recurse" not in scp and str(ROOT) not in scp, scp

  # 4. A venv with Python 3.11 (uv fetches it: the image's Python is 3.10), the pinned stack
  # and jax[tpu] at the pinned version.
  setup = _worker_script(steps[4])
  assert f"python=3.11 jax_version={JAX_VERSION} " in setup.splitlines()[0], setup
  for command in ('tar -xzf ~/"$archive" -C ~/lexmo_jax',
                  'python3 -m uv venv -q --seed --python "$python" .venv',
                  ".venv/bin/pip install -q -r requirements.txt",
                  '.venv/bin/pip install -q "jax[tpu]==$jax_version"'):
    assert command in setup, command
  assert _bash("-n", "-c", setup).returncode == 0

  # 5. Python and the backend checked on every worker before 6. training.
  check = _worker_script(steps[5])
  assert "sys.version_info < (3, 11)" in check and 'backend != "tpu"' in check
  assert steps[5][1].startswith("+ gcloud compute tpus tpu-vm describe lexmo-v4 "), steps[5]
  assert steps[5][-1] == "# stop unless every worker printed 'check passed'"
  train = _worker_script(steps[6])
  assert train.startswith("cd ~/lexmo_jax && exec .venv/bin/python -m lexmo_jax.main "), train
  for flag in ("--config=configs/lexmlm.py", "--workdir=/mnt/runs/lexmlm", "--distributed",
               "--config.data.global_batch_size=512"):
    assert flag in shlex.split(train), train
  assert not os.path.exists(tarball), "--dry-run must not build the archive"


def test_tpu_archive_holds_only_the_code(tmp_path):
  out = _ok("launch/tpu_pod.sh", *TPU_ARGS)
  archive = [a for a in shlex.split(_tpu_steps(out)[1][1][2:]) if not a.startswith("--output=")]
  tarball = tmp_path / "code.tar.gz"
  subprocess.run([*archive[:4], f"--output={tarball}", *archive[4:]], check=True, timeout=60)
  with tarfile.open(tarball) as tar:
    names = tar.getnames()
  for name in ("lexmo_jax/main.py", "requirements.txt", "requirements-nodeps.txt",
               "configs/lexmlm.py"):
    assert name in names
  assert not [n for n in names if n.split("/")[0] in ("runs", "data", ".venv")]


@pytest.mark.parametrize("passed", [2, 1])
def test_tpu_launch_trains_only_if_every_worker_passes_the_check(tmp_path, passed):
  """The script run for real with a gcloud that logs, for a slice of two workers."""
  log, bin_dir = tmp_path / "log", tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "gcloud").write_text(
      f'#!/bin/sh\necho "$3 $4" >> {log}\n'
      'case "$*" in *" describe "*) echo 2;; esac\n'
      f'case "$*" in *"check passed"*) for i in $(seq {passed}); do echo "check passed: w$i"; '
      'done;; esac\n')
  (bin_dir / "gcloud").chmod(0o755)
  env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
  args = [a for a in TPU_ARGS if a != "--dry-run"]
  result = _bash("launch/tpu_pod.sh", *args, env=env)
  calls = log.read_text().splitlines()
  assert calls[:5] == ["tpu-vm create", "tpu-vm scp", "tpu-vm ssh", "tpu-vm describe",
                       "tpu-vm ssh"], calls
  if passed == 2:
    assert result.returncode == 0, result.stderr
    assert calls[5:] == ["tpu-vm ssh"]
  else:
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "tpu_pod.sh: the check passed on 1 of 2 workers " \
        "(their messages are above); training not started", result.stderr
    assert len(calls) == 5
  assert not list(tmp_path.glob("lexmo_jax-*.tar.gz")), "the archive is removed at exit"


@pytest.mark.parametrize("tpu_type, image", [("v4-32", "tpu-ubuntu2204-base"),
                                             ("v5litepod-16", "v2-alpha-tpuv5-lite"),
                                             ("v5p-8", "v2-alpha-tpuv5"),
                                             ("v6e-8", "v2-alpha-tpuv6e")])
def test_tpu_image_follows_the_type(tpu_type, image):
  args = list(TPU_ARGS)
  args[args.index("v4-32")] = tpu_type
  assert f"--version={image}" in _tpu_steps(_ok("launch/tpu_pod.sh", *args))[2][1]


def test_tpu_options_change_the_plan():
  out = _ok("launch/tpu_pod.sh", "--version", "my-image", "--python", "3.12", "--no-create",
            *TPU_ARGS)
  steps = _tpu_steps(out)
  assert "gcloud" not in "\n".join(steps[2]), steps[2]
  assert _worker_script(steps[4]).startswith("python=3.12 ")
  assert "version=my-image" in _worker_script(steps[5])


def test_tpu_worker_check_refuses_cpu_jax(tmp_path):
  """The check of step 5, run here: this venv's JAX runs on the CPU, so it must stop."""
  check = _worker_script(_tpu_steps(_ok("launch/tpu_pod.sh", *TPU_ARGS))[5])
  (tmp_path / "lexmo_jax").mkdir()
  (tmp_path / "lexmo_jax" / ".venv").symlink_to(pathlib.Path(sys.executable).parents[1])
  result = _bash("-c", check, env={**os.environ, "HOME": str(tmp_path)})
  assert result.returncode == 1, result.stderr
  assert result.stderr.strip().splitlines()[-1].endswith(
      "JAX runs on 'cpu', not 'tpu': check that jax[tpu] (libtpu) installed in "
      "~/lexmo_jax/.venv, that no other process holds the TPU, and that --version "
      "tpu-ubuntu2204-base is a TPU software version for this --type"), result.stderr


# --- SLURM --------------------------------------------------------------------------------


def _slurm_job(*extra):
  out = _ok("launch/slurm_gpu.sh", *extra, *SLURM_ARGS)
  assert out.splitlines()[0] == \
      "plan: 4 node(s) × 8 GPU(s), phase lexcmlp, workdir /shared/runs/lexcmlp"
  return "\n".join(out.splitlines()[1:]) + "\n"


def test_slurm_dry_run_prints_the_job():
  job = _slurm_job()
  lines = job.splitlines()
  assert lines[0] == "#!/usr/bin/env bash"
  for line in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --signal=TERM@120",
               f"cd {ROOT}", f"gpus=8 cuda=12 jax_version={JAX_VERSION} venv=.venv-cuda12",
               "python=$(command -v python3.11 || command -v python3 || echo python3)",
               '"$venv/bin/pip" install -q -r requirements.txt',
               '"$venv/bin/pip" install -q "jax[cuda$cuda]==$jax_version"',
               "export JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7"):
    assert line in lines, line
  # The plugin is installed on every submission, not only when the venv is new.
  assert lines.index('"$venv/bin/pip" install -q "jax[cuda$cuda]==$jax_version"') > \
      lines.index("fi")
  check = next(i for i, line in enumerate(lines) if line.startswith('srun "$venv/bin/python" -c'))
  train = next(i for i, line in enumerate(lines) if " -m lexmo_jax.main " in line)
  assert check < train
  command = shlex.split(lines[train])
  for flag in ("--config=configs/lexcmlp.py", "--workdir=/shared/runs/lexcmlp", "--distributed",
               "--config.init_from=/shared/runs/lexmmm", "--config.data.root=/shared/HumanML3D",
               "--config.mesh.fsdp=8"):
    assert flag in command, command


def test_slurm_options_change_the_job():
  job = _slurm_job("--cuda", "13", "--venv", "/shared/venvs/lexmo", "--python",
                   "/opt/python3.12/bin/python3", "--partition", "gpu", "--time", "2:00:00",
                   "--setup", "module load cuda")
  lines = job.splitlines()
  for line in ("#SBATCH --partition=gpu", "#SBATCH --time=2:00:00", "module load cuda",
               f"gpus=8 cuda=13 jax_version={JAX_VERSION} venv=/shared/venvs/lexmo",
               "python=/opt/python3.12/bin/python3"):
    assert line in lines, line


def _stand_ins(tmp_path, srun_check_status=0):
  """A venv whose pip, and an srun, log their arguments and run nothing; its python passes."""
  log = tmp_path / "log"
  venv, bin_dir = tmp_path / "venv", tmp_path / "bin"
  (venv / "bin").mkdir(parents=True)
  bin_dir.mkdir()
  logger = f"#!/bin/sh\n{{ printf %s \"${{0##*/}}\"; printf ' %s' \"$@\"; }} | tr '\\n' ' ' " \
           f"| cut -c1-300 >> {log}\n"
  for path, body in ((venv / "bin" / "python", "#!/bin/sh\n"),
                     (venv / "bin" / "pip", logger),
                     (bin_dir / "srun",
                      logger + f'case "$*" in *" -c "*) exit {srun_check_status};; esac\n')):
    path.write_text(body)
    path.chmod(0o755)
  return venv, bin_dir, log


@pytest.mark.parametrize("check_status", [0, 1])
def test_slurm_job_installs_the_plugin_and_checks_before_training(tmp_path, check_status):
  """The batch script, run here as an existing venv (e.g. make demo's) would meet it."""
  venv, bin_dir, log = _stand_ins(tmp_path, check_status)
  job = _slurm_job("--venv", str(venv))
  env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
  result = subprocess.run(["bash", "-c", job], capture_output=True, text=True, timeout=60,
                          env=env)
  assert result.returncode == check_status, result.stderr
  calls = log.read_text().splitlines()
  assert calls[:3] == ["pip install -q -r requirements.txt",
                       "pip install -q --no-deps -r requirements-nodeps.txt",
                       f"pip install -q jax[cuda12]=={JAX_VERSION}"], calls
  assert calls[3].startswith(f"srun {venv}/bin/python -c import importlib.metadata"), calls
  if check_status:
    assert len(calls) == 4, "training must not start after a failed check"
  else:
    assert calls[4].startswith(f"srun {venv}/bin/python -m lexmo_jax.main "), calls


def test_slurm_job_refuses_an_old_python(tmp_path):
  old = tmp_path / "python3.9"
  old.write_text('#!/bin/sh\ncase "$2" in *print*) echo 3.9.2;; *) exit 1;; esac\n')
  old.chmod(0o755)
  job = _slurm_job("--venv", str(tmp_path / "venv"), "--python", str(old))
  result = subprocess.run(["bash", "-c", job], capture_output=True, text=True, timeout=60)
  assert result.returncode == 1
  assert result.stderr.strip().endswith(
      f"{old} is Python 3.9.2; the pinned jax needs 3.11 or newer: pass --python "
      "/path/to/python3.11 or --setup 'module load ...'"), result.stderr
  assert not (tmp_path / "venv").exists()


def test_slurm_node_check_refuses_cpu_jax():
  """The check srun runs on every node, run here on this venv without the CUDA plugin."""
  job = _slurm_job()
  check = job.split("check=$(cat <<'PY'\n", 1)[1].split("\nPY\n", 1)[0]
  result = subprocess.run([sys.executable, "-c", check, "8", "12", ".venv-cuda12"],
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 1
  assert result.stderr.strip().endswith(
      "jax-cuda12-plugin is not installed in .venv-cuda12, so JAX would run on the CPU: "
      "install jax[cuda12] at the pinned jax version into it"), result.stderr


# --- Bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("script, args, message", [
    ("launch/slurm_gpu.sh", ["--phase", "lexmlm"], "need --phase and --workdir"),
    ("launch/slurm_gpu.sh", ["--phase", "lexmllm", "--workdir", "w"], "unknown phase: lexmllm"),
    ("launch/slurm_gpu.sh", ["--bogus"], "unknown argument: --bogus (see --help)"),
    ("launch/slurm_gpu.sh", ["--phase", "lexmlm", "--workdir", "w", "--cuda", "11"],
     "--cuda 11: expected 12 or 13"),
    ("launch/slurm_gpu.sh", ["--phase", "lexmlm", "--workdir", "w", "--nodes", "0"],
     "--nodes 0: expected a positive integer"),
    ("launch/slurm_gpu.sh", ["--phase", "lexmlm", "--workdir"], "--workdir needs a value"),
    ("launch/tpu_pod.sh", ["--name", "n", "--zone", "z", "--type", "t", "--workdir", "w"],
     "missing --phase"),
    ("launch/tpu_pod.sh", ["--bogus"], "unknown argument: --bogus (see --help)"),
    ("launch/tpu_pod.sh", ["--name", "n", "--zone", "z", "--type", "t", "--phase", "lexmlm",
                           "--workdir", "w"],
     "--workdir w: give a gs:// bucket or an absolute path every worker shares"),
    ("launch/tpu_pod.sh", ["--name", "n", "--zone", "z", "--type", "t", "--phase", "lexmlm",
                           "--workdir", "gs://b/w"],
     "missing --data-root: the dataset folder (gs:// or an absolute path on every worker; "
     "data/ is not copied), or --config.data.tfds_dir=… after --"),
    ("launch/tpu_pod.sh", ["--name", "n", "--zone", "z", "--type", "t", "--phase", "lexmlm",
                           "--workdir", "/w", "--data-root", "/d", "--python", "3.10"],
     "--python 3.10: the pinned jax needs Python 3.11 or newer (e.g. --python 3.11)"),
    ("launch/tpu_pod.sh", ["--zone"], "--zone needs a value"),
])
def test_bad_arguments_are_refused(script, args, message):
  result = _bash(script, *args, "--dry-run")
  assert result.returncode == 2
  assert result.stderr.splitlines() == [f"{script.split('/')[1]}: {message}"], result.stderr
  assert result.stdout == ""
