"""The optimiser: AdamW with warm-up, a cosine or constant schedule and gradient clipping."""
from __future__ import annotations

import jax
import optax


def learning_rate_schedule(optim, total_steps: int) -> optax.Schedule:
  warmup = min(optim.warmup_steps, max(total_steps - 1, 0))
  if optim.schedule == "constant":
    return optax.join_schedules(
        [optax.linear_schedule(0.0, optim.learning_rate, max(warmup, 1)),
         optax.constant_schedule(optim.learning_rate)], [warmup])
  if optim.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=optim.learning_rate, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=optim.learning_rate * optim.min_learning_rate_ratio)
  raise ValueError(f"config.optim.schedule={optim.schedule!r}: expected 'cosine' or 'constant'")


def decay_mask(params):
  """Weight decay on matrices only: not on biases, LayerNorm scales or the temperature."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def scale_by_group(scales: dict[str, float]) -> optax.GradientTransformation:
  """Multiplies the updates of each top-level parameter group by its factor (default 1)."""

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None):
    del params
    return {group: jax.tree.map(lambda u, f=scales.get(group, 1.0): u * f, tree)
            for group, tree in updates.items()}, state

  return optax.GradientTransformation(init, update)


def make_optimizer(optim, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW on the schedule; `optim.lr_scale.<group>` multiplies one group's learning rate."""
  schedule = learning_rate_schedule(optim, total_steps)
  parts = [
      optax.clip_by_global_norm(optim.grad_clip_norm),
      optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay,
                  mask=decay_mask),
  ]
  scales = {k: float(v) for k, v in (optim.get("lr_scale") or {}).items()}
  if any(v != 1.0 for v in scales.values()):
    parts.append(scale_by_group(scales))
  return optax.chain(*parts), schedule
