"""The text-encoder comparison of the paper's Table 4, end to end, timed.

  python bench/bench_generation.py [--pretrained runs/demo/lexcmlp] [--out runs/demo/generation]
      [--repeats 20]

Runs, each from the last, every stage on the embedded default (the synthetic dataset, tiny
models; `:runlocal` configs): the conditioning projection of the pre-trained text encoder,
the motion VQ-VAE, T2M's evaluator, two generators (conditioned by the packaged MiniLM
sentence encoder, standing in for CLIP, and by the lexical text encoder), and
`evaluate --task=generation`. A stage whose workdir is already finished is not retrained
(the loop finds it done), so rerunning prints the table again. Prints each stage's wall time
and writes them to <out>/timings.json. `make generation` runs it after `make demo`.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def stages(pretrained: str, out: pathlib.Path, repeats: int) -> list[tuple[str, list[str]]]:
  main = [sys.executable, "-m", "lexmo_jax.main"]

  def train(name, config, *flags):
    return name, [*main, f"--config=configs/{config}.py:runlocal", f"--workdir={out / name}",
                  *flags]
  return [
      train("conditioning", "conditioning", f"--config.init_from={pretrained}"),
      train("vqvae", "vqvae"),
      train("evaluator", "t2m_evaluator"),
      train("generator_sentence", "generator", f"--config.init_from={out / 'vqvae'}",
            "--config.generator.condition=sentence"),
      train("generator_lexical", "generator", f"--config.init_from={out / 'vqvae'}",
            "--config.generator.condition=lexical",
            f"--config.generator.text_encoder={out / 'conditioning'}"),
      ("evaluate", [sys.executable, "-m", "lexmo_jax.evaluate", "--task=generation",
                    f"--workdir={out}", f"--repeats={repeats}"]),
  ]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pretrained", default="runs/demo/lexcmlp",
                      help="A finished lexcmlp workdir (make demo writes runs/demo/lexcmlp).")
  parser.add_argument("--out", default="runs/demo/generation")
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args()
  if not (pathlib.Path(args.pretrained) / "checkpoints").is_dir():
    sys.exit(f"error: {args.pretrained} is not a finished workdir: run `make demo` first, or "
             "pass --pretrained=<a lexcmlp workdir>")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  timings = {}
  start = time.perf_counter()
  for name, command in stages(args.pretrained, out, args.repeats):
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    t0 = time.perf_counter()
    if subprocess.run(command, cwd=ROOT).returncode:
      sys.exit(f"error: stage {name} failed")
    timings[name] = time.perf_counter() - t0
  timings["total"] = time.perf_counter() - start
  print("\n| stage | wall time |\n|---|---|")
  for name, seconds in timings.items():
    print(f"| {name} | {seconds / 60:.1f} min |")
  (out / "timings.json").write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
  main()
