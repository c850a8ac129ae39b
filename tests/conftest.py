"""Test setup: eight fake CPU devices, set before JAX starts, so meshes can be tested here."""
import os
import pathlib
import tempfile

# LLVM's -O1 in place of -O2: the tests compile hundreds of tiny programs, which then run a
# few dozen steps; -O1 compiles them about a third faster and runs them as fast.
COMPILE_FLAGS = "--xla_backend_optimization_level=1"


def xla_flags(devices: int) -> str:
  """XLA_FLAGS of a test process, or of a command a test starts, with `devices` CPU devices."""
  return f"--xla_force_host_platform_device_count={devices} {COMPILE_FLAGS}"


os.environ.setdefault("XLA_FLAGS", xla_flags(8))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One compilation cache for the whole run, this process and the commands it starts: the
# tests build many trainers of the same tiny programs, and each would compile them again.
# pytest-xdist's workers inherit the first process's folder and share it; a size limit makes
# JAX lock the folder (filelock) around each read and write, so that no worker reads an
# entry another is still writing.
_CACHE = pathlib.Path(tempfile.gettempdir()) / f"lexmo_jax_test_cache_{os.getpid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))

import shutil

import filelock
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_SAMPLE = ROOT.parent / "shared" / "data" / "humanml3d_sample"


@pytest.fixture(scope="session")
def humanml3d_sample_dir():
  if not SHARED_SAMPLE.exists():
    raise FileNotFoundError(
        f"{SHARED_SAMPLE} is missing: the tests read the real HumanML3D sample files from "
        "../shared/data/humanml3d_sample beside the project root.")
  return SHARED_SAMPLE


def made_once(name: str, make, tmp_path_factory, copy: bool = True) -> pathlib.Path:
  """A folder `make(folder)` fills, made once per test run.

  Under pytest-xdist (`make test`: one process per core) the first worker to need it makes
  it in the run's shared temporary folder, under a file lock, while the others wait. With
  `copy` each worker then works on a copy of its own, so that what a test writes into it
  (indexes, results) never meets another process's; without, every worker reads the one
  folder (tests must only read it). Without xdist it is made in place.
  """
  if "PYTEST_XDIST_WORKER" not in os.environ:
    folder = tmp_path_factory.mktemp(name)
    make(folder)
    return folder
  shared = tmp_path_factory.getbasetemp().parent / f"made_once_{name}"
  with filelock.FileLock(f"{shared}.lock"):
    done = shared.with_name(f"{shared.name}.made")
    if not done.exists():
      shutil.rmtree(shared, ignore_errors=True)
      shared.mkdir()
      make(shared)
      done.touch()
  if not copy:
    return shared
  own = tmp_path_factory.mktemp(name)
  shutil.copytree(shared, own, dirs_exist_ok=True)
  return own


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
  """A small synthetic dataset in HumanML3D's folder format, written once per test run and
  only read by the tests (those that change data copy it first)."""
  from input_pipeline.synthetic import generate_dataset
  return made_once("synthetic", lambda root: generate_dataset(
      root, num_motions=24, seed=0, workers=1), tmp_path_factory, copy=False)


def train_on_one_device(config, workdir):
  """`train_and_evaluate` on the first of the eight fake devices. What a phase learns does not
  depend on the mesh (tests/test_sharding.py checks that), and eight fake devices on a small
  CPU make every step much slower."""
  import jax  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  return train_and_evaluate(config, workdir, devices=jax.devices()[:1])


# Steps of each phase in the shared chain: long enough for each phase to do its job on the
# tiny model (tests/test_lexicality.py measures it), short enough to train once per run.
CHAIN_STEPS = {"lexmlm": 160, "cmmm": 2, "lexmmm": 60, "lexcmlp": 80}


@pytest.fixture(scope="session")
def chain(synthetic_root, tmp_path_factory):
  """Workdirs of the four phases, trained CHAIN_STEPS in order (each from the last), once
  per test run (`made_once`)."""

  def train(root):
    previous = ""
    for name, steps in CHAIN_STEPS.items():
      config = tiny_config(name, synthetic_root, total_steps=steps, init_from=previous,
                           log_every=20, checkpoint_every=steps)
      config.optim.warmup_steps = 10
      train_on_one_device(config, root / name)
      previous = str(root / name)

  root = made_once("chain", train, tmp_path_factory)
  return {name: root / name for name in CHAIN_STEPS}


def tiny_config(phase: str, root, **overrides):
  """The runlocal config of a phase, shrunk further so a test step takes milliseconds.

  Overrides name fields with dots or, as keywords, double underscores (data__root=...).
  """
  import importlib
  c = importlib.import_module(f"configs.{phase}").get_config("runlocal")
  c.data.root = str(root)
  c.data.global_batch_size = 8
  c.data.max_text_length = 24
  for side in (c.text, c.motion):
    side.hidden_size, side.num_heads, side.mlp_dim, side.num_layers = 32, 2, 64, 1
  c.motion.frames_per_token = 8
  c.model.decoder_layers = 1
  c.model.motion_decoder_hidden = 32
  c.model.projection_dim = 32
  c.total_steps = 40
  c.log_every = 1
  c.checkpoint_every = 20
  c.optim.learning_rate = 3e-3
  c.optim.warmup_steps = 5
  if phase == "lexcmlp":
    c.loss.flops_warmup_steps = 10
    # Test runs align for a fifth of the demo's 400 steps: a stronger pull of the
    # off-caption weights to zero gets the demo's concentration in that time.
    c.loss.off_caption_weight = 0.1
  for key, value in overrides.items():
    node = c
    *parents, last = key.replace("__", ".").split(".")
    for p in parents:
      node = node[p]
    node[last] = value
  return c


def read_metrics(workdir) -> list[dict]:
  import json
  path = pathlib.Path(workdir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()]


# Test files whose fixtures train models or start processes, slowest first (measured with
# `--durations` in one process). `make test` hands whole files to its processes in collection
# order (`--dist loadfile --no-loadscope-reorder`): these go first, so that the run does not
# end waiting on one long file started last.
SLOWEST_FILES = ("test_resume.py", "test_sharding.py", "test_baselines.py",
                 "test_captioning.py", "test_training.py", "test_generation_tasks.py",
                 "test_lexicality.py")


def pytest_collection_modifyitems(session, config, items):
  """Orders the collected tests: the files of SLOWEST_FILES first, in its order; each file's
  own tests keep their order."""
  del session, config
  rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_sessionfinish(session, exitstatus):
  """The run's compilation cache goes with it."""
  del session, exitstatus
  if os.environ.get("JAX_COMPILATION_CACHE_DIR") == str(_CACHE):
    shutil.rmtree(_CACHE, ignore_errors=True)
