"""Throughput of each phase's compiled train step: steps/s, samples/s, FLOPs and MFU.

  python bench/bench_train_step.py                       # tiny config, every phase, CPU
  python bench/bench_train_step.py --variant=base --steps=20 --peak-tflops=989   # a GPU

Random batches of the configured shapes (the input pipeline is measured separately by
bench/bench_input_pipeline.py). FLOPs per step come from the compiled step's cost analysis;
MFU = FLOPs per second / (devices × peak).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from input_pipeline import tokenizer as tokenizer_lib  # noqa: E402
from lexmo_jax import phases  # noqa: E402
from lexmo_jax.models.build import dummy_batch  # noqa: E402
from lexmo_jax.train.trainer import build_trainer  # noqa: E402


def random_batch(config, rng: np.random.Generator, vocab_size: int) -> dict[str, np.ndarray]:
  batch = dummy_batch(config, config.data.global_batch_size)
  b, t, _ = batch["motion"].shape
  batch["motion"] = rng.normal(size=batch["motion"].shape).astype(np.float32)
  lengths = rng.integers(t // 3, t + 1, size=b)
  batch["motion_mask"] = np.arange(t)[None] < lengths[:, None]
  l = batch["input_ids"].shape[1]
  text_lengths = rng.integers(6, l + 1, size=b)
  batch["attention_mask"] = (np.arange(l)[None] < text_lengths[:, None]).astype(np.int32)
  batch["input_ids"] = np.where(batch["attention_mask"] > 0,
                                rng.integers(1000, vocab_size, size=(b, l)), 0).astype(np.int32)
  return batch


def constants_for(tok, vocab_size: int) -> dict[str, np.ndarray]:
  weights = np.ones(vocab_size, np.float32)
  weights[tok.special_ids] = 0
  mask = np.ones(vocab_size, bool)
  mask[tok.special_ids] = False
  return {"lexical_vocab_mask": mask, "is_continuation": tok.is_continuation,
          "mask_id": np.int32(tok.mask_id), "word_weights": weights}


def bench_phase(name: str, arg: str, overrides: dict, steps: int, peak_tflops: float | None):
  config = importlib.import_module(f"configs.{name}").get_config(arg)
  for key, value in overrides.items():
    section, _, field = key.rpartition(".")
    (config[section] if section else config)[field] = type(
        (config[section] if section else config)[field])(value)
  tok = tokenizer_lib.load_tokenizer(config.text.tokenizer)
  trainer = build_trainer(config, constants_for(tok, config.text.vocab_size))
  phase = trainer.phase
  rng = np.random.default_rng(0)
  batches = [random_batch(config, rng, config.text.vocab_size) for _ in range(2)]
  with trainer.activated():
    t0 = time.perf_counter()
    compiled = trainer.compiled_step()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    state = trainer.init_state(0)
    state, m = trainer.step(state, trainer.global_batch(batches[0]))  # warm-up
    jax.block_until_ready(m["loss"])
    t0 = time.perf_counter()
    for i in range(steps):
      state, m = trainer.step(state, trainer.global_batch(batches[i % 2]))
    jax.block_until_ready(m["loss"])
    seconds = (time.perf_counter() - t0) / steps
  b = config.data.global_batch_size
  row = {"phase": name, "batch": b, "steps_per_s": 1 / seconds, "samples_per_s": b / seconds,
         "gflops_per_step": flops / 1e9, "compile_s": compile_s,
         "device": jax.devices()[0].device_kind, "devices": jax.device_count()}
  if peak_tflops:
    row["mfu"] = flops / seconds / (jax.device_count() * peak_tflops * 1e12)
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variant", default="runlocal",
                      help="config variant string: runlocal (tiny) or e.g. variant=base")
  parser.add_argument("--phases", default=",".join(phases.ORDER))
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--batch", type=int, default=0, help="override the global batch size")
  parser.add_argument("--dtype", default="", help="float32 or bfloat16")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="per-device peak for MFU (H100 SXM bf16 dense: 989)")
  parser.add_argument("--out", default="", help="append JSON lines here")
  args = parser.parse_args()
  overrides = {}
  if args.batch:
    overrides["data.global_batch_size"] = args.batch
  if args.dtype:
    overrides["dtype"] = args.dtype
  print(f"{'phase':8s} {'batch':>5s} {'steps/s':>8s} {'samples/s':>10s} {'GFLOP/step':>11s} "
        f"{'MFU':>6s} {'compile s':>9s}")
  for name in args.phases.split(","):
    row = bench_phase(name, args.variant, overrides, args.steps, args.peak_tflops)
    mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
    print(f"{name:8s} {row['batch']:5d} {row['steps_per_s']:8.2f} {row['samples_per_s']:10.1f} "
          f"{row['gflops_per_step']:11.1f} {mfu:>6s} {row['compile_s']:9.1f}", flush=True)
    if args.out:
      with open(args.out, "a") as f:
        f.write(json.dumps({**row, "variant": args.variant}) + "\n")


if __name__ == "__main__":
  main()
