"""Each phase's loss falls on a tiny config; phases hand their parameters on; runs resume."""
import numpy as np
import pytest

from conftest import read_metrics, tiny_config, train_on_one_device
from lexmo_jax.phases import ORDER


def _mean_loss(records, steps):
  return float(np.mean([r["loss"] for r in records if r["step"] in steps]))


@pytest.fixture(scope="module")
def lexmlm_workdir(synthetic_root, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("lexmlm")
  train_on_one_device(tiny_config("lexmlm", synthetic_root), workdir)
  return workdir


@pytest.mark.parametrize("phase", ORDER)
def test_loss_falls_over_a_few_dozen_steps(phase, synthetic_root, lexmlm_workdir, tmp_path):
  if phase == "lexmlm":
    workdir = lexmlm_workdir
  else:
    init_from = ""
    if phase == "lexmmm":
      # LexMMM reads through LexMLM's frozen weak decoder: start it where the phases before
      # it ended (CMMM, briefly, after LexMLM).
      init_from = str(tmp_path / "cmmm")
      train_on_one_device(tiny_config("cmmm", synthetic_root, total_steps=2,
                                     init_from=str(lexmlm_workdir)), init_from)
    workdir = tmp_path / phase
    train_on_one_device(tiny_config(phase, synthetic_root, init_from=init_from), workdir)
  records = read_metrics(workdir)
  assert [r["step"] for r in records] == list(range(1, 41))
  for r in records:
    assert np.isfinite(r["loss"])
    assert {"learning_rate", "steps_per_second", "grad_norm"} <= set(r)
  first, last = _mean_loss(records, range(1, 9)), _mean_loss(records, range(33, 41))
  assert last < 0.9 * first, (phase, first, last)


def test_runs_write_checkpoints_tensorboard_and_config(synthetic_root, tmp_path):
  config = tiny_config("cmmm", synthetic_root, total_steps=6, checkpoint_every=3)
  train_on_one_device(config, tmp_path)
  assert (tmp_path / "config.json").exists()
  assert list((tmp_path / "tensorboard").iterdir())
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [3, 6]


def test_a_phase_trains_only_the_parameters_it_declares(synthetic_root, lexmlm_workdir, tmp_path):
  import jax
  from lexmo_jax import phases
  from lexmo_jax.inference import LexicalModel
  before = LexicalModel.from_workdir(lexmlm_workdir, require_lexical=False).params
  config = tiny_config("cmmm", synthetic_root, total_steps=3, init_from=str(lexmlm_workdir))
  train_on_one_device(config, tmp_path)
  after = LexicalModel.from_workdir(tmp_path, require_lexical=False).params
  trained = phases.get_phase(config).trainable
  for group in before:
    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
               zip(jax.tree.leaves(before[group]), jax.tree.leaves(after[group])))
    assert same == (group not in trained), group


def test_training_from_tfrecord_shards_matches_the_folder(synthetic_root, tmp_path):
  from input_pipeline import tfds_builder
  tfds_builder.prepare(synthetic_root, tmp_path / "shards")
  losses = []
  for name, tfds_dir in (("folder", ""), ("shards", str(tmp_path / "shards"))):
    config = tiny_config("lexcmlp", synthetic_root, total_steps=2, data__tfds_dir=tfds_dir)
    train_on_one_device(config, tmp_path / name)
    losses.append([r["loss"] for r in read_metrics(tmp_path / name)])
  np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)


def test_the_motion_patch_tokenizer_trains(synthetic_root, lexmlm_workdir, tmp_path):
  """The full scale's MotionPatches tokens (kinematic chains resampled to points, cut into
  patches of frames), at a tiny size, through CMMM, the phase that trains the motion encoder:
  its loss falls as with frame tokens. (LexMLM trained text only, so its workdir starts a
  chain whose motion side differs.)"""
  config = tiny_config("cmmm", synthetic_root, init_from=str(lexmlm_workdir),
                       motion__tokenizer="patches", motion__points_per_chain=4,
                       motion__patch_frames=8)
  train_on_one_device(config, tmp_path)
  records = read_metrics(tmp_path)
  assert [r["step"] for r in records] == list(range(1, 41))
  first, last = _mean_loss(records, range(1, 9)), _mean_loss(records, range(33, 41))
  assert np.isfinite(last) and last < 0.9 * first, (first, last)
  from lexmo_jax.inference import LexicalModel
  params = LexicalModel.from_workdir(tmp_path, require_lexical=False).params["motion"]
  # A patch token holds patch_frames × points_per_chain × 3 values.
  assert params["token_embedding"]["kernel"].shape[0] == 8 * 4 * 3
