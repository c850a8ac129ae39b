"""What every command-line entry point shares: quiet library logs and one error format."""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def setup_logging() -> None:
  """Our own INFO lines; only warnings and errors from the libraries."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                      force=True)
  for noisy in ("orbax", "jax", "tensorflow", "etils"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  # Orbax reports routine choices (read-only managers, ...) as absl warnings.
  logging.getLogger("absl").setLevel(logging.ERROR)


def fail(message: str, code: int = 2) -> None:
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)
