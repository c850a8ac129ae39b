"""The training state and the split of parameters into trained and frozen groups."""
from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  """step: scalar int32; params: the whole tree; opt_state: over the trained groups only."""
  step: jax.Array
  params: Any
  opt_state: Any


def split_params(params: dict, trainable: tuple[str, ...]) -> tuple[dict, dict]:
  """(trained groups, frozen groups) of a parameter tree keyed by group name."""
  trained = {k: v for k, v in params.items() if k in trainable}
  frozen = {k: v for k, v in params.items() if k not in trainable}
  return trained, frozen


def merge_params(trained: dict, frozen: dict) -> dict:
  return {**frozen, **trained}
