"""Checks a HumanML3D / KIT-ML folder before training, without changing it.

  python -m input_pipeline.check DIR [--kind humanml3d|kitml]

Prints, per split, the listed ids, the usable items and captions, and every
reason an item was left out (with example files); then how the training
features sit against Mean.npy / Std.npy. Exits 0 when the folder can be trained
on, 1 when it cannot.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Sequence, TextIO

import numpy as np

from input_pipeline import command_line, humanml3d, skips
from input_pipeline.dataset_kinds import DATASET_KINDS, DatasetKind, get_kind
from input_pipeline.humanml3d import DatasetError, MotionTextPair

SPLITS = ("train", "val", "test")
# Beyond these, the statistics probably do not belong to the features.
SUSPICIOUS_MEAN_ABS_Z = 3.0
# Motion features are heavy-tailed (velocities at foot strikes, turns): a few percent beyond
# 5 sigma is normal; wrong statistics push mean |z| up instead.
SUSPICIOUS_OUTLIER_FRACTION = 0.05
OUTLIER_SIGMA = 5.0


@dataclasses.dataclass(frozen=True)
class GroupStatistics:
  """z = (x - mean) / std over every frame of a feature group."""
  name: str
  mean_z: float
  std_z: float
  mean_abs_z: float
  outlier_fraction: float  # |z| > OUTLIER_SIGMA

  @property
  def suspicious(self) -> bool:
    return (self.mean_abs_z > SUSPICIOUS_MEAN_ABS_Z
            or self.outlier_fraction > SUSPICIOUS_OUTLIER_FRACTION)


def feature_statistics(pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
                       kind: DatasetKind) -> list[GroupStatistics]:
  """Statistics of z-scored features per group, each motion counted once."""
  seen, clips = set(), []
  for p in pairs:
    # A span is part of a clip already counted, or of one whose whole clip was filtered.
    if p.motion_id not in seen:
      seen.add(p.motion_id)
      clips.append(p.motion)
  width = len(mean)
  total, total_sq, total_abs = np.zeros(width), np.zeros(width), np.zeros(width)
  outliers = np.zeros(width)
  frames = 0
  for clip in clips:
    z = (clip.astype(np.float64) - mean) / std
    total += z.sum(0)
    total_sq += (z * z).sum(0)
    total_abs += np.abs(z).sum(0)
    outliers += (np.abs(z) > OUTLIER_SIGMA).sum(0)
    frames += len(z)
  groups = []
  for name, cut in kind.feature_groups().items():
    count = frames * (cut.stop - cut.start)
    mean_z = total[cut].sum() / count
    variance = max(total_sq[cut].sum() / count - mean_z * mean_z, 0.0)
    groups.append(GroupStatistics(name, float(mean_z), float(np.sqrt(variance)),
                                  float(total_abs[cut].sum() / count),
                                  float(outliers[cut].sum() / count)))
  return groups


def _fixed(value: float, width: int, decimals: int) -> str:
  """The number right-aligned in `width` characters, in exponent form when it would not fit."""
  text = f"{value:{width}.{decimals}f}"
  return text if len(text) <= width else f"{value:{width}.2e}"


def check_folder(root: str, kind: str = "humanml3d", min_length: int | None = None,
                 max_length: int | None = None, out: TextIO | None = None,
                 crop_length: int | None = None) -> bool:
  """Prints the report on a folder (to out, default stdout); returns whether it
  can be trained on.

  min_length and crop_length default to the kind's T2M values (config.data.min_motion_length
  and max_motion_length); max_length (None) leaves long items in, as training does.
  """
  kind = get_kind(kind)
  crop_length = kind.max_length if crop_length is None else crop_length
  say = lambda text="": print(text, file=out or sys.stdout)
  say(f"dataset folder {root} (kind {kind.name}: {kind.feature_dim} features, "
      f"{kind.num_joints} joints, {kind.fps:g} fps)")
  try:
    humanml3d.check_root(root)
  except DatasetError as e:
    say(f"NOT USABLE: {e}")
    return False
  usable = True
  try:
    mean, std = humanml3d.load_normalisation(root, kind)
    say("Mean.npy / Std.npy: ok")
  except DatasetError as e:
    say(f"PROBLEM: {e}")
    mean = std = None
    usable = False
  train_pairs = None
  for split in SPLITS:
    say()
    try:
      ids = humanml3d.read_split_ids(root, split)
      pairs, report = humanml3d.load_split(root, split, kind, min_length, max_length)
    except DatasetError as e:
      say(f"[{split}] PROBLEM: {e}")
      if split == "train":
        usable = False
      continue
    spans = sum(p.item_id != p.motion_id for p in pairs)
    captions = sum(len(p.captions) for p in pairs)
    say(f"[{split}] {len(ids)} ids listed, {len(pairs)} usable items "
        f"({len(pairs) - spans} clips, {spans} caption spans), {captions} captions")
    cropped = sum(len(p.motion) > crop_length for p in pairs)
    dropped = sum(n for r, n in report.counts.items() if r in skips.LENGTH_FILTER_REASONS)
    say(f"[{split}] lengths: {cropped} items longer than {crop_length} frames, randomly "
        f"cropped to it for training; {dropped} dropped by the length limits")
    if report.counts:
      say(f"[{split}] left out:")
      for line in report.summary().splitlines():
        say(f"  {line}")
    else:
      say(f"[{split}] nothing left out")
    if split == "train":
      train_pairs = pairs
  if train_pairs is not None and mean is not None:
    say()
    say("train features against Mean/Std (z = (x - mean) / std, each motion once):")
    say(f"  {'group':<24}{'mean z':>9}{'std z':>9}{'mean |z|':>10}{'|z|>5':>9}")
    for g in feature_statistics(train_pairs, mean, std, kind):
      flag = "  <- suspicious: do Mean/Std belong to these features?" if g.suspicious else ""
      say(f"  {g.name:<24}{_fixed(g.mean_z, 9, 3)}{_fixed(g.std_z, 9, 3)}"
          f"{_fixed(g.mean_abs_z, 10, 3)}{_fixed(g.outlier_fraction, 9, 4)}{flag}")
  say()
  say("USABLE for training" if usable else "NOT USABLE for training")
  return usable


def main(argv: Sequence[str] | None = None) -> int:
  parser = command_line.ArgumentParser(
      prog="python -m input_pipeline.check",
      description="Check a HumanML3D or KIT-ML folder (read only).")
  parser.add_argument("root", help="the dataset folder")
  parser.add_argument("--kind", choices=sorted(DATASET_KINDS), default="humanml3d")
  parser.add_argument("--min-length", type=int, default=None,
                      help="shortest kept item in frames, config.data.min_motion_length "
                           "(default: 40 HumanML3D, 24 KIT-ML)")
  parser.add_argument("--crop-length", type=int, default=None,
                      help="training length in frames, config.data.max_motion_length: longer "
                           "items are randomly cropped to it (default: 196)")
  parser.add_argument("--max-length", type=int, default=None,
                      help="also leave out items of this many frames or more (default: none)")
  args = parser.parse_args(argv)
  # The report lists every reason itself; per-reason log lines would repeat it.
  logging.getLogger("lexmo_jax.data").setLevel(logging.ERROR)
  usable = check_folder(args.root, args.kind, args.min_length, args.max_length,
                        crop_length=args.crop_length)
  return 0 if usable else 1


if __name__ == "__main__":
  sys.exit(main())
