"""What the command-line tools share: a mistyped flag or config field is refused in one line.

Every command (`lexmo_jax.main`, `evaluate`, `search`, `visualize`, `export`,
`input_pipeline.check`, `input_pipeline.synthetic`) answers an unknown flag, an unknown
`--config.<field>` override or a malformed value with one line on stderr that names it and
the closest existing one, and exit code 2, before any work starts.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterable, Sequence

USAGE_ERROR = 2


def refuse(message: str, code: int = USAGE_ERROR) -> None:
  """Prints `error: <message>` (one line) to stderr and exits with `code`."""
  one_line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
  print(f"error: {one_line}", file=sys.stderr)
  sys.exit(code)


def closest(name: str, candidates: Iterable[str]) -> str | None:
  """The candidate most like `name` (difflib ratio ≥ 0.6), or None."""
  matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
  return matches[0] if matches else None


def suggestion(name: str, candidates: Iterable[str], prefix: str = "--") -> str:
  """"; did you mean --x?" for the closest candidate, else ""."""
  match = closest(name, candidates)
  return f"; did you mean {prefix}{match}?" if match else ""


class ArgumentParser(argparse.ArgumentParser):
  """argparse with one-line errors that name the closest existing option.

  Abbreviated options are not accepted: a prefix that happens to match one option today
  would silently bind to it.
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("allow_abbrev", False)
    super().__init__(*args, **kwargs)

  def error(self, message: str):
    options = [s for action in self._actions for s in action.option_strings]
    unknown = re.match(r"unrecognized arguments: (.*)", message)
    if unknown:
      first = unknown.group(1).split()[0].split("=")[0]
      message = (f"unknown option {first}" + suggestion(first, options, prefix="")
                 + f" (options: {', '.join(o for o in options if o.startswith('--'))})")
    refuse(f"{self.prog}: {message}")


def unknown_flag_message(name: str, known: Sequence[str]) -> str:
  """One line for an absl flag the command does not define (name without dashes)."""
  if name.startswith("config.") and "config" not in known:
    return (f"--{name}: this command takes no --config overrides (it reads the config the "
            f"workdir was trained with)" + suggestion(name, known))
  return f"unknown flag --{name}" + suggestion(name, known)
