"""One run per workdir: an advisory lock on `<workdir>/.lock` held for the whole run.

The lock is `flock(2)` on the file, which the kernel drops when its process ends however it
ends (kill -9 included), so a run that died leaves nothing to clean: the next run takes the
lock and warns that it takes over from a run that is gone. The file records who holds it
(host, process id, start time), so a second run on the same workdir is refused with one line
naming the holder, before it writes anything.

On several hosts (a TPU pod, SLURM) only process 0 writes to the workdir, and only it takes
the lock. On a shared filesystem whose flock does not reach across hosts (some NFS setups),
the holder's host in the file still tells a run on another host that the workdir is in use
by a live run there: it is refused too, unless that record is older than the holder could be
(`STALE_AFTER_S` without a refresh), then taken over with a warning.
"""
from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import pathlib
import socket
import time

logger = logging.getLogger("lexmo_jax.train")

LOCK_FILE = ".lock"
# A record from another host untouched this long is taken for a dead run's (the holder
# refreshes it at every checkpoint through `touch`).
STALE_AFTER_S = 24 * 3600


class WorkdirBusyError(RuntimeError):
  """Another live run holds the workdir."""


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _describe(record: dict) -> str:
  return (f"process {record.get('pid')} on host {record.get('host')}, started "
          f"{record.get('started')}")


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds the workdir for one run.

  Raises (on enter):
    WorkdirBusyError: another live run holds it; the message names the holder.
  """

  def __init__(self, workdir: str | pathlib.Path):
    self.path = pathlib.Path(workdir) / LOCK_FILE
    self._fd = None

  def _read(self) -> dict:
    try:
      record = json.loads(os.pread(self._fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
      return {}
    return record if isinstance(record, dict) else {}

  def __enter__(self) -> WorkdirLock:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = self._read()
      os.close(self._fd)
      self._fd = None
      if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      raise WorkdirBusyError(
          f"{self.path.parent} is in use by another run ({_describe(holder)}): wait for it to "
          "end, stop it, or pass another --workdir") from None
    previous = self._read()
    host = socket.gethostname()
    if previous.get("pid"):
      same_host = previous.get("host") == host
      age = time.time() - os.stat(self.path).st_mtime
      if same_host and previous.get("pid") != os.getpid() and _alive(int(previous["pid"])) \
          and previous.get("boot") == _boot_id():
        # flock is free although the recorded process lives: another filesystem's lock.
        self._refuse(previous)
      if not same_host and age < STALE_AFTER_S:
        self._refuse(previous)
      logger.warning("%s: taking over the lock of a run that is gone (%s)", self.path,
                     _describe(previous))
    record = {"host": host, "pid": os.getpid(), "boot": _boot_id(),
              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, (json.dumps(record) + "\n").encode(), 0)
    return self

  def _refuse(self, holder: dict) -> None:
    os.close(self._fd)
    self._fd = None
    raise WorkdirBusyError(
        f"{self.path.parent} is in use by another run ({_describe(holder)}; its lock file "
        f"{self.path} says so): wait for it to end, stop it, or pass another --workdir; "
        "if that run is gone, delete the lock file")

  def touch(self) -> None:
    """Marks the record fresh (for runs on other hosts sharing the filesystem)."""
    if self._fd is not None:
      os.utime(self.path)

  def __exit__(self, *exc) -> None:
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)  # an ended run leaves no holder behind
    except OSError:
      pass
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None


def _boot_id() -> str:
  try:
    return pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
  except OSError:
    return ""
