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


def _captions(root, limit=400):
  texts = sorted((root / "texts").glob("*.txt"))[:limit]
  return [line.split("#")[0] for t in texts for line in t.read_text().splitlines() if line]


def _write_t5_folder(folder, captions, extra_rows=8):
  """A T5 folder as the Hub lays it out: a SentencePiece (Unigram) tokenizer trained here on
  the captions, with T5's specials and sentinels, and a random gated-GELU T5 whose embedding
  has more rows than the vocabulary (as T5's 32128 rows hold 32100 pieces)."""
  from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
  tok = Tokenizer(models.Unigram())
  tok.normalizer = normalizers.Lowercase()
  tok.pre_tokenizer = pre_tokenizers.Metaspace()
  tok.decoder = decoders.Metaspace()
  tok.train_from_iterator(captions, trainers.UnigramTrainer(
      vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"))
  tok.add_special_tokens(["<extra_id_0>", "<extra_id_1>"])
  folder.mkdir(parents=True)
  tok.save(str(folder / "tokenizer.json"))
  torch.manual_seed(0)
  config = transformers.T5Config(
      vocab_size=tok.get_vocab_size() + extra_rows, d_model=32, d_kv=16, d_ff=64, num_layers=1,
      num_heads=2, feed_forward_proj="gated-gelu", dropout_rate=0.0)
  transformers.T5EncoderModel(config).save_pretrained(folder)
  return config


def test_sentencepiece_vocabulary_is_read_as_t5s(tmp_path, synthetic_root):
  from input_pipeline.tokenizer import load_tokenizer
  _write_t5_folder(tmp_path / "t5", _captions(synthetic_root))
  tok = load_tokenizer(str(tmp_path / "t5"))
  assert tok.style == "sentencepiece" and tok.cls_id is None
  encoded = tok.encode(["a person walks forward", ""], 12)
  ids, mask = encoded["input_ids"], encoded["attention_mask"]
  assert ids[0, mask[0].sum() - 1] == tok.token_to_id("</s>")  # </s> ends, nothing starts
  assert ids[0, 0] == tok.token_to_id("\u2581a") and ids[1, 0] == tok.token_to_id("</s>")
  assert tok.decode(ids[0]) == "a person walks forward"
  for special in ("<pad>", "</s>", "<unk>", "<extra_id_0>", "<extra_id_1>"):
    assert not tok.word_mask[tok.token_to_id(special)], special
  assert tok.mask_id == tok.token_to_id("<extra_id_0>")
  pieces = tok.tokenize("a person walks")
  assert all(tok.is_continuation[tok.token_to_id(p)] != p.startswith("\u2581") for p in pieces)
  kept, cut = tok.cut_off("a person walks forward and then turns around", 4)
  assert kept == 3 and cut  # three pieces and </s>


def test_motionpatches_trains_and_retrieves_with_a_t5_tower(tmp_path, synthetic_root):
  """The text-encoder ablation's row: MotionPatches whose text tower is a T5 read from a Hub
  folder (its SentencePiece vocabulary too); it learns, and `evaluate` scores it."""
  from conftest import read_metrics, tiny_config, train_on_one_device  # pylint: disable=g-import-not-at-top
  from configs.baselines import motionpatches
  from lexmo_jax import evaluate
  hf = _write_t5_folder(tmp_path / "t5", _captions(synthetic_root))
  c = tiny_config("baselines.motionpatches", synthetic_root, total_steps=40,
                  checkpoint_every=40, log_every=2)
  motionpatches.t5_text(c, "small", runlocal=True)
  c.text.init = str(tmp_path / "t5")
  c.text.vocab_size, c.text.hidden_size, c.text.mlp_dim = hf.vocab_size, 32, 64
  c.text.num_layers, c.text.num_heads, c.text.t5.d_kv = 1, 2, 16
  c.motionpatches.projection_dim = 32
  train_on_one_device(c, tmp_path / "run")
  values = [m["contrastive"] for m in read_metrics(tmp_path / "run") if "contrastive" in m]
  assert len(values) == 20 and np.isfinite(values).all()
  assert np.mean(values[-4:]) < 0.9 * np.mean(values[:4]), values
  metrics = evaluate.evaluate(str(tmp_path / "run"), split="test", protocols=("all",),
                              out=str(tmp_path / "eval.json"))
  assert 0 <= metrics["all"]["t2m/R@1"] <= 100


def test_t5_towers_are_refused_outside_the_dense_baseline(synthetic_root):
  from configs.baselines import motionpatches
  from lexmo_jax.config_validation import ConfigError, validate
  from conftest import tiny_config  # pylint: disable=g-import-not-at-top
  c = tiny_config("lexcmlp", synthetic_root)
  motionpatches.t5_text(c, "small", runlocal=True)
  with pytest.raises(ConfigError, match="serves the dense MotionPatches baseline"):
    validate(c, 1)
  with pytest.raises(ValueError, match="unknown text tower 't5-huge'"):
    motionpatches.get_config("runlocal,text=t5-huge")
  full = motionpatches.get_config("text=t5-xxl")
  assert (full.text.hidden_size, full.text.mlp_dim, full.text.num_layers,
          full.text.num_heads, full.text.vocab_size) == (4096, 10240, 24, 64, 32128)
