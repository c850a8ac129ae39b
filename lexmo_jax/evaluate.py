"""Text↔motion retrieval on a dataset split, with the field's protocols.

  python -m lexmo_jax.evaluate --workdir=runs/demo/lexcmlp [--split test]
      [--protocols all,small_batches] [--out FILE]

Encodes the split once (the first caption of each item, as TMR does), compares L2-normalised
lexical vectors by dot product, writes {protocol: metrics} to DIR/eval/retrieval.json (or
--out) and prints the table.
"""
from __future__ import annotations

import json
import pathlib

from absl import app, flags

from lexmo_jax.cli import fail, setup_logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A LexMMM or LexCMLP training workdir.")
_SPLIT = flags.DEFINE_string("split", "test", "Dataset split to evaluate on.")
_PROTOCOLS = flags.DEFINE_string("protocols", "", "Comma-separated protocols (default: the "
                                 "workdir config's eval.protocols).")
_OUT = flags.DEFINE_string("out", "", "Where to write the JSON (default DIR/eval/retrieval.json).")

PROTOCOLS = ("all", "small_batches")


def similarity(text_vectors, motion_vectors):
  """(N, N) cosine similarities of lexical vectors; rows texts, columns motions."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  def normalise(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
  return normalise(text_vectors) @ normalise(motion_vectors).T


def evaluate(workdir: str, split: str = "test", protocols: tuple[str, ...] = (),
             out: str = "") -> dict[str, dict[str, float]]:
  from lexmo_jax.evaluation import retrieval  # pylint: disable=g-import-not-at-top
  from lexmo_jax.inference import LexicalModel  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top

  model = LexicalModel.from_workdir(workdir)
  protocols = protocols or tuple(p for p in model.config.eval.protocols.split(",") if p)
  unknown = sorted(set(protocols) - set(PROTOCOLS))
  if unknown:
    raise ValueError(f"unknown protocols {unknown}; known: {PROTOCOLS}")
  split_data = data_lib.load_split(model.config, split)
  batches = model.eval_batches(split_data.pairs, split_data.mean, split_data.std)
  encoded = model.encode_eval_batches(batches)
  sims = similarity(encoded["text"], encoded["motion"])
  results = {}
  for protocol in protocols:
    if protocol == "all":
      results["all"] = retrieval.contrastive_metrics(sims)
    elif protocol == "small_batches":
      results["small_batches"] = retrieval.small_batch_metrics(sims)
  path = pathlib.Path(out) if out else pathlib.Path(workdir) / "eval" / "retrieval.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(results, indent=2))
  n = sims.shape[0]
  print(f"{split} split of {model.config.data.root}: {n} items "
        f"(chance R@1 = {100.0 / n:.2f}%); {model.phase} step {model.step}")
  print(retrieval.format_table(results))
  print(f"written to {path}")
  return results


def main(argv):
  del argv
  setup_logging()
  if not _WORKDIR.value:
    fail("--workdir is required")
  protocols = tuple(p for p in _PROTOCOLS.value.split(",") if p)
  from lexmo_jax.inference import WorkdirError  # pylint: disable=g-import-not-at-top
  try:
    evaluate(_WORKDIR.value, _SPLIT.value, protocols, _OUT.value)
  except (WorkdirError, ValueError, FileNotFoundError) as e:
    fail(str(e))


if __name__ == "__main__":
  app.run(main)
