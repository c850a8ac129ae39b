"""What text↔motion retrieval compares, for every workdir that can retrieve.

  encoder = retrieval_encoders.load("runs/tmr")       # any of the rows below
  batches = encoder.eval_batches(pairs, mean, std)
  vectors = encoder.encode_eval_batches(batches)      # {"text": (N, E), "motion": (N, E)}

- the method (`lexmmm`, `lexcmlp` workdirs; †MotionPatches is a `lexcmlp` workdir): lexical
  vectors (N, V), `lexmo_jax.inference.LexicalModel`;
- a baseline task with a model of its own whose module has `embed_text`/`embed_motion`
  (`TaskEncoder`): MotionPatches' projections (N, 256), TMR's μ (N, 256), †TMR's lexical
  vectors (N, V).
Every protocol compares them by cosine (`lexmo_jax.evaluate.similarity`).
"""
from __future__ import annotations

import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline.pipeline import EvalBatches
from lexmo_jax.inference import (LexicalModel, WorkdirError, eval_batches, read_workdir,
                                 restore_params)
from lexmo_jax.train import data as data_lib


class TaskEncoder:
  """A retrieval baseline's two encoders (`embed_text`, `embed_motion` of its own module), on
  the local devices."""

  def __init__(self, config, params, module, tokenizer, step: int, phase: str):
    self.config = config
    self.params = params
    self.module = module
    self.tokenizer = tokenizer
    self.step = step
    self.phase = phase
    self.lexical = bool(getattr(module.config, "lexical", False))
    self.vocab_mask = jnp.asarray(data_lib.lexical_vocab_mask(config, tokenizer))

  @property
  def representation(self) -> str:
    """'lexical' (vectors over the vocabulary) or 'dense'."""
    return "lexical" if self.lexical else "dense"

  def __hash__(self):
    return id(self)

  @functools.partial(jax.jit, static_argnums=0)
  def _text_batch(self, params, input_ids, attention_mask):
    return self.module.apply({"params": params}, input_ids, attention_mask, self.vocab_mask,
                             method=type(self.module).embed_text)

  @functools.partial(jax.jit, static_argnums=0)
  def _motion_batch(self, params, motion, motion_mask):
    return self.module.apply({"params": params}, motion, motion_mask, self.vocab_mask,
                             method=type(self.module).embed_motion)

  def eval_batches(self, pairs, mean, std, batch_size: int = 0) -> EvalBatches:
    return eval_batches(self.config, self.tokenizer, pairs, mean, std, batch_size)

  def encode_eval_batches(self, batches: EvalBatches) -> dict[str, np.ndarray]:
    """{"text": (N, E), "motion": (N, E)} float32, every item of the stream in order."""
    out = {"text": [], "motion": []}
    for k in range(len(batches)):
      b = batches.batch(k)
      valid = b["valid"]
      out["text"].append(np.asarray(self._text_batch(self.params, b["input_ids"],
                                                     b["attention_mask"]), np.float32)[valid])
      out["motion"].append(np.asarray(self._motion_batch(self.params, b["motion"],
                                                         b["motion_mask"]), np.float32)[valid])
    return {key: np.concatenate(parts) for key, parts in out.items()}


def is_retrieval_task(phase: str | None, config) -> bool:
  """Whether `phase` is a task whose own model retrieves (`Phase.retrieves`)."""
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  return phase in phases.REGISTRY and phases.get_phase(config).retrieves


def load(workdir: str | pathlib.Path) -> LexicalModel | TaskEncoder:
  """The encoders of a finished workdir that retrieves.

  Raises:
    WorkdirError: not a workdir, no complete checkpoint, or a phase that does not retrieve.
  """
  config, ckpt, step, phase = read_workdir(workdir)
  if not is_retrieval_task(phase, config):
    ckpt.close()
    return LexicalModel.from_workdir(workdir)
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  module = phases.get_phase(config).model(config, {})
  params = restore_params(ckpt, step, module, config)
  return TaskEncoder(config, params, module, data_lib.load_tokenizer(config), step, phase)


__all__ = ["TaskEncoder", "WorkdirError", "is_retrieval_task", "load"]
