"""Throughput of each phase's compiled train step: steps/s, samples/s, FLOPs, memory and MFU.

  python bench/bench_train_step.py --preset tmr                    # TMR's dimensions, CPU
  python bench/bench_train_step.py --preset runlocal               # the tiny demo model
  python bench/bench_train_step.py --preset base --steps 20        # full scale, on a GPU
  python bench/bench_train_step.py --preset tmr --set model.vocab_chunk_size=0   # unfused

Presets:
  runlocal  the tiny model of `configs/*.py:runlocal` (batch 32, 8 frames per token).
  tmr       TMR's dimensions: motion and text encoders of 6 layers, width 256, 4 heads,
            MLP 1024; batch 32; 196 frames of HumanML3D features, one token per frame;
            captions up to 40 word pieces; vocabulary 30522; float32.
  base      full scale: DistilBERT-base text encoder + ViT-B motion encoder over
            MotionPatches, batch 256, bfloat16.

A step's time is the median over --steps steps, each timed to completion (a shared machine's
load varies). Random batches of the configured shapes (the input pipeline is measured separately by
bench/bench_input_pipeline.py). Each phase runs in its own process, so that its peak memory
is its own: host RSS while the steps run on a CPU (the peak with compilation included is in
the JSON rows), the device's peak bytes in use on an accelerator, beside the compiled step's
own figure (arguments + outputs + temporaries, from XLA's memory analysis).
FLOPs per step come from XLA's cost analysis of the step (`compile_report.step_flops`);
MFU = FLOPs per second / (devices × peak), the peak from --peak-tflops or the device's bf16
dense figure. "XLA GiB" counts the donated state twice (as arguments and as outputs).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from input_pipeline import tokenizer as tokenizer_lib  # noqa: E402
from lexmo_jax import config_validation, phases  # noqa: E402
from lexmo_jax.models.build import random_batch  # noqa: E402
from lexmo_jax.train.compile_report import placeholder_constants, step_flops  # noqa: E402
from lexmo_jax.train.trainer import build_trainer  # noqa: E402

# Each preset: the config variant string and the fields it sets on top.
PRESETS = {
    "runlocal": ("runlocal", {}),
    "tmr": ("variant=small", {
        "text.num_layers": 6, "text.hidden_size": 256, "text.num_heads": 4, "text.mlp_dim": 1024,
        "motion.num_layers": 6, "motion.hidden_size": 256, "motion.num_heads": 4,
        "motion.mlp_dim": 1024, "motion.tokenizer": "frames", "motion.frames_per_token": 1,
        "data.global_batch_size": 32, "data.max_motion_length": 196,
        "data.max_text_length": 40, "dtype": "float32"}),
    "base": ("variant=base", {"data.global_batch_size": 256, "dtype": "bfloat16"}),
}

# Dense bf16 peak per device, TFLOP/s (vendor figures), for MFU when --peak-tflops is not given.
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0,
               "TPU v4": 275.0,
               "TPU v5 lite": 197.0, "TPU v5e": 197.0, "TPU v5p": 459.0, "TPU v6 lite": 918.0}


def set_field(config, key: str, value) -> None:
  """config[key] = value for a dotted key, the value cast to the field's type.

  Raises:
    ValueError: no such field, or a value the field's type cannot take.
  """
  section, _, field = key.rpartition(".")
  parent = config
  try:
    for part in filter(None, section.split(".")):
      parent = parent[part]
    old = parent[field]
  except (KeyError, AttributeError):
    raise ValueError(f"--set {key}: no such config field") from None
  if isinstance(old, bool) and isinstance(value, str):
    if value.lower() not in ("true", "false"):
      raise ValueError(f"--set {key}={value}: expected true or false")
    value = value.lower() == "true"
  try:
    parent[field] = type(old)(value)
  except (TypeError, ValueError):
    raise ValueError(f"--set {key}={value}: not a {type(old).__name__}") from None


def preset_config(phase: str, preset: str, overrides: dict):
  """The phase's config at a preset's dimensions, with `overrides` on top."""
  variant, fields = PRESETS[preset]
  config = importlib.import_module(f"configs.{phase}").get_config(variant)
  for key, value in {**fields, **overrides}.items():
    set_field(config, key, value)
  config_validation.validate(config, jax.device_count())
  return config


def host_peak_rss(reset: bool = False) -> float:
  """This process's peak resident memory so far, GiB (Linux VmHWM); `reset` then starts a
  new peak from the current resident size."""
  status = pathlib.Path("/proc/self/status")
  if not status.exists():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  peak = next(int(line.split()[1]) for line in status.read_text().splitlines()
              if line.startswith("VmHWM:")) / 2**20
  if reset:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
  return peak


def peak_tflops(requested: float | None) -> float | None:
  if requested:
    return requested
  kind = jax.devices()[0].device_kind
  return next((v for k, v in PEAK_TFLOPS.items() if k.lower() in kind.lower()), None)


def bench_phase(phase: str, preset: str, overrides: dict, steps: int,
                requested_peak: float | None) -> dict:
  """Compiles and times one phase's step in this process. Returns one result row."""
  config = preset_config(phase, preset, overrides)
  tok = tokenizer_lib.load_tokenizer(config.text.tokenizer)
  constants = placeholder_constants(tok)
  trainer = build_trainer(config, constants)
  flops = step_flops(config, constants)
  rng = np.random.default_rng(0)
  batches = [random_batch(config, rng) for _ in range(2)]
  with trainer.activated():
    t0 = time.perf_counter()
    compiled = trainer.compiled_step()
    compile_s = time.perf_counter() - t0
    memory = compiled.memory_analysis()
    state = trainer.init_state(0)
    state, m = trainer.step(state, trainer.global_batch(batches[0]))  # warm-up
    jax.block_until_ready(m["loss"])
    compile_rss = host_peak_rss(reset=True)
    times = []
    for i in range(steps):
      batch = trainer.global_batch(batches[i % 2])
      t0 = time.perf_counter()
      state, m = trainer.step(state, batch)
      jax.block_until_ready(m["loss"])
      times.append(time.perf_counter() - t0)
    seconds = float(np.median(times))
  device = jax.devices()[0]
  b = config.data.global_batch_size
  row = {"phase": phase, "preset": preset, "overrides": overrides, "batch": b,
         "seconds_per_step": seconds, "steps_timed": steps, "steps_per_s": 1 / seconds,
         "samples_per_s": b / seconds,
         "gflops_per_step": flops / 1e9, "compile_s": compile_s,
         "device": device.device_kind, "platform": device.platform,
         "devices": jax.device_count(), "vocab_chunk_size": config.model.vocab_chunk_size}
  if memory is not None:
    row["compiled_gib"] = (memory.argument_size_in_bytes + memory.output_size_in_bytes
                           + memory.temp_size_in_bytes) / 2**30
    row["temporaries_gib"] = memory.temp_size_in_bytes / 2**30
  if device.platform == "cpu":
    # Training's own peak (after compilation, whose transient peak is reported apart).
    row["peak_host_rss_gib"] = host_peak_rss()
    row["peak_host_rss_with_compile_gib"] = max(compile_rss, row["peak_host_rss_gib"])
  else:
    stats = device.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
      row["peak_device_gib"] = stats["peak_bytes_in_use"] / 2**30
    peak = peak_tflops(requested_peak)
    if peak:
      row["mfu"] = flops / seconds / (jax.device_count() * peak * 1e12)
  return row


