"""Readers for HumanML3D and KIT-ML folders: motion features, captions, splits.

Both datasets share one folder layout (as written by HumanML3D's scripts):
  new_joint_vecs/<id>.npy  (T, F) features
  texts/<id>.txt           caption#word/POS ...#start#end, one per line
  train.txt, val.txt, test.txt  one id per line
  Mean.npy, Std.npy        (F,) normalisation statistics
The reader only ever reads: nothing in the folder is created or changed.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import pathlib
import threading
from typing import Iterable

import numpy as np

from input_pipeline import dataset_kinds, skips, text_files
from input_pipeline.dataset_kinds import DatasetKind, get_kind
from input_pipeline.skips import SkipReport

MOTION_DIR = "new_joint_vecs"
TEXT_DIR = "texts"
NPY_MAGIC = b"\x93NUMPY"
_READ_THREADS = 8
# np.load parses a file's header with ast.literal_eval, which CPython 3.11 does not make safe
# across threads (a spurious "AST constructor recursion depth mismatch" SystemError).
_NPY_LOAD = threading.Lock()


# Std.npy entries below this are zero in practice: dividing by them inflates a feature ~1e8
# times (HumanML3D's own statistics are above 1e-3).
MIN_STD = 1e-6


class DatasetError(ValueError):
  """A dataset folder, or a split of it, cannot be used."""


@dataclasses.dataclass(frozen=True)
class MotionTextPair:
  """One training or evaluation item: a clip (or a captioned span of one) and its captions.

  Attributes:
    item_id: the motion id, or '<id>#<start>#<end>' for a caption span.
    motion_id: the id of the motion file.
    motion: (T, F) float32 raw (unnormalised) features.
    captions: the captions of this clip or span, in file order.
  """
  item_id: str
  motion_id: str
  motion: np.ndarray
  captions: tuple[str, ...]


def _folder_help(root: pathlib.Path) -> str:
  return (f"{root} must be a HumanML3D or KIT-ML folder holding {MOTION_DIR}/<id>.npy, "
          f"{TEXT_DIR}/<id>.txt, train.txt/val.txt/test.txt, Mean.npy and Std.npy; "
          "`python -m input_pipeline.synthetic --out DIR` writes a synthetic one")


def check_root(root: str | pathlib.Path) -> pathlib.Path:
  """Checks that root looks like a dataset folder; returns it as a Path."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise DatasetError(f"dataset folder {root} does not exist. {_folder_help(root)}")
  missing = [d for d in (MOTION_DIR, TEXT_DIR) if not (root / d).is_dir()]
  if missing:
    raise DatasetError(f"dataset folder {root} has no {' or '.join(m + '/' for m in missing)}. "
                       f"{_folder_help(root)}")
  return root


def _load_statistic(path: pathlib.Path, width: int) -> np.ndarray:
  if not path.is_file():
    raise DatasetError(f"{path} is missing: the per-feature normalisation statistic "
                       f"({width},) is needed")
  try:
    values = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise DatasetError(f"{path} is not a readable numpy .npy file ({e})") from e
  if values.shape != (width,):
    other = [k.name for k in dataset_kinds.DATASET_KINDS.values()
             if values.shape == (k.feature_dim,)]
    if other:  # the folder of the other dataset: say so, not only the width
      ours = next(k.name for k in dataset_kinds.DATASET_KINDS.values() if k.feature_dim == width)
      fix = ("drop the `:kitml` config variant" if other[0] == "humanml3d"
             else "add the `:kitml` config variant")
      raise DatasetError(
          f"{path} has shape {values.shape}: {path.parent} is a {other[0]} folder "
          f"({values.shape[0]}-d features), but the {ours} kind ({width}-d) was asked for; "
          f"{fix}, or point config.data.root at a {ours} folder")
    raise DatasetError(f"{path} has shape {values.shape}; expected ({width},), the "
                       "feature width of this dataset kind")
  if not np.issubdtype(values.dtype, np.floating):
    raise DatasetError(f"{path} has dtype {values.dtype}; expected floating point")
  if not np.all(np.isfinite(values)):
    raise DatasetError(f"{path} has NaN or Inf values at features "
                       f"{np.flatnonzero(~np.isfinite(values))[:10].tolist()}")
  return values.astype(np.float32)


