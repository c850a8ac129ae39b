"""The T5 encoder loaded from a Hugging Face folder matches transformers' PyTorch T5EncoderModel
on a small randomly initialised checkpoint written here."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lexmo_jax.models.t5_encoder import (T5Encoder, load_t5_params,  # pylint: disable=g-import-not-at-top
                                         relative_position_buckets)


def _write_t5(folder, feed_forward):
  torch.manual_seed(0)
  config = transformers.T5Config(
      vocab_size=120, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
      relative_attention_num_buckets=32, relative_attention_max_distance=20,
      feed_forward_proj=feed_forward, dropout_rate=0.0)
  model = transformers.T5EncoderModel(config).eval()
  model.save_pretrained(folder)
  return model


@pytest.mark.parametrize("feed_forward", ["relu", "gated-gelu"])
def test_states_match_transformers(tmp_path, feed_forward):
  hf = _write_t5(tmp_path / "t5", feed_forward)
  config, params = load_t5_params(tmp_path / "t5")
  assert config.feed_forward_proj == feed_forward and config.num_layers == 2
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 120, size=(3, 40)).astype(np.int32)
  mask = (np.arange(40)[None] < np.array([[40], [23], [5]])).astype(np.int32)
  ours = T5Encoder(config).apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask))
  with torch.no_grad():
    theirs = hf(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
  valid = mask.astype(bool)
  np.testing.assert_allclose(np.asarray(ours)[valid], theirs[valid], atol=1e-4)


def test_buckets_are_t5s():
  buckets = relative_position_buckets(200, 200, 32, 128)
  assert buckets[0, 0] == 0 and buckets[5, 4] == 1 and buckets[4, 5] == 17  # exact, each side
  assert buckets[0, 199] == 31 and buckets[199, 0] == 15  # far offsets share the last bucket
  row = buckets[100]
  assert (np.diff(row[:100]) <= 0).all() and (np.diff(row[101:]) >= 0).all()


def test_missing_or_misshaped_tensors_are_named(tmp_path):
  _write_t5(tmp_path / "t5", "relu")
  raw = json.loads((tmp_path / "t5" / "config.json").read_text())
  raw["d_ff"] = 64
  (tmp_path / "t5" / "config.json").write_text(json.dumps(raw))
  with pytest.raises(ValueError, match=r"DenseReluDense.wi.weight has shape \(48, 32\), expec"):
    load_t5_params(tmp_path / "t5")
  raw["model_type"] = "bert"
  (tmp_path / "t5" / "config.json").write_text(json.dumps(raw))
  with pytest.raises(ValueError, match="expected 't5'"):
    load_t5_params(tmp_path / "t5")
