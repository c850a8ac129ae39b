"""Ahead-of-time answer to "does it fit": compile a phase's step for the configured mesh
without data or running it, and report per-device memory and FLOPs per step."""
from __future__ import annotations

import copy
import math
import pathlib
import tempfile

import jax
import numpy as np

from input_pipeline import tokenizer as tokenizer_lib
from lexmo_jax import phases
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.trainer import build_trainer


def placeholder_constants(tok: tokenizer_lib.Tokenizer) -> dict[str, np.ndarray]:
  """Constants of the right shapes (their values do not change what is compiled); a
  captioner's output vocabulary is taken at its largest (every word piece and [SEP])."""
  weights = np.ones(tok.vocab_size, np.float32)
  weights[tok.special_ids] = 0.0
  writable = weights > 0
  writable[tok.sep_id] = True
  return {"lexical_vocab_mask": weights > 0, "is_continuation": tok.is_continuation,
          "mask_id": np.int32(tok.mask_id), "word_weights": weights,
          "caption_vocabulary": np.flatnonzero(writable).astype(np.int32)}


def per_device_bytes(abstract_tree) -> int:
  """Bytes of the largest shard of every array, summed: what one device holds."""
  total = 0
  for leaf in jax.tree.leaves(abstract_tree):
    shard = leaf.sharding.shard_shape(leaf.shape)
    total += math.prod(shard) * np.dtype(leaf.dtype).itemsize
  return total


def step_flops(config, constants: dict[str, np.ndarray]) -> float:
  """FLOPs of one train step over the whole global batch (all devices together).

  XLA's cost analysis counts a loop's body once, and the fused lexical pooling loops over
  vocabulary chunks; so the step is lowered (not compiled) with the whole vocabulary as one
  chunk: the same operations in one pass. (Unfused, chunk 0, it has no such loop.)
  """
  one_chunk = copy.deepcopy(config)
  if config.model.get("vocab_chunk_size", -1) != 0:
    one_chunk.model.vocab_chunk_size = config.text.vocab_size
  trainer = build_trainer(one_chunk, constants)
  with trainer.activated():
    cost = trainer.lowered_step().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  return float(cost.get("flops", float("nan")))


def _gib(n: float) -> str:
  return f"{n / 2**30:8.3f} GiB"


def task_constants(config, tok) -> dict[str, np.ndarray]:
  """The constants of a task that computes its own from the data (a generator's caption
  conditions, the evaluator's word tables): computed, since their shapes depend on it."""
  phase = phases.get_phase(config)
  if phase.constants is None:
    return {}
  split = data_lib.load_split(config, config.data.train_split)
  with tempfile.TemporaryDirectory() as scratch:
    return phase.constants(config, tok, split, pathlib.Path(scratch))


def report(config) -> str:
  tok = data_lib.load_tokenizer(config)
  constants = {**placeholder_constants(tok), **task_constants(config, tok)}
  trainer = build_trainer(config, constants)
  with trainer.activated():
    compiled = trainer.compiled_step()
  memory = compiled.memory_analysis()
  params = per_device_bytes(trainer.abstract_state.params)
  optimizer = per_device_bytes(trainer.abstract_state.opt_state)
  n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(trainer.abstract_state.params))
  lines = [
      f"phase {trainer.phase.name}: mesh {dict(trainer.mesh.shape)} on {jax.device_count()} "
      f"{jax.devices()[0].device_kind} device(s), global batch {config.data.global_batch_size}, "
      f"dtype {config.dtype}, vocabulary chunk {config.model.get('vocab_chunk_size', -1)}",
      f"parameters       {n_params / 1e6:10.1f} M (trained: {', '.join(trainer.phase.trainable)})",
      f"per device:",
      f"  parameters     {_gib(params)}",
      f"  optimizer      {_gib(optimizer)}",
  ]
  if memory is not None:
    lines += [
        f"  arguments      {_gib(memory.argument_size_in_bytes)}",
        f"  outputs        {_gib(memory.output_size_in_bytes)}",
        f"  temporaries    {_gib(memory.temp_size_in_bytes)} (activations and workspace)",
        f"  generated code {_gib(memory.generated_code_size_in_bytes)}",
    ]
  flops = step_flops(config, constants)
  lines.append(f"FLOPs per step   {flops / 1e12:10.3f} TFLOP (all devices; "
               f"{flops / jax.device_count() / 1e12:.3f} per device)")
  return "\n".join(lines)