def load_normalisation(root: str | pathlib.Path,
                       kind: str | DatasetKind = "humanml3d") -> tuple[np.ndarray, np.ndarray]:
  """Reads Mean.npy and Std.npy.

  Returns:
    mean, std: (F,) float32 each.

  Raises:
    DatasetError: a file is missing or unreadable, has the wrong shape, NaN/Inf values, or
      a std below MIN_STD (named by feature index and group).
  """
  root = check_root(root)
  kind = get_kind(kind)
  mean = _load_statistic(root / "Mean.npy", kind.feature_dim)
  std = _load_statistic(root / "Std.npy", kind.feature_dim)
  tiny = np.flatnonzero(~(std >= MIN_STD))
  if tiny.size:
    raise DatasetError(
        f"{root / 'Std.npy'} has {tiny.size} values below {MIN_STD:g} (smallest "
        f"{float(std[tiny].min()):.3g}) at features {kind.describe_features(tiny)}; "
        f"normalisation divides by them, which would blow those features up "
        f"{1 / max(float(std[tiny].max()), 1e-30):.0e} times")
  return mean, std



def read_split_ids(root: str | pathlib.Path, split: str) -> list[str]:
  """The ids listed in <root>/<split>.txt, in file order."""
  root = check_root(root)
  path = root / f"{split}.txt"
  if not path.is_file():
    found = sorted(p.name for p in root.glob("*.txt") if p.stem.lower() != "readme")
    raise DatasetError(f"split file {path} is missing (split files found: "
                       f"{', '.join(found) or 'none'})")
  try:
    return text_files.read_lines(path)
  except text_files.NotUtf8Error as e:
    raise DatasetError(f"split file {e}") from e


class _Unusable(Exception):
  """One file cannot be used; carries the skip reason."""

  def __init__(self, reason: str, file: pathlib.Path, detail: str = ""):
    super().__init__(f"{file}: {reason}")
    self.reason, self.file, self.detail = reason, file, detail


def read_motion(path: pathlib.Path, kind: DatasetKind) -> np.ndarray:
  """Reads one (T, F) feature file as float32; raises _Unusable on a bad file."""
  if not path.is_file():
    raise _Unusable(skips.MOTION_MISSING, path)
  with open(path, "rb") as f:
    magic = f.read(len(NPY_MAGIC))
  if magic != NPY_MAGIC:
    raise _Unusable(skips.MOTION_NOT_NUMPY, path,
                    "empty file" if not magic else f"starts with {magic!r}")
  try:
    with _NPY_LOAD:
      motion = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise _Unusable(skips.MOTION_CORRUPT, path, str(e)) from e
  if (motion.ndim != 2 or motion.shape[1] != kind.feature_dim
      or not np.issubdtype(motion.dtype, np.number)
      or np.issubdtype(motion.dtype, np.complexfloating)):
    raise _Unusable(skips.MOTION_WRONG_SHAPE, path,
                    f"shape {motion.shape} dtype {motion.dtype}, expected (T, "
                    f"{kind.feature_dim}) numbers for {kind.name}")
  motion = motion.astype(np.float32)
  if not np.all(np.isfinite(motion)):
    bad_frames = np.flatnonzero(~np.all(np.isfinite(motion), axis=1))
    raise _Unusable(skips.MOTION_NOT_FINITE, path,
                    f"{len(bad_frames)} frames, first {bad_frames[0]}")
  return motion


@dataclasses.dataclass(frozen=True)
class CaptionLine:
  """One parsed caption line; start = end = 0 means the whole clip; `line` is its 1-based
  line number in the file (0 when unknown)."""
  caption: str
  start: float
  end: float
  line: int = 0

  @property
  def is_whole_clip(self) -> bool:
    return self.start == 0.0 and self.end == 0.0


def parse_caption_line(line: str) -> CaptionLine | None:
  """Parses 'caption#word/POS ...#start#end'; None if malformed."""
  fields = line.strip().split("#")
  if len(fields) < 4:
    return None
  # A '#' inside the caption itself is kept: the last three fields are fixed.
  caption = "#".join(fields[:-3]).strip()
  try:
    start, end = float(fields[-2]), float(fields[-1])
  except ValueError:
    return None
  if not caption or math.isinf(start) or math.isinf(end):
    return None
  # HumanML3D writes NaN for a missing bound; its loaders read it as 0.
  start = 0.0 if math.isnan(start) else start
  end = 0.0 if math.isnan(end) else end
  return CaptionLine(caption, start, end)


