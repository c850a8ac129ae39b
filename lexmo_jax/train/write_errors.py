"""Writes that fail (a full disk, a read-only filesystem, a removed folder) named in one line.

A run checks before each checkpoint that its filesystem has room for it (the arrays' bytes,
with a margin), so a full disk stops the run cleanly before anything is half-written; a write
that fails anyway (another program filled the disk meanwhile, the folder went away) becomes a
`WriteFailure` naming the path, the error's meaning and, for a checkpoint, its size and the
free space. The checkpoints written before stay loadable, and a rerun resumes from the newest.
"""
from __future__ import annotations

import errno
import os
import pathlib
import re
import shutil

import jax

# Margin over the arrays' bytes for a checkpoint's metadata and record.
CHECKPOINT_MARGIN = 1.05
CHECKPOINT_EXTRA_BYTES = 1 << 20

# What storage libraries write for an errno (tensorstore speaks in gRPC status codes).
_MEANINGS = (
    (r"No space left|RESOURCE_EXHAUSTED|ENOSPC|Disk quota", errno.ENOSPC),
    (r"Read-only file system|EROFS", errno.EROFS),
    (r"Permission denied|EACCES|PERMISSION_DENIED", errno.EACCES),
    (r"No such file or directory|ENOENT|NOT_FOUND", errno.ENOENT),
)


class WriteFailure(RuntimeError):
  """A run's output could not be written; the message says what, where and why."""


def free_bytes(path: str | pathlib.Path) -> int:
  """Free bytes on the filesystem of `path` (or of its nearest existing folder)."""
  path = pathlib.Path(path).absolute()
  while not path.exists() and path != path.parent:
    path = path.parent
  return shutil.disk_usage(path).free


def meaning(error: BaseException) -> str:
  """The errno meaning of a failed write ('No space left on device', …)."""
  if isinstance(error, OSError) and error.errno:
    return os.strerror(error.errno)
  text = f"{type(error).__name__}: {error}"
  for pattern, number in _MEANINGS:
    if re.search(pattern, text):
      return os.strerror(number)
  return text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__


def _mb(n: float) -> str:
  return f"{n / 2**20:.1f} MB"


def tree_bytes(*trees) -> int:
  """Bytes of every array leaf of `trees` (global arrays: their full size)."""
  return int(sum(getattr(x, "nbytes", 0) for t in trees for x in jax.tree.leaves(t)))


def checkpoint_failure(directory, step: int, size: int, error: BaseException | None
                       ) -> WriteFailure:
  why = meaning(error) if error is not None else os.strerror(errno.ENOSPC)
  return WriteFailure(
      f"cannot write the checkpoint of step {step} to {directory}: {why} (about "
      f"{_mb(size)} needed, {_mb(free_bytes(directory))} free there); the checkpoints "
      "written before stay loadable: free some space (or fix the folder) and rerun the same "
      "command to resume from the newest")


def check_room(directory, step: int, size: int) -> None:
  """Refuses to start a checkpoint the filesystem has no room for.

  Raises:
    WriteFailure: naming the folder, the size needed and the free space.
  """
  needed = size * CHECKPOINT_MARGIN + CHECKPOINT_EXTRA_BYTES
  if free_bytes(directory) < needed:
    raise checkpoint_failure(directory, step, int(needed), None)


def output_failure(path, what: str, error: BaseException) -> WriteFailure:
  return WriteFailure(
      f"cannot write {what} {path}: {meaning(error)} ({_mb(free_bytes(path))} free there); "
      "the run stopped, its checkpoints stay loadable: fix that and rerun the same command "
      "to resume")
