"""What every command-line entry point shares: quiet library logs, one error format, and
flags parsed so that a typo is refused in one line (`input_pipeline.command_line`)."""
from __future__ import annotations

import logging
import re
import sys

from input_pipeline import command_line


def setup_logging() -> None:
  """Our own INFO lines; only warnings and errors from the libraries."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.WARNING)
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                      force=True)
  for noisy in ("orbax", "jax", "tensorflow", "etils", "faiss"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  # Orbax reports routine choices (read-only managers, ...) as absl warnings.
  logging.getLogger("absl").setLevel(logging.ERROR)


def fail(message: str, code: int = command_line.USAGE_ERROR) -> None:
  """`error: <message>` on one line of stderr, then exit with `code`."""
  command_line.refuse(message, code)


def _config_override_error(error: Exception, argv: list[str]) -> str:
  """One line for an ml_collections override of a field that does not exist."""
  text = str(error).replace("\\'", "'").replace('\\n', "\n")
  key = re.search(r"'([A-Za-z0-9_]+)'", text)
  hint = re.search(r'Did you mean "([^"]+)"', text)
  for arg in argv:
    path = arg.split("=", 1)[0].lstrip("-")
    if path.startswith("config.") and key and key.group(1) in path.split("."):
      message = f"--{path}: no such config field"
      if hint:
        parts = path.split(".")
        parts[parts.index(key.group(1))] = hint.group(1)
        message += f"; did you mean --{'.'.join(parts)}?"
      return message
  return f"a --config override names no config field: {text}"


def parse_flags(argv: list[str]) -> list[str]:
  """absl flag parsing with one-line refusals (exit 2) instead of tracebacks."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  known = [name for name in flags.FLAGS if not name.startswith("only_check_args")]
  try:
    return flags.FLAGS(argv)
  except flags.UnrecognizedFlagError as e:
    fail(command_line.unknown_flag_message(e.flagname, known))
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text:  # an error raised inside the config file: its last line says it
      last = [l.strip() for l in text.splitlines() if l.strip()][-1]
      text = f"--config: {last}"
    fail(text)
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a missing field
    fail(_config_override_error(e, argv))
  except (OSError, SyntaxError, ValueError) as e:  # the config file itself
    fail(f"--config: {e}")
  return []


def run(main) -> None:
  """`absl.app.run(main)` with `parse_flags`."""
  from absl import app  # pylint: disable=g-import-not-at-top
  app.run(main, flags_parser=parse_flags)
