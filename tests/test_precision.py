"""config.dtype=bfloat16: matrix products run in bf16; parameters and optimiser state stay
float32; one step of every phase gives a finite loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from lexmo_jax import phases
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.trainer import Trainer, build_trainer


def _dot_input_dtypes(jaxpr) -> list[tuple]:
  """Operand dtypes of every dot_general in a jaxpr, nested calls included."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "dot_general":
      found.append(tuple(v.aval.dtype for v in eqn.invars))
    for sub in jax.core.jaxprs_in_params(eqn.params):
      found += _dot_input_dtypes(sub)
  return found


def _floating(tree) -> list:
  return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


def _trainer(phase_name: str, root, workdir) -> tuple[Trainer, object]:
  config = tiny_config(phase_name, root, dtype="bfloat16")
  phase = phases.get_phase(config)
  tok = data_lib.load_tokenizer(config)
  split = data_lib.load_split(config, "train")
  stream = data_lib.train_stream(config, split, tok, 0, 1)
  constants = data_lib.phase_constants(config, phase, tok, split, workdir)
  return build_trainer(config, constants), stream


@pytest.fixture(scope="module")
def initial_params(synthetic_root, tmp_path_factory):
  """Fresh parameters of the bf16 model (the same for every phase: all initialise the whole
  model), made once."""
  trainer, _ = _trainer("lexcmlp", synthetic_root, tmp_path_factory.mktemp("init"))
  with trainer.activated():
    state = trainer.init_state(trainer.config.seed)
  assert {x.dtype for x in _floating(state.params)} == {jnp.dtype(jnp.float32)}
  return jax.device_get(state.params)


@pytest.mark.parametrize("phase_name", phases.ORDER)
def test_bfloat16_step_keeps_float32_state(phase_name, synthetic_root, tmp_path, initial_params):
  trainer, stream = _trainer(phase_name, synthetic_root, tmp_path)
  with trainer.activated():
    state = trainer.state_from_params(initial_params)
    batch = trainer.global_batch(stream.batch(0))
    dots = _dot_input_dtypes(jax.make_jaxpr(trainer.step)(state, batch).jaxpr)
    state, metrics = trainer.step(state, batch)

  in_bf16 = [d for d in dots if all(t == jnp.bfloat16 for t in d)]
  assert len(in_bf16) > len(dots) // 2, dots
  assert np.isfinite(float(metrics["loss"])), metrics
  assert np.isfinite(float(metrics["grad_norm"])) and float(metrics["grad_norm"]) > 0
  assert {x.dtype for x in _floating(state.params)} == {jnp.dtype(jnp.float32)}
  assert {x.dtype for x in _floating(state.opt_state)} == {jnp.dtype(jnp.float32)}
