"""Runs one pre-training phase.

  python -m lexmo_jax.main --config=configs/lexmlm.py:runlocal --workdir=runs/lexmlm
  python -m lexmo_jax.main --config=configs/cmmm.py:runlocal --workdir=runs/cmmm \
      --config.init_from=runs/lexmlm
  python -m lexmo_jax.main --config=configs/lexcmlp.py --workdir=... --mode=compile

Any config field can be overridden (`--config.data.global_batch_size=128`); unknown fields,
wrong types and inconsistent values are refused before any work starts.
"""
from __future__ import annotations

import logging
import os
import pathlib
import sys

from absl import flags
from ml_collections import config_flags

from lexmo_jax.cli import fail, run, setup_logging

INTERRUPTED = 130  # the shell's status for a run stopped by SIGINT

_CONFIG = config_flags.DEFINE_config_file("config", None, "Phase config file[:variant].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and metrics.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "compile"],
                          "train: run the phase; compile: compile the step ahead of time and "
                          "report memory and FLOPs without running it.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host pods, SLURM).")


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top

  from input_pipeline.humanml3d import DatasetError  # pylint: disable=g-import-not-at-top
  from lexmo_jax import config_validation  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train.handoff import HandoffError  # pylint: disable=g-import-not-at-top

  setup_logging()
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  config = _CONFIG.value
  if config is None:
    fail("--config is required, e.g. --config=configs/lexmlm.py:runlocal")
  if not _WORKDIR.value:
    fail("--workdir is required")
  try:
    config_validation.validate(config, jax.device_count())
  except config_validation.ConfigError as e:
    fail(str(e))

  if _MODE.value == "compile":
    from lexmo_jax.train import compile_report  # pylint: disable=g-import-not-at-top
    print(compile_report.report(config))
    return

  from lexmo_jax.train.checkpointing import CheckpointError  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train.loop import NonFiniteLossError, RunInterrupted, train_and_evaluate  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train.workdir_lock import WorkdirBusyError  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train.write_errors import WriteFailure  # pylint: disable=g-import-not-at-top
  try:
    train_and_evaluate(config, _WORKDIR.value)
  except DatasetError as e:
    config_file = config_flags.get_config_filename(flags.FLAGS["config"]).split(":")[0]
    missing = not config.data.tfds_dir and not pathlib.Path(config.data.root).is_dir()
    fail(f"{e}\nTo run on the synthetic default instead: make data, then "
         f"--config={config_file}:runlocal" if missing else str(e))
  except (HandoffError, NonFiniteLossError, CheckpointError, FileNotFoundError,
          WorkdirBusyError) as e:
    fail(str(e))
  except RunInterrupted as e:
    _exit_now(str(e), INTERRUPTED)
  except KeyboardInterrupt:  # before the first step, or while the last checkpoint was written
    _exit_now("stopped by Ctrl-C; the checkpoints saved so far are kept: rerun the same "
              "command to resume from the newest", INTERRUPTED)
  except WriteFailure as e:
    _exit_now(f"error: {e}", 1)


def _exit_now(message: str, code: int) -> None:
  """Prints `message` and ends the process at once. Every checkpoint is complete by now;
  interpreter shutdown would only spend a minute collecting the runtime's objects (and a
  storage library's queued writes repeat a failure as tracebacks), during which a second
  Ctrl-C could not be answered."""
  logging.shutdown()
  try:
    sys.stdout.flush()
  except OSError:
    pass
  try:
    os.write(2, (message + "\n").encode())
  except OSError:
    pass
  os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  run(main)
