"""Sharding changes nothing but speed: the phases train the same on one device and on the mesh
(data=2, fsdp=2, tensor=2), LexCMLP also on (data=8) and (data=4, fsdp=2), dropout and
masking included.

Same seed, same global batch of 8, 20 steps, losses equal to 1e-3 step for step; the
captioning task on the mesh with all three axes. The runs use the Trainer directly (compiled
step, sharded state), without a workdir; every run starts from the same initial parameters,
made on one device, and one test checks that parameters born sharded on a mesh are those
same parameters.
"""
import jax
import numpy as np
import pytest

from conftest import tiny_config
from lexmo_jax import phases
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.trainer import Trainer, build_trainer

STEPS = 20
MESHES = {"data8": (8, 1, 1), "data4_fsdp2": (4, 2, 1), "data2_fsdp2_tensor2": (2, 2, 2)}


def _config(phase: str, root, mesh: tuple[int, int, int]):
  # Dropout on, so that its randomness is compared across meshes too.
  config = tiny_config(phase, root, total_steps=STEPS, **{"text.dropout_rate": 0.1,
                                                           "motion.dropout_rate": 0.1})
  config.mesh.data, config.mesh.fsdp, config.mesh.tensor = mesh
  return config


def _trainer(config, workdir, devices=None) -> tuple[Trainer, object]:
  phase = phases.get_phase(config)
  tok = data_lib.load_tokenizer(config)
  split = data_lib.load_split(config, "train")
  stream = data_lib.train_stream(config, split, tok, 0, 1)
  constants = data_lib.phase_constants(config, phase, tok, split, workdir)
  return build_trainer(config, constants, devices), stream


def _train(trainer: Trainer, stream, state):
  """(losses (STEPS,), final state) of STEPS steps from `state`."""
  losses = []
  for step in range(STEPS):
    state, metrics = trainer.step(state, trainer.global_batch(stream.batch(step)))
    losses.append(metrics["loss"])
  return np.asarray(jax.device_get(losses)), state


@pytest.fixture(scope="module")
def initial_params(synthetic_root, tmp_path_factory):
  """Fresh parameters initialised on one device, on the host. Every phase initialises the
  whole model the same way (phases differ in what they train), so all phases share them."""
  config = _config("lexcmlp", synthetic_root, (1, 1, 1))
  trainer, _ = _trainer(config, tmp_path_factory.mktemp("init"), jax.devices()[:1])
  with trainer.activated():
    return jax.device_get(trainer.init_state(config.seed).params)


@pytest.fixture(scope="module")
def one_device(synthetic_root, tmp_path_factory, initial_params):
  """Losses of each phase on a single device, computed once per phase on first use."""
  cache = {}

  def get(phase: str) -> np.ndarray:
    if phase not in cache:
      config = _config(phase, synthetic_root, (1, 1, 1))
      trainer, stream = _trainer(config, tmp_path_factory.mktemp(phase), jax.devices()[:1])
      with trainer.activated():
        cache[phase], _ = _train(trainer, stream, trainer.state_from_params(initial_params))
    return cache[phase]

  return get


def test_threefry_is_partitionable():
  # Random bits that depend on the sharding would make dropout and masking mesh-dependent.
  assert jax.config.jax_threefry_partitionable


def test_parameters_born_sharded_equal_one_device_initialisation(synthetic_root, tmp_path,
                                                                 initial_params):
  config = _config("lexcmlp", synthetic_root, MESHES["data2_fsdp2_tensor2"])
  trainer, _ = _trainer(config, tmp_path)
  with trainer.activated():
    params = trainer.init_state(config.seed).params
  assert jax.tree.structure(params) == jax.tree.structure(initial_params)
  for x, y in zip(jax.tree.leaves(jax.device_get(params)), jax.tree.leaves(initial_params)):
    np.testing.assert_array_equal(x, y)


# Every phase on the mesh with all three axes, whose sharding holds every axis the smaller
# meshes use; LexCMLP (both encoders and the heads train) also on pure data parallelism (one
# row per device) and on data × fsdp.
CASES = ([(phase, "data2_fsdp2_tensor2") for phase in phases.ORDER]
         + [("lexcmlp", "data8"), ("lexcmlp", "data4_fsdp2")])


@pytest.mark.parametrize("phase, mesh_name", CASES)
def test_mesh_gives_the_one_device_losses(phase, mesh_name, synthetic_root, tmp_path,
                                          initial_params, one_device):
  mesh = MESHES[mesh_name]
  config = _config(phase, synthetic_root, mesh)
  trainer, stream = _trainer(config, tmp_path)
  reference = one_device(phase)
  with trainer.activated():
    losses, state = _train(trainer, stream, trainer.state_from_params(initial_params))
  assert np.all(np.isfinite(losses))
  np.testing.assert_allclose(losses, reference, rtol=1e-3, err_msg=f"{phase} on {mesh_name}")

  _, fsdp, tensor = mesh
  embeddings = state.params["text"]["word_embeddings"]
  vocab, width = embeddings.shape
  assert embeddings.sharding.shard_shape(embeddings.shape) == (vocab // tensor, width // fsdp)
  leaves = jax.tree.leaves(state.params) + jax.tree.leaves(state.opt_state)
  sharded = [x for x in leaves if not x.sharding.is_fully_replicated]
  if fsdp == tensor == 1:
    assert not sharded  # pure data parallelism replicates the state
  else:
    assert len(sharded) > len(leaves) // 2
    # Adam's moments live where their parameters do.
    moments = [x for x in jax.tree.leaves(state.opt_state) if x.shape == embeddings.shape]
    for m in moments:
      assert m.sharding.shard_shape(m.shape) == embeddings.sharding.shard_shape(m.shape)


def test_captioning_mesh_gives_the_one_device_losses(synthetic_root, tmp_path):
  # The captioning task has a parameter group of its own (the caption decoder): its run on
  # all three mesh axes against one device, from the same initial parameters.
  one = _config("captioning", synthetic_root, (1, 1, 1))
  (tmp_path / "one").mkdir()
  trainer, stream = _trainer(one, tmp_path / "one", jax.devices()[:1])
  with trainer.activated():
    params = jax.device_get(trainer.init_state(one.seed).params)
    reference, _ = _train(trainer, stream, trainer.state_from_params(params))
  config = _config("captioning", synthetic_root, MESHES["data2_fsdp2_tensor2"])
  (tmp_path / "mesh").mkdir()
  trainer, stream = _trainer(config, tmp_path / "mesh")
  with trainer.activated():
    losses, state = _train(trainer, stream, trainer.state_from_params(params))
  assert np.all(np.isfinite(losses))
  np.testing.assert_allclose(losses, reference, rtol=1e-3)
  decoder = jax.tree.leaves(state.params["caption_decoder"])
  assert any(not x.sharding.is_fully_replicated for x in decoder)
