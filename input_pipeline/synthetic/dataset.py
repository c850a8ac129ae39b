"""generate_dataset: a whole synthetic HumanML3D-format dataset from a seed."""
import functools
import multiprocessing
import os
import sys
import pathlib

import numpy as np

from input_pipeline.synthetic import captions, composer, ground_truth, writer
from input_pipeline.synthetic.clip import FPS
from input_pipeline.motion import features as motion_features

SPLITS = ("train", "val", "test")


def _split(num: int, fractions: tuple[float, float, float],
           rng: np.random.Generator) -> dict[str, list[int]]:
  """Motion indices per split; val and test get at least one motion when num >= 3."""
  order = rng.permutation(num)
  n_val = int(round(fractions[1] * num))
  n_test = int(round(fractions[2] * num))
  if num >= 3:
    n_val, n_test = max(n_val, 1), max(n_test, 1)
  n_train = num - n_val - n_test
  if n_train < 1:
    raise ValueError(f"split fractions {fractions} leave no training motion out of {num}")
  parts = np.split(order, [n_train, n_train + n_val])
  return {name: sorted(int(i) for i in part) for name, part in zip(SPLITS, parts)}


def _make_motion(index: int, *, out_dir: str, seed: int, programs: list[composer.Program],
                 train: frozenset) -> tuple[int, list, dict]:
  """Renders, converts and writes motion index and its mirror image.

  Returns the number of caption lines written, for training motions the feature moments of
  both clips, and the actions of both clips (actions.json records).
  """
  program = programs[index]
  rng = np.random.default_rng([seed, index])
  joints = composer.perform(program, rng)
  described = captions.caption_program(program, rng)
  motion_id = f"{index:06d}"
  moments, lines = [], 0
  for name, clip, texts in (
      (motion_id, joints, [t for t, _, _ in described]),
      ("M" + motion_id, motion_features.mirror_joints(joints, "humanml3d"),
       [captions.mirror_caption(t) for t, _, _ in described])):
    feats = motion_features.joints_to_features(clip, "humanml3d", name=f"synthetic motion {name}")
    recovered = motion_features.features_to_joints(feats, 22)
    caption_lines = [writer.caption_line(t, s, e) for t, (_, s, e) in zip(texts, described)]
    writer.write_motion(pathlib.Path(out_dir), name, feats, recovered, caption_lines)
    lines += len(caption_lines)
    if index in train:
      moments.append(writer.moments(feats))
  rows = joints.shape[0] - 1
  records = [ground_truth.segment_record(s.action, s.params, start, min(start + s.frames, rows),
                                         FPS)
             for s, start in zip(program.segments, program.starts())]
  actions = {motion_id: records, "M" + motion_id: [ground_truth.mirrored(r) for r in records]}
  return lines, moments, actions


def generate_dataset(out_dir, num_motions: int, seed: int = 0, *,
                     split_fractions: tuple[float, float, float] = (0.8, 0.05, 0.15),
                     workers: int | None = None) -> dict[str, int]:
  """Writes a synthetic dataset in HumanML3D's folder format.

  Args:
    out_dir: folder to write; created if missing. It must be empty or hold an earlier
      synthetic dataset (which is replaced).
    num_motions: motions to generate; each also gets a mirrored "M" copy.
    seed: everything written is a function of (seed, num_motions).
    split_fractions: shares of train, val and test, by source motion.
    workers: processes to use; None picks up to the number of CPUs.

  Returns:
    Counts: motions, mirrored, clips, captions, train, val, test (clips per split).
  """
  if not isinstance(num_motions, (int, np.integer)) or num_motions < 1:
    raise ValueError(f"num_motions must be a positive integer, got {num_motions!r}")
  if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) <= 0:
    raise ValueError(f"split_fractions must be three non-negative shares, got {split_fractions}")
  total = float(sum(split_fractions))
  fractions = tuple(f / total for f in split_fractions)
  out_dir = pathlib.Path(out_dir)
  writer.prepare(out_dir)

  programs = composer.sample_programs(num_motions, np.random.default_rng([seed, 0]))
  splits = _split(num_motions, fractions, np.random.default_rng([seed, 1]))
  make = functools.partial(_make_motion, out_dir=str(out_dir), seed=seed, programs=programs,
                           train=frozenset(splits["train"]))
  if workers is None:
    workers = min(os.cpu_count() or 1, 8)
  # Small datasets are not worth starting processes for.
  workers = max(1, min(workers, num_motions // 8))
  if workers == 1:
    results = [make(i) for i in range(num_motions)]
  else:
    # Forking a process that already runs JAX's thread pools can deadlock.
    forkable = "fork" in multiprocessing.get_all_start_methods() and "jax" not in sys.modules
    method = "fork" if forkable else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
      results = pool.map(make, range(num_motions), chunksize=16)

  mean, std = writer.normalisation([m for _, ms, _ in results for m in ms])
  np.save(out_dir / "Mean.npy", mean)
  np.save(out_dir / "Std.npy", std)
  ids = {name: [f"{i:06d}" for i in part] + [f"M{i:06d}" for i in part]
         for name, part in splits.items()}
  writer.write_splits(out_dir, ids)
  ground_truth.write(out_dir, {k: v for _, _, acts in results for k, v in acts.items()}, FPS)
  counts = {"motions": num_motions, "mirrored": num_motions, "clips": 2 * num_motions,
            "captions": sum(n for n, _, _ in results),
            **{name: len(v) for name, v in ids.items()}}
  writer.write_readme(out_dir, seed, counts, (
      f"python -m input_pipeline.synthetic --out DIR --num-motions {num_motions} --seed {seed}"))
  return counts
