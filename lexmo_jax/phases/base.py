"""What a phase is: its loss, its trainable parameter groups and its data. Nothing more.

The generic loop (`lexmo_jax.train.loop`) does everything else. A loss function receives a
`PhaseContext` (the model, the phase's config section and its constants) and returns
(loss, {term: value}).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax

from lexmo_jax.models.lexmo import LexMo


@dataclasses.dataclass(frozen=True)
class PhaseContext:
  """What a loss may read besides parameters, batch and randomness."""
  model: LexMo  # or the task's own module (`Phase.model`)
  loss_config: Any
  constants: Mapping[str, jax.Array]

  def apply(self, params, method, *args, rng=None, **kwargs):
    """Calls a model method; dropout is on when `rng` is given."""
    rngs = {"dropout": rng} if rng is not None else {}
    return self.model.apply({"params": params}, *args, method=method, rngs=rngs,
                            deterministic=rng is None, **kwargs)

  def apply_pure(self, params, method, *args, **kwargs):
    """Calls a model method that takes no `deterministic` flag."""
    return self.model.apply({"params": params}, *args, method=method, **kwargs)


LossFn = Callable[[PhaseContext, dict, dict, jax.Array, jax.Array],
                  tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class Phase:
  """A training phase.

  Attributes:
    name: the phase's name, also recorded in its checkpoints.
    loss: the objective.
    trainable: top-level parameter groups the optimiser updates; the rest stay frozen.
    batch_keys: the batch fields its loss reads (its data).
    follows: phases whose workdir `init_from` may name.
    needs_text_statistics: whether the loss reads word weights of the training captions.
    prepare_params: applied once to the parameters taken over from `init_from`.
    new_groups: parameter groups the phases it follows do not have; they start fresh.
    needs_caption_vocabulary: whether the loss reads the pieces a captioner may write.
    model: a task with a model of its own (not LexMo): model(config, constants) -> the Flax
      module, whose `__call__(batch)` creates every parameter at `init`.
    constants: extra constants the task's loss reads: constants(config, tok, split_data,
      workdir) -> {name: array}, merged into the phase's constants.
    retrieves: a task whose own model encodes both sides for retrieval (its module has
      `embed_text` and `embed_motion`; `lexmo_jax.retrieval_encoders`).
  """
  name: str
  loss: LossFn
  trainable: tuple[str, ...]
  batch_keys: tuple[str, ...]
  follows: tuple[str, ...] = ()
  needs_text_statistics: bool = False
  prepare_params: Callable[[dict, str], dict] | None = None
  new_groups: tuple[str, ...] = ()
  needs_caption_vocabulary: bool = False
  model: Callable[[Any, Mapping[str, Any]], Any] | None = None
  constants: Callable[..., dict[str, Any]] | None = None
  retrieves: bool = False


def vocab_mask(constants) -> jax.Array:
  """(V,) bool: the vocabulary entries that are words (special tokens excluded)."""
  return constants["lexical_vocab_mask"]

