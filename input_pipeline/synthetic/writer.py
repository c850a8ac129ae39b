"""Writes motions, captions, splits and normalisation statistics in HumanML3D's layout.

  DIR/new_joint_vecs/<id>.npy   (T-1, 263) float32 features
  DIR/new_joints/<id>.npy       (T-1, 22, 3) float32 joints read back from the features
  DIR/texts/<id>.txt            caption#word/POS ...#start#end, one per line
  DIR/train.txt, val.txt, test.txt   ids, one per line
  DIR/Mean.npy, DIR/Std.npy     (263,) float32, from the training split
  DIR/README.txt                what the folder is and how it was made
  DIR/actions.json              each clip's actions (ground truth; ground_truth.py)
"""
import pathlib
import shutil

import numpy as np

from input_pipeline.synthetic import tagging
from input_pipeline.synthetic.clip import FPS

FOLDERS = ("new_joint_vecs", "new_joints", "texts")
README = "README.txt"
_MARK = "Synthetic motion-language dataset in HumanML3D format"

# HumanML3D's cal_mean_variance gives every group of the 263-d layout one shared std:
# root rotation velocity, root linear velocity, root height, ric, rot, local velocity,
# foot contacts (22 joints).
STD_GROUPS = ((0, 1), (1, 3), (3, 4), (4, 67), (67, 193), (193, 259), (259, 263))


def holds_dataset(out_dir: pathlib.Path) -> bool:
  """Whether out_dir holds a synthetic dataset written here (its README's first line)."""
  readme = pathlib.Path(out_dir) / README
  return readme.is_file() and readme.read_text(errors="replace").startswith(_MARK)


def prepare(out_dir: pathlib.Path) -> None:
  """Makes out_dir ready; an earlier synthetic dataset there is replaced.

  Raises:
    FileExistsError: out_dir holds files that are not a synthetic dataset.
  """
  out_dir = pathlib.Path(out_dir)
  if out_dir.exists() and not out_dir.is_dir():
    raise NotADirectoryError(f"{out_dir}: exists and is not a directory")
  if out_dir.is_dir() and any(out_dir.iterdir()):
    if not holds_dataset(out_dir):
      raise FileExistsError(
          f"{out_dir}: directory is not empty and holds no synthetic dataset "
          f"({README} missing); refusing to overwrite it, choose an empty --out")
    for name in FOLDERS + ("previews",):
      shutil.rmtree(out_dir / name, ignore_errors=True)
  for name in FOLDERS:
    (out_dir / name).mkdir(parents=True, exist_ok=True)


def seconds(frame: int, fps: float = FPS) -> str:
  """A frame index as HumanML3D writes span bounds: seconds with int(s * fps) == frame."""
  text = repr(round(frame / fps, 2))
  if int(float(text) * fps) != frame:
    text = repr(frame / fps)
  return text


def caption_line(text: str, start: int, end: int) -> str:
  """One line of a texts/<id>.txt file; start = end = 0 means the whole clip."""
  if "#" in text or "\n" in text:
    raise ValueError(f"caption {text!r} may not contain '#' or a newline")
  return f"{text}#{tagging.tag(text)}#{seconds(start)}#{seconds(end)}"


def write_motion(out_dir: pathlib.Path, motion_id: str, features: np.ndarray,
                 joints: np.ndarray, lines: list[str]) -> None:
  """Writes one motion's feature, joint and text files."""
  out_dir = pathlib.Path(out_dir)
  np.save(out_dir / "new_joint_vecs" / f"{motion_id}.npy", features.astype(np.float32))
  np.save(out_dir / "new_joints" / f"{motion_id}.npy", joints.astype(np.float32))
  (out_dir / "texts" / f"{motion_id}.txt").write_text("\n".join(lines) + "\n")


def write_splits(out_dir: pathlib.Path, splits: dict[str, list[str]]) -> None:
  """Writes <split>.txt id lists."""
  for name, ids in splits.items():
    (pathlib.Path(out_dir) / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))


def moments(features: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
  """(rows, mean, sum of squared deviations) of a (T, D) feature array, in float64."""
  x = features.astype(np.float64)
  mean = x.mean(0)
  return x.shape[0], mean, ((x - mean)**2).sum(0)


def normalisation(parts: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
  """Mean and Std (D,) float32 of all rows of several clips, as HumanML3D computes them.

  Per-clip moments are merged pairwise (Chan et al.), so the result does not depend on
  how clips were spread over processes. Each group of STD_GROUPS then shares its mean
  std; a group that never varies gets std 1 so normalising never divides by zero.
  """
  if not parts:
    raise ValueError("no training motions to compute Mean.npy and Std.npy from")
  count, mean, m2 = parts[0][0], parts[0][1].copy(), parts[0][2].copy()
  for n, mu, sq in parts[1:]:
    total = count + n
    delta = mu - mean
    mean += delta * n / total
    m2 += sq + delta**2 * count * n / total
    count = total
  std = np.sqrt(m2 / count)
  if std.shape[0] != STD_GROUPS[-1][1]:
    raise ValueError(f"features have {std.shape[0]} dims; 263 (22 joints) expected")
  for a, b in STD_GROUPS:
    group = std[a:b].mean()
    std[a:b] = group if group > 1e-8 else 1.0
  return mean.astype(np.float32), std.astype(np.float32)


def write_readme(out_dir: pathlib.Path, seed: int, counts: dict[str, int], command: str) -> None:
  """Writes DIR/README.txt describing the synthetic dataset."""
  lines = [
      _MARK + ".",
      "",
      "Every motion is procedural: a 22-joint skeleton animated by forward kinematics",
      "(walks, runs, jumps, turns, gestures... composed into sequences of one to three",
      "actions), converted to HumanML3D's 263-d features with the project's own port of",
      "HumanML3D's feature extraction. Captions are generated paraphrases. Ids starting",
      "with M are left-right mirror images, with left/right and clockwise/counterclockwise",
      "swapped in their captions; a mirror always sits in the split of its source.",
      "It is NOT motion capture and NOT the HumanML3D dataset.",
      "",
      f"Generated by: {command}",
      f"Seed: {seed} (the same seed and count give byte-identical files).",
  ]
  lines += [f"{name}: {value}" for name, value in counts.items()]
  lines += ["", "Mean.npy and Std.npy are computed on the training split, with HumanML3D's",
            "per-group std (one shared value per feature group).",
            "actions.json lists each clip's actions (action, direction, side, speed, count,",
            "span in seconds), mirrored clips included: ground truth for evaluation, never",
            "read by training."]
  (pathlib.Path(out_dir) / README).write_text("\n".join(lines) + "\n")
