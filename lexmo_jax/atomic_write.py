"""Result files written whole or not at all, and failed writes named in one line.

`write_text(path, text, what)` writes through a temporary file beside `path`, synced, then
renamed over it: a killed process or a full disk leaves the previous file (or none), never a
half-written one. A write that fails raises OSError naming the file, what it is, the errno's
meaning and the free space there.
"""
from __future__ import annotations

import os
import pathlib


def write_text(path: str | pathlib.Path, text: str, what: str = "the results") -> pathlib.Path:
  """Writes `text` to `path` atomically (creating its folder).

  Raises:
    OSError: the write failed; the message names the file, the reason and the free space.
  """
  from lexmo_jax.train import write_errors  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    tmp.unlink(missing_ok=True)
    failure = write_errors.output_failure(path, what, e)
    raise OSError(e.errno, str(failure).split("; the run stopped")[0]
                  + "; the previous file, if any, is unchanged") from None
  return path