def read_captions(path: pathlib.Path) -> tuple[list[CaptionLine], int]:
  """Reads a caption file; returns its lines and the number of malformed lines."""
  if not path.is_file():
    raise _Unusable(skips.CAPTION_MISSING, path)
  try:
    raw = text_files.numbered_lines(path)
  except text_files.NotUtf8Error as e:
    raise _Unusable(skips.CAPTION_UNREADABLE, path,
                    f"not UTF-8: byte 0x{e.byte:02x} at offset {e.offset}") from e
  if not raw:
    raise _Unusable(skips.CAPTION_EMPTY, path)
  parsed = [(n, parse_caption_line(line)) for n, line in raw]
  lines = [dataclasses.replace(p, line=n) for n, p in parsed if p is not None]
  if not lines:
    raise _Unusable(skips.CAPTION_MALFORMED, path, f"first line {raw[0][1][:80]!r}")
  return lines, len(raw) - len(lines)


def _format_seconds(t: float) -> str:
  return repr(float(t))


@dataclasses.dataclass
class _ClipResult:
  pairs: list[MotionTextPair]
  skipped: list[tuple[str, str, str]]  # (reason, file, detail)


def _read_clip(root: pathlib.Path, motion_id: str, kind: DatasetKind, min_length: int,
               max_length: int | None) -> _ClipResult:
  """All items of one listed id: the whole clip and each distinct caption span."""
  motion_path = root / MOTION_DIR / f"{motion_id}.npy"
  text_path = root / TEXT_DIR / f"{motion_id}.txt"
  try:
    motion = read_motion(motion_path, kind)
    lines, num_malformed = read_captions(text_path)
  except _Unusable as e:
    return _ClipResult([], [(e.reason, str(e.file), e.detail)])
  result = _ClipResult([], [])
  if num_malformed:
    result.skipped += [(skips.CAPTION_LINE_MALFORMED, str(text_path), "")] * num_malformed

  def length_ok(length: int, too_short: str, too_long: str, detail: str) -> bool:
    if length < min_length:
      result.skipped.append((too_short, str(motion_path), detail))
    elif max_length is not None and length >= max_length:
      result.skipped.append((too_long, str(motion_path), detail))
    else:
      return True
    return False

  whole = [line.caption for line in lines if line.is_whole_clip]
  spans = _span_frames(lines, len(motion), kind, text_path, result.skipped)
  whole += [line.caption for line in spans.pop((0, len(motion)), [])]
  if whole and length_ok(len(motion), skips.MOTION_TOO_SHORT, skips.MOTION_TOO_LONG,
                         f"{len(motion)} frames"):
    result.pairs.append(MotionTextPair(motion_id, motion_id, motion, tuple(whole)))
  for (first, last), group in spans.items():
    sub_clip = motion[first:last]
    item_id = f"{motion_id}#{_format_seconds(group[0].start)}#{_format_seconds(group[0].end)}"
    if length_ok(len(sub_clip), skips.SPAN_TOO_SHORT, skips.SPAN_TOO_LONG,
                 f"span {item_id}: {len(sub_clip)} frames"):
      result.pairs.append(MotionTextPair(
          item_id, motion_id, np.ascontiguousarray(sub_clip),
          tuple(line.caption for line in group)))
  return result


def _span_frames(lines: list[CaptionLine], num_frames: int, kind: DatasetKind,
                 text_path: pathlib.Path, faults: list[tuple[str, str, str]]
                 ) -> dict[tuple[int, int], list[CaptionLine]]:
  """Groups the span lines by their frames [first, last) of the clip.

  A span is motion[int(start·fps):int(end·fps)] (HumanML3D's loaders). Spans that cannot be
  placed (negative start, start ≥ end, start past the clip) are reported and left out; an
  end past the clip is clamped to it; a span that covers the whole clip is reported and
  keyed (0, num_frames), so that its captions join the clip's own item instead of making a
  second, identical one.
  """
  spans: dict[tuple[int, int], list[CaptionLine]] = {}
  clip = f"the clip: {num_frames / kind.fps:g} s, {num_frames} frames at {kind.fps:g} fps"
  for line in lines:
    if line.is_whole_clip:
      continue
    where = f"line {line.line}: span #{line.start:g}#{line.end:g} ({clip})"
    first, last = int(line.start * kind.fps), int(line.end * kind.fps)
    if line.start < 0:
      faults.append((skips.SPAN_NEGATIVE_START, str(text_path), where))
      continue
    if line.start >= line.end:
      faults.append((skips.SPAN_EMPTY, str(text_path), where))
      continue
    if first >= num_frames:
      faults.append((skips.SPAN_OUTSIDE_CLIP, str(text_path), where))
      continue
    if last > num_frames:
      faults.append((skips.SPAN_END_CLAMPED, str(text_path), where))
      last = num_frames
    if first == 0 and last == num_frames:
      faults.append((skips.SPAN_WHOLE_CLIP, str(text_path), where))
    spans.setdefault((first, last), []).append(line)
  return spans


