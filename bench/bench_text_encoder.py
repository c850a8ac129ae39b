"""Captions per second of text lexical vectors: tokens → encoder → MLM head → SPLADE-max.

Random weights, jitted, batched; the tiny encoder (2 layers, width 64) and the DistilBERT-base
shape (6 layers, width 768), on CPU unless --platform says otherwise. Prints a table and
writes it as markdown. The [B, L, V] logits dominate the tiny model's time.

  python bench/bench_text_encoder.py [--batch_size 64] [--length 40] [--dtype float32]
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax.models import lexical, text_encoder
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig

SHAPES = {
    "tiny (2×64)": dict(num_layers=2, hidden_size=64, num_heads=4, mlp_dim=256),
    "DistilBERT-base (6×768)": dict(num_layers=6, hidden_size=768, num_heads=12,
                                    mlp_dim=3072),
}
CAPTION_PARTS = (["a person", "someone", "a man", "a woman", "the figure"],
                 ["walks forward", "runs in a circle", "jumps twice", "waves the left hand",
                  "kicks with the right leg", "squats down", "turns around", "sits down"],
                 ["slowly", "quickly", "then stops", "and returns", "while raising both arms",
                  ""])


def captions(n: int, seed: int = 0) -> list[str]:
  rng = np.random.default_rng(seed)
  return [" ".join(filter(None, (p[rng.integers(len(p))] for p in CAPTION_PARTS)))
          for _ in range(n)]


def pooled_logits(module: TextEncoder, ids_bl, mask_bl):
  """The captions' logits max-pooled over tokens with the default fused pooling."""
  return module.max_logits(module(ids_bl, mask_bl), mask_bl, -1)


def lexical_vectors_fn(config: TextEncoderConfig, vocab_mask_v: np.ndarray):
  module = TextEncoder(config)

  @jax.jit
  def run(params, ids_bl, mask_bl):
    z_bv = module.apply({"params": params}, ids_bl, mask_bl, method=pooled_logits)
    return lexical.lexical_vector(z_bv, vocab_mask_v)

  return run


def measure(name: str, shape: dict, batch: dict, vocab_mask_v: np.ndarray, dtype: str,
            min_seconds: float) -> dict:
  config = TextEncoderConfig(vocab_size=len(vocab_mask_v), dtype=dtype, dropout_rate=0.0,
                             **shape)
  params = jax.block_until_ready(
      nn.unbox(text_encoder.init_params(config, jax.random.PRNGKey(0))))
  num_params = sum(x.size for x in jax.tree.leaves(params))
  run = lexical_vectors_fn(config, vocab_mask_v)
  ids, mask = jnp.asarray(batch["input_ids"]), jnp.asarray(batch["attention_mask"])
  start = time.perf_counter()
  jax.block_until_ready(run(params, ids, mask))
  compile_s = time.perf_counter() - start
  steps, start = 0, time.perf_counter()
  while steps < 2 or time.perf_counter() - start < min_seconds:
    jax.block_until_ready(run(params, ids, mask))
    steps += 1
  seconds = (time.perf_counter() - start) / steps
  batch_size = ids.shape[0]
  return {"model": name, "params (M)": f"{num_params / 1e6:.1f}", "batch": batch_size,
          "length": ids.shape[1], "dtype": dtype, "first call (s)": f"{compile_s:.2f}",
          "ms / batch": f"{seconds * 1e3:.1f}", "captions / s": f"{batch_size / seconds:.0f}"}


def markdown(rows: list[dict]) -> str:
  keys = list(rows[0])
  lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--length", type=int, default=40, help="tokens per caption (padded)")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--min_seconds", type=float, default=3.0,
                      help="time each model for at least this long (and 2 batches)")
  parser.add_argument("--tokenizer", default="", help="tokenizer folder; default BERT uncased")
  parser.add_argument("--platform", default="cpu", help="JAX platform; '' = JAX's default")
  parser.add_argument("--out", default=str(ROOT / "bench" / (
      f"results_text_encoder_{datetime.date.today().isoformat()}.md")),
                      help="Markdown results (default: a dated file in bench/, so that the "
                      "committed figures are never overwritten)")
  args = parser.parse_args(argv)
  if args.platform:
    jax.config.update("jax_platforms", args.platform)

  tokenizer = load_tokenizer(args.tokenizer)
  batch = tokenizer.encode(captions(args.batch_size), args.length)
  vocab_mask_v = np.ones(tokenizer.vocab_size, bool)
  vocab_mask_v[tokenizer.special_ids] = False
  rows = [measure(name, shape, batch, vocab_mask_v, args.dtype, args.min_seconds)
          for name, shape in SHAPES.items()]
  table = markdown(rows)
  device = jax.devices()[0]
  header = (f"# Text encoder: lexical vectors per second\n\n"
            f"Random weights, jitted, vocabulary {tokenizer.vocab_size}; "
            f"{device.platform} ({device.device_kind}, {jax.device_count()} device(s)), "
            f"{platform.machine()} with {os.cpu_count()} CPU cores, jax {jax.__version__}. "
            f"Mean real tokens per caption: {batch['attention_mask'].sum(1).mean():.1f}.\n\n")
  print(table)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(header + table + "\n")
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
