"""Logical axis names → mesh axes, with the rule table held in the config."""
from __future__ import annotations

import flax.linen as nn
import jax
from jax.sharding import NamedSharding, PartitionSpec

# Every logical name the models use; a rule table must place each (None = replicated).
LOGICAL_AXES = ("batch", "length", "embed", "embed_out", "embed_proj", "mlp", "heads", "vocab",
                "position", "token_type", "patch")


def rules_from_config(config) -> tuple[tuple[str, object], ...]:
  rules = tuple((name, tuple(axes) if isinstance(axes, list) else axes)
                for name, axes in config.sharding_rules)
  names = [name for name, _ in rules]
  missing = sorted(set(LOGICAL_AXES) - set(names))
  if missing:
    raise ValueError(f"config.sharding_rules places no rule for the logical axes {missing}")
  return rules


def logical_to_shardings(logical_specs, mesh, rules):
  """A tree of logical PartitionSpecs → a tree of NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def batch_sharding(mesh, rules, ndim: int = 1) -> NamedSharding:
  """Rows split over the mesh axes that `batch` maps to; other dims replicated."""
  spec = nn.logical_to_mesh_axes(("batch",) + (None,) * (ndim - 1), rules)
  return NamedSharding(mesh, spec)


def batch_shardings(mesh, rules, batch_shapes) -> dict:
  return {k: batch_sharding(mesh, rules, len(v.shape)) for k, v in batch_shapes.items()}


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_parallel_size(mesh, rules) -> int:
  """How many ways the batch is split (its leading dimension must divide by it)."""
  spec = nn.logical_to_mesh_axes(("batch",), rules)[0]
  axes = () if spec is None else (spec if isinstance(spec, tuple) else (spec,))
  size = 1
  for a in axes:
    size *= mesh.shape[a]
  return size


def describe(tree_of_shardings) -> dict:
  return jax.tree.map(lambda s: str(s.spec), tree_of_shardings)
