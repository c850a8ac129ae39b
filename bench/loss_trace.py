"""Every phase's losses over its first steps, to check that a change of implementation left
the training it computes unchanged.

  python bench/loss_trace.py --out before.json                  # record
  python bench/loss_trace.py --compare before.json              # same steps, compared
  python bench/loss_trace.py --compare before.json --set model.vocab_chunk_size=0

Each phase of a preset (default: the tiny `runlocal` model) trains from fresh parameters
(seed 0) on random batches (`lexmo_jax.models.build.random_batch`); every logged term of every
step is recorded. With --compare, the largest difference per phase is printed, relative to
the recorded loss where that exceeds 1 (float32 holds a loss of 400 to about 3e-5), and the
exit status is 1 when one exceeds --tolerance.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import bench_train_step as bench  # noqa: E402  (also puts the repository on the path)
import jax  # noqa: E402

from input_pipeline import tokenizer as tokenizer_lib  # noqa: E402
from lexmo_jax import phases  # noqa: E402
from lexmo_jax.models.build import random_batch  # noqa: E402
from lexmo_jax.train.compile_report import placeholder_constants  # noqa: E402
from lexmo_jax.train.trainer import build_trainer  # noqa: E402


def trace(phase: str, preset: str, overrides: dict, steps: int) -> dict[str, list[float]]:
  """{term: [value at each step]} of `steps` steps of one phase."""
  config = bench.preset_config(phase, preset, overrides)
  tok = tokenizer_lib.load_tokenizer(config.text.tokenizer)
  trainer = build_trainer(config, placeholder_constants(tok), devices=jax.devices()[:1])
  rng = np.random.default_rng(0)
  batches = [random_batch(config, rng) for _ in range(4)]
  terms: dict[str, list[float]] = {}
  with trainer.activated():
    state = trainer.init_state(config.seed)
    for i in range(steps):
      state, metrics = trainer.step(state, trainer.global_batch(batches[i % len(batches)]))
      for key, value in jax.device_get(metrics).items():
        terms.setdefault(key, []).append(float(value))
  return terms


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="runlocal", choices=sorted(bench.PRESETS))
  parser.add_argument("--phases", default=",".join(phases.ORDER))
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--out", default="", help="write the traces here (JSON)")
  parser.add_argument("--compare", default="", help="a trace written before, to compare with")
  parser.add_argument("--tolerance", type=float, default=1e-4)
  args = parser.parse_args()
  if any("=" not in item for item in args.set):
    parser.error("--set takes FIELD=VALUE")
  overrides = dict(item.split("=", 1) for item in args.set)
  unknown = [n for n in args.phases.split(",") if n not in phases.ORDER]
  if unknown:
    parser.error(f"unknown phase(s) {unknown}; known: {list(phases.ORDER)}")
  traces = {name: trace(name, args.preset, overrides, args.steps)
            for name in args.phases.split(",")}
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(traces, indent=1))
  if not args.compare:
    for name, terms in traces.items():
      print(f"{name:8s} loss {terms['loss'][0]:.6f} → {terms['loss'][-1]:.6f}")
    return
  reference = json.loads(pathlib.Path(args.compare).read_text())
  worst = 0.0
  for name, terms in traces.items():
    if name not in reference or len(reference[name]["loss"]) != len(terms["loss"]):
      sys.exit(f"{args.compare} has no {len(terms['loss'])}-step trace of {name}: record one "
               "with the same --phases and --steps")
    ref = reference[name]
    shared = sorted(set(terms) & set(ref))
    diffs = {k: float(np.max(np.abs(np.subtract(terms[k], ref[k]))
                             / np.maximum(1.0, np.abs(ref[k])))) for k in shared}
    key = max(diffs, key=diffs.get)
    print(f"{name:8s} {len(terms['loss'])} steps: |loss − before| / max(1, |before|) ≤ "
          f"{diffs['loss']:.2e}; largest over {len(shared)} terms {diffs[key]:.2e} ({key})"
          + (f"; only before: {sorted(set(ref) - set(terms))}" if set(ref) - set(terms) else "")
          + (f"; only now: {sorted(set(terms) - set(ref))}" if set(terms) - set(ref) else ""))
    worst = max(worst, diffs["loss"])
  print(f"largest loss difference {worst:.2e} (tolerance {args.tolerance:g})")
  sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
  main()
