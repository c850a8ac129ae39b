"""A phase's sharded training state and its compiled step.

State is born sharded: `jax.eval_shape` of the initialiser gives the abstract state with the
logical axis names of every parameter; the config's rules turn them into shardings; the
initialiser is then jitted with those `out_shardings`. The step is jitted with
`in_shardings`/`out_shardings` and donates the state.
"""
from __future__ import annotations

import contextlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lexmo_jax import phases
from lexmo_jax.models.build import build_model, dummy_batch
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases.base import Phase, PhaseContext
from lexmo_jax.sharding import rules as rules_lib
from lexmo_jax.sharding.mesh import make_mesh
from lexmo_jax.train.optimizer import make_optimizer
from lexmo_jax.train.state import TrainState, merge_params, split_params


class Trainer:
  """Everything compiled for one phase on one mesh."""

  def __init__(self, config, phase: Phase, model: LexMo, tx: optax.GradientTransformation,
               schedule: optax.Schedule, mesh, rules, constants: dict[str, np.ndarray]):
    self.config = config
    self.phase = phase
    self.model = model
    self.tx = tx
    self.schedule = schedule
    self.mesh = mesh
    self.rules = rules
    self.context = PhaseContext(model, config.loss, {k: jnp.asarray(v) for k, v in
                                                     constants.items()})
    boxed = jax.eval_shape(self._init_boxed, jax.random.key(0))
    self.state_shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(boxed), mesh, rules)
    self.abstract_state = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), nn.unbox(boxed),
        self.state_shardings)
    self.batch_shapes = {k: v for k, v in dummy_batch(config, config.data.global_batch_size).items()
                         if k in phase.batch_keys}
    self.batch_shardings = rules_lib.batch_shardings(mesh, rules, self.batch_shapes)
    self._init = jax.jit(lambda rng: nn.unbox(self._init_boxed(rng)),
                         out_shardings=self.state_shardings)
    self._with_params = jax.jit(self._state_from_params,
                                in_shardings=(self.state_shardings.params,),
                                out_shardings=self.state_shardings)
    self._step = jax.jit(self._train_step,
                         in_shardings=(self.state_shardings, self.batch_shardings),
                         out_shardings=(self.state_shardings, rules_lib.replicated(mesh)),
                         donate_argnums=0)

  @contextlib.contextmanager
  def activated(self):
    """Mesh and logical rules in force while tracing and running."""
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      yield

  # State.
  def _init_boxed(self, rng) -> TrainState:
    k_params, k_dropout = jax.random.split(rng)
    # Initialisation only needs shapes: activation constraints (on a batch of one) are off.
    with nn.logical_axis_rules(()):
      params = self.model.init({"params": k_params, "dropout": k_dropout},
                               dummy_batch(self.config))["params"]
    trained, _ = split_params(params, self.phase.trainable)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=self.tx.init(trained))

  def _state_from_params(self, params) -> TrainState:
    trained, _ = split_params(params, self.phase.trainable)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=self.tx.init(trained))

  def init_state(self, seed: int) -> TrainState:
    """Fresh parameters and optimiser state, created sharded."""
    return self._init(jax.random.key(seed))

  def state_from_params(self, params) -> TrainState:
    """Step 0 with given parameters (a previous phase's) and a fresh optimiser."""
    params = jax.device_put(params, self.state_shardings.params)
    return self._with_params(params)

  # Step.
  def _train_step(self, state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.key(self.config.seed), state.step)
    trained, frozen = split_params(state.params, self.phase.trainable)

    def objective(trained_params):
      return self.phase.loss(self.context, merge_params(trained_params, frozen), batch, rng,
                             state.step)

    (loss, terms), grads = jax.value_and_grad(objective, has_aux=True)(trained)
    updates, opt_state = self.tx.update(grads, state.opt_state, trained)
    trained = optax.apply_updates(trained, updates)
    metrics = {"loss": loss, **terms, "grad_norm": optax.global_norm(grads),
               "learning_rate": self.schedule(state.step)}
    new_state = TrainState(step=state.step + 1, params=merge_params(trained, frozen),
                           opt_state=opt_state)
    return new_state, metrics

  def step(self, state: TrainState, batch) -> tuple[TrainState, dict[str, Any]]:
    return self._step(state, batch)

  def global_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's rows → global arrays laid out as the step expects."""
    local = {k: local_batch[k] for k in self.phase.batch_keys}
    return {k: jax.make_array_from_process_local_data(self.batch_shardings[k], v)
            for k, v in local.items()}

  def lowered_step(self):
    """The step lowered for the abstract state and batch (no data, no compilation)."""
    batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=self.batch_shardings[k])
             for k, v in self.batch_shapes.items()}
    return self._step.lower(self.abstract_state, batch)

  def compiled_step(self):
    """The step compiled ahead of time for the abstract state and batch (no data, no run)."""
    return self.lowered_step().compile()


def build_trainer(config, constants: dict[str, np.ndarray], devices=None) -> Trainer:
  """The Trainer of `config.phase`: its model, optimiser, mesh (over `devices`, default all)
  and sharding rules, as the config describes them. The one way the loop, the compile
  report, the benchmark and the tests build one.

  Args:
    config: a validated phase config.
    constants: the phase's constants (`lexmo_jax.train.data.phase_constants`).
    devices: the devices of the mesh; None = jax.devices().
  """
  phase = phases.get_phase(config)
  tx, schedule = make_optimizer(config.optim, config.total_steps)
  model = phase.model(config, constants) if phase.model is not None else build_model(config)
  return Trainer(config, phase, model, tx, schedule,
                 make_mesh(config.mesh, devices), rules_lib.rules_from_config(config), constants)
