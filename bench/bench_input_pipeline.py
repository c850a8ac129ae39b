"""Throughput of the input pipeline: batches/s at the tiny and full batch sizes.

  python bench/bench_input_pipeline.py [--data DIR] [--kind humanml3d] [--batches 30]

DIR is a HumanML3D-format folder (e.g. one written by `python -m
input_pipeline.synthetic --out DIR`); without it, a temporary folder of random
features with HumanML3D's clip lengths and caption counts is written and removed
afterwards (throughput depends on lengths and shapes, not on feature values).
Prints one table row per setting and path: the numpy batch function on one
thread, and the tf.data stream (parallel map + prefetch) that training uses.
"""
from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import sys
import tempfile
import time

# TensorFlow's start-up chatter would bury the table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

# Run as a script from any folder: make the package importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# pylint: disable-next=wrong-import-position
from input_pipeline import dataset_kinds, humanml3d, pipeline, tokenizer as tokenizer_lib

SETTINGS = (("tiny", 64), ("full", 256))
WORDS = ("walks", "runs", "jumps", "turns", "waves", "kicks", "squats", "sits", "throws")


def write_random_folder(root: pathlib.Path, num_clips: int, kind: dataset_kinds.DatasetKind,
                        seed: int = 0) -> None:
  """A folder in the dataset's format with random features and template captions."""
  rng = np.random.default_rng(seed)
  (root / "new_joint_vecs").mkdir(parents=True)
  (root / "texts").mkdir()
  ids = [f"{i:06d}" for i in range(num_clips)]
  for i, motion_id in enumerate(ids):
    # HumanML3D clips are mostly 2 to 10 s long; a few pass the 200-frame limit.
    frames = int(rng.integers(kind.min_length, int(10.5 * kind.fps)))
    np.save(root / "new_joint_vecs" / f"{motion_id}.npy",
            rng.normal(size=(frames, kind.feature_dim)).astype(np.float32))
    lines = []
    for k in range(3):
      words = " ".join(rng.choice(WORDS, size=3))
      caption = f"a person {words} then stops slowly number {i} {k}"
      lines.append(f"{caption}#{' '.join(w + '/X' for w in caption.split())}#0.0#0.0")
    (root / "texts" / f"{motion_id}.txt").write_text("\n".join(lines) + "\n")
  (root / "train.txt").write_text("\n".join(ids) + "\n")
  np.save(root / "Mean.npy", np.zeros(kind.feature_dim, np.float32))
  np.save(root / "Std.npy", np.ones(kind.feature_dim, np.float32))


def _rate(batches, count: int, warmup: int) -> float:
  for _ in itertools.islice(batches, warmup):
    pass
  start = time.perf_counter()
  for _ in itertools.islice(batches, count):
    pass
  return count / (time.perf_counter() - start)


def run(root: pathlib.Path, kind: str, count: int, max_text_length: int) -> None:
  start = time.perf_counter()
  pairs, report = humanml3d.load_split(root, "train", kind)
  mean, std = humanml3d.load_normalisation(root, kind)
  read_s = time.perf_counter() - start
  tok = tokenizer_lib.load_tokenizer()
  print(f"{root}: {len(pairs)} train items read in {read_s:.1f} s "
        f"({report.total} left out), {os.cpu_count()} CPUs")
  print(f"{'setting':<8}{'batch':>6}  {'path':<22}{'batches/s':>10}{'items/s':>10}"
        f"{'ms/batch':>10}{'MB/s':>8}")
  for name, batch_size in SETTINGS:
    start = time.perf_counter()
    data = pipeline.TrainData(pairs, mean, std, tok, global_batch_size=batch_size,
                              max_motion_length=196, max_text_length=max_text_length, seed=0)
    setup_s = time.perf_counter() - start
    batch_bytes = sum(np.prod(s) * d.itemsize for s, d in data.element_spec().values())
    paths = {
        "numpy, 1 thread": (data.batch(k) for k in itertools.count()),
        "tf.data (AUTOTUNE)": data.dataset().as_numpy_iterator(),
    }
    for path, batches in paths.items():
      rate = _rate(batches, count, warmup=3)
      print(f"{name:<8}{batch_size:>6}  {path:<22}{rate:>10.1f}{rate * batch_size:>10.0f}"
            f"{1000 / rate:>10.1f}{rate * batch_bytes / 2**20:>8.0f}")
    print(f"{'':<8}{'':>6}  (setup: tokenising {sum(len(p.captions) for p in pairs)} "
          f"captions took {setup_s:.2f} s)")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data", default="", help="a HumanML3D-format folder; default: random")
  parser.add_argument("--kind", default="humanml3d", choices=sorted(dataset_kinds.DATASET_KINDS))
  parser.add_argument("--num-clips", type=int, default=1000,
                      help="clips of the random folder (without --data)")
  parser.add_argument("--batches", type=int, default=30, help="timed batches per row")
  parser.add_argument("--max-text-length", type=int, default=40)
  args = parser.parse_args()
  if args.data:
    run(pathlib.Path(args.data), args.kind, args.batches, args.max_text_length)
    return
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp) / "random_humanml3d"
    write_random_folder(root, args.num_clips, dataset_kinds.get_kind(args.kind))
    run(root, args.kind, args.batches, args.max_text_length)


if __name__ == "__main__":
  main()