def _valid_id(motion_id: str) -> bool:
  return not any(c in motion_id for c in "/\\") and motion_id not in (".", "..")


def load_split(root: str | pathlib.Path, split: str, kind: str | DatasetKind = "humanml3d",
               min_length: int | None = None, max_length: int | None = None,
               max_items: int | None = None) -> tuple[list[MotionTextPair], SkipReport]:
  """Reads the motion-caption items of one split.

  Whole-clip captions (start = end = 0) attach to the clip; the captions of each
  distinct span [start, end) seconds form a sub-clip item
  motion[int(start * fps):int(end * fps)]. Every item, clip or span, is kept when
  T >= min_length (and T < max_length, when given), T measured on that item's own frames.
  Items longer than the training length are kept: the input pipeline crops them at random
  (config.data.max_motion_length), as the T2M loaders do.

  Args:
    root: the dataset folder.
    split: a split name: '<root>/<split>.txt' lists its ids.
    kind: 'humanml3d' or 'kitml'.
    min_length: shortest kept item in frames (config.data.min_motion_length); None is the
      kind's T2M value (40 / 24).
    max_length: items of max_length frames or more are left out; None (default) keeps them.
    max_items: read only the first max_items ids of the split (quick runs).

  Returns:
    The items sorted by item_id, and the report of what was left out.
  """
  kind = get_kind(kind)
  root = check_root(root)
  min_length = kind.min_length if min_length is None else min_length
  if min_length <= 0 or (max_length is not None and max_length <= min_length):
    raise ValueError(f"need 0 < min_length < max_length, got {min_length}, {max_length}")
  ids = read_split_ids(root, split)
  if max_items is not None:
    ids = ids[:max_items]
  report = SkipReport(source=str(root))
  unique_ids, seen = [], set()
  split_file = str(root / f"{split}.txt")
  for motion_id in ids:
    if motion_id in seen:
      report.add(skips.DUPLICATE_ID, split_file, motion_id)
    elif not _valid_id(motion_id):
      report.add(skips.MOTION_MISSING, split_file, f"invalid id {motion_id!r}")
    else:
      seen.add(motion_id)
      unique_ids.append(motion_id)
  with concurrent.futures.ThreadPoolExecutor(_READ_THREADS) as pool:
    results = pool.map(lambda i: _read_clip(root, i, kind, min_length, max_length), unique_ids)
    pairs = []
    for result in results:
      pairs += result.pairs
      for reason, file, detail in result.skipped:
        report.add(reason, file, detail)
  if not pairs:
    raise DatasetError(
        f"split {split!r} of {root} has no usable motion-caption item "
        f"({len(ids)} ids listed). Reasons:\n{report.summary()}")
  pairs.sort(key=lambda p: p.item_id)
  return pairs, report


def tagged_captions(root: str | pathlib.Path, motion_ids: Iterable[str]
                    ) -> list[tuple[str, str]]:
  """(caption, 'word/POS ...') of every readable caption line of the motions' text files.

  The POS field is what HumanML3D's caption files carry besides the caption (spaCy lemmas
  and universal tags); files that are missing or unreadable are left out (the readers report
  them).
  """
  out = []
  for motion_id in dict.fromkeys(motion_ids):
    path = pathlib.Path(root) / TEXT_DIR / f"{motion_id}.txt"
    try:
      lines = text_files.read_lines(path)
    except (OSError, text_files.NotUtf8Error):
      continue
    for line in lines:
      fields = line.strip().split("#")
      if len(fields) >= 4 and parse_caption_line(line) is not None:
        out.append(("#".join(fields[:-3]).strip(), fields[-3]))
  return out


def all_captions(pairs: Iterable[MotionTextPair]) -> list[str]:
  """Every caption of the items, in item order."""
  return [c for p in pairs for c in p.captions]
