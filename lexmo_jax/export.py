"""Exports a trained workdir's text encoder as a Hugging Face folder.

  python -m lexmo_jax.export --workdir=runs/demo/lexcmlp --out=exported/text_encoder

The folder holds config.json, flax_model.msgpack and the tokenizer files; transformers loads
it with FlaxAutoModelForMaskedLM.from_pretrained, and so does
lexmo_jax.models.text_encoder.from_pretrained. The MLM head is the lexical head, so
SPLADE-max over its logits gives the same lexical text vectors as the workdir.
"""
from __future__ import annotations

import pathlib

from absl import flags

from lexmo_jax.cli import fail, run, setup_logging


def export(workdir: str, out: str) -> pathlib.Path:
  from lexmo_jax.inference import LexicalModel  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models import hf_checkpoint  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models.build import model_config  # pylint: disable=g-import-not-at-top

  model = LexicalModel.from_workdir(workdir, require_lexical=False)
  text_config = model_config(model.config).text
  path = hf_checkpoint.save_pretrained(text_config, model.params["text"], model.tokenizer, out)
  print(f"exported the text encoder of {workdir} ({model.phase}, step {model.step}) to {path}")
  return path


def main(argv):
  del argv
  setup_logging()
  workdir, out = flags.FLAGS.workdir, flags.FLAGS.out
  if not workdir or not out:
    fail("--workdir and --out are required")
  from lexmo_jax.inference import WorkdirError  # pylint: disable=g-import-not-at-top
  try:
    export(workdir, out)
  except (WorkdirError, ValueError, FileNotFoundError) as e:
    fail(str(e))


if __name__ == "__main__":
  # Flags exist only when this runs as a command, so importing it next to other commands
  # (which define --workdir too) is safe.
  flags.DEFINE_string("workdir", None, "A training workdir (any phase).")
  flags.DEFINE_string("out", None, "Folder to write the Hugging Face checkpoint to.")
  run(main)