def print_row(row: dict) -> None:
  mfu = f"{row['mfu']:.1%}" if "mfu" in row else "-"
  memory = row.get("peak_host_rss_gib", row.get("peak_device_gib", float("nan")))
  print(f"{row['phase']:8s} {row['batch']:5d} {row['seconds_per_step']:7.3f} "
        f"{row['steps_per_s']:8.2f} {row['samples_per_s']:10.1f} {row['gflops_per_step']:11.1f} "
        f"{memory:9.2f} {row.get('compiled_gib', float('nan')):9.2f} {mfu:>6s} "
        f"{row['compile_s']:9.1f}", flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", default="runlocal", choices=sorted(PRESETS))
  parser.add_argument("--phases", default=",".join(phases.ORDER))
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                      help="a config field on top of the preset, e.g. model.vocab_chunk_size=0")
  parser.add_argument("--peak-tflops", type=float, default=None,
                      help="per-device peak for MFU (default: the device's bf16 dense figure)")
  parser.add_argument("--out", default="", help="append JSON lines here")
  parser.add_argument("--in-process", action="store_true",
                      help="run the phases in this process (peak memory is then shared)")
  args = parser.parse_args()
  if any("=" not in item for item in args.set):
    parser.error("--set takes FIELD=VALUE")
  overrides = dict(item.split("=", 1) for item in args.set)
  names = args.phases.split(",")
  unknown = [n for n in names if n not in phases.ORDER]
  if unknown:
    parser.error(f"unknown phase(s) {unknown}; known: {list(phases.ORDER)}")
  try:  # refused here, in one line, rather than in each phase's process
    for name in names:
      preset_config(name, args.preset, overrides)
  except (ValueError, config_validation.ConfigError) as e:
    parser.error(str(e))
  if args.in_process and len(names) == 1:
    print(json.dumps(bench_phase(names[0], args.preset, overrides, args.steps,
                                 args.peak_tflops)))
    return
  print(f"preset {args.preset} {overrides or ''} on {jax.device_count()} × "
        f"{jax.devices()[0].device_kind}")
  print(f"{'phase':8s} {'batch':>5s} {'s/step':>7s} {'steps/s':>8s} {'samples/s':>10s} "
        f"{'GFLOP/step':>11s} {'peak GiB':>9s} {'XLA GiB':>9s} {'MFU':>6s} {'compile s':>9s}")
  for name in names:
    if args.in_process:
      row = bench_phase(name, args.preset, overrides, args.steps, args.peak_tflops)
    else:
      cmd = [sys.executable, __file__, "--preset", args.preset, "--phases", name,
             "--steps", str(args.steps), "--in-process"]
      cmd += [f"--set={item}" for item in args.set]
      if args.peak_tflops:
        cmd += ["--peak-tflops", str(args.peak_tflops)]
      out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
      row = json.loads(out.strip().splitlines()[-1])
    print_row(row)
    if args.out:
      with open(args.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
  main()
