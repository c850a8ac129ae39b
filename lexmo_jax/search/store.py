"""Saved search indexes, written whole or not at all.

An index is a folder: its data files carry a generation token in their names
(`postings-3f9c….npz`), and `index.json`, the manifest, names the current generation's files
with their sizes and SHA-256 checksums. A save writes and syncs the new files first, then
replaces the manifest in one `os.replace`, then deletes the previous generation's files. A
process killed at any point leaves either the old manifest (its files untouched) or the new
one (its files complete): a half-written index is never loaded. A file whose checksum
differs from the manifest's (a damaged disk, a hand edit, a copy cut short) is refused, with
its path.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import uuid
from collections.abc import Callable, Mapping

MANIFEST = "index.json"
_CHUNK = 1 << 24
# A data file of some generation: <key>-<12 hex digits><suffix>.
_GENERATION = re.compile(r"^([a-z_]+)-[0-9a-f]{12}(\.|$)")
# A manifest a save had not yet made current.
_MANIFEST_TMP = re.compile(rf"^{re.escape(MANIFEST)}\.[0-9a-f]{{12}}\.tmp$")


class IndexFormatError(ValueError):
  """A saved index of another format or version than this code reads (rebuild it)."""


def sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(_CHUNK):
      digest.update(block)
  return digest.hexdigest()


def _sync(path: pathlib.Path) -> None:
  with open(path, "rb") as f:
    os.fsync(f.fileno())


def write_index(folder, meta: Mapping, writers: Mapping[str, Callable[[pathlib.Path], pathlib.Path]]
                ) -> pathlib.Path:
  """Writes a new generation of an index into `folder` and makes it current.

  Args:
    folder: the index folder (created if missing).
    meta: the manifest's fields (format, format_version, sizes…), JSON-serialisable.
    writers: file key → writer(stem) that writes the file at a path starting with `stem`
      and returns the path it wrote.

  Returns:
    the folder.

  Raises:
    ValueError: `folder` is a file.
    OSError: a file could not be written (the index saved before, if any, is unchanged).

  Afterwards it deletes what earlier saves left: the files the previous manifest named, and
  files of interrupted saves (data files of this index's keys, temporary manifests). Other
  files in the folder are never touched.
  """
  folder = pathlib.Path(folder)
  if folder.exists() and not folder.is_dir():
    raise ValueError(f"{folder} is a file, not an index folder: give a folder path")
  try:
    previous = peek(folder) or {}
  except ValueError:
    previous = {}  # a damaged manifest names nothing to keep; the new one replaces it
  previous_files = previous.get("files") if isinstance(previous.get("files"), dict) else {}
  earlier = {r["name"] for r in previous_files.values()
             if isinstance(r, dict) and isinstance(r.get("name"), str)}
  keys = set(writers) | set(previous_files)
  folder.mkdir(parents=True, exist_ok=True)
  token = uuid.uuid4().hex[:12]
  files = {}
  tmp = folder / f"{MANIFEST}.{token}.tmp"
  try:
    for key, writer in writers.items():
      path = pathlib.Path(writer(folder / f"{key}-{token}"))
      _sync(path)
      files[key] = {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256(path)}
    tmp.write_text(json.dumps({**meta, "files": files}, indent=2) + "\n")
    _sync(tmp)
    os.replace(tmp, folder / MANIFEST)
  except OSError as e:
    for partial in folder.glob(f"*{token}*"):  # this save's files; the index before stays
      partial.unlink(missing_ok=True)
    from lexmo_jax.train import write_errors  # pylint: disable=g-import-not-at-top
    raise OSError(e.errno, f"cannot write the index {folder}: {write_errors.meaning(e)} "
                  f"({write_errors.free_bytes(folder) / 2**20:.1f} MB free there); the index "
                  "saved before, if any, is unchanged") from None
  current = {f["name"] for f in files.values()}
  for stale in folder.iterdir():  # earlier generations, and files of interrupted saves
    if stale.name in current or stale.name == MANIFEST or not stale.is_file():
      continue
    generation = _GENERATION.match(stale.name)
    if (stale.name in earlier or _MANIFEST_TMP.match(stale.name)
        or (generation and generation.group(1) in keys)):
      stale.unlink(missing_ok=True)
  return folder


def read_index(folder, format_name: str, format_version: int) -> tuple[dict, dict[str, pathlib.Path]]:
  """The manifest of a saved index and its files' paths, each checked against its checksum.

  Raises:
    FileNotFoundError: no manifest, or a file it names is missing.
    IndexFormatError: another format or version.
    ValueError: a manifest that is not JSON, or a file whose size or checksum differs.
  """
  folder = pathlib.Path(folder)
  manifest_path = folder / MANIFEST
  if not manifest_path.is_file():
    raise FileNotFoundError(f"{manifest_path} is missing: {folder} is not a saved index")
  try:
    meta = json.loads(manifest_path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{manifest_path} is not valid JSON: {e}") from e
  if not isinstance(meta, dict) or meta.get("format") != format_name:
    found = meta.get("format") if isinstance(meta, dict) else None
    raise IndexFormatError(f"{manifest_path} describes a {found!r} index, not {format_name}")
  if meta.get("format_version") != format_version:
    raise IndexFormatError(f"{manifest_path} has format version "
                           f"{meta.get('format_version')!r}; this code reads version "
                           f"{format_version}: rebuild the index")
  if not isinstance(meta.get("files"), dict):
    raise ValueError(f"{manifest_path} is damaged: its 'files' is not a record of files; "
                     "delete the folder to rebuild the index")
  paths = {}
  for key, record in meta["files"].items():
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
      raise ValueError(f"{manifest_path} is damaged: its record of file {key!r} is not "
                       "{name, bytes, sha256}; delete the folder to rebuild the index")
    name = record["name"]
    if not _GENERATION.match(name) or pathlib.PurePath(name).name != name or "\\" in name:
      raise ValueError(f"{manifest_path} is damaged: file {key!r} is named "
                       f"{name!r}, not a file of the index's own folder; delete the "
                       "folder to rebuild the index")
    path = folder / name
    if path.is_symlink():
      raise ValueError(f"{path} is a symbolic link (named by {manifest_path}): an index reads "
                       "only its own folder's files; delete the folder to rebuild the index")
    if not path.is_file():
      raise FileNotFoundError(f"{path} is missing (named by {manifest_path}); delete the "
                              "folder to rebuild the index")
    if path.stat().st_size != record.get("bytes") or sha256(path) != record.get("sha256"):
      raise ValueError(f"{path} is corrupt: its size or SHA-256 differs from {manifest_path}'s "
                       "record; delete the folder to rebuild the index")
    paths[key] = path
  return meta, paths


def peek(folder) -> dict | None:
  """The manifest of the index in `folder` without checking its files; None when there is
  none.

  Raises:
    ValueError: a manifest that is not a JSON object (naming it).
  """
  path = pathlib.Path(folder) / MANIFEST
  if not path.is_file():
    return None
  try:
    meta = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{path} is not valid JSON ({e}): delete the folder to rebuild the "
                     "index") from None
  if not isinstance(meta, dict):
    raise ValueError(f"{path} is not an index manifest: delete the folder to rebuild the index")
  return meta
