"""A trained workdir's text encoder exports to a folder that transformers' PyTorch classes load
with the same token states, logits, lexical vectors and pooled vectors; its README's code runs."""
import copy
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import safetensors.numpy
import torch
import transformers

from lexmo_jax import export as export_lib
from lexmo_jax.export import export
from lexmo_jax.inference import LexicalModel, text_outputs
from lexmo_jax.models.lexmo import LexMo

TOL = 1e-4
CAPTIONS = ["a person jumps twice", "someone walks in a circle",
            "a man kicks with his left foot, then turns around to the right, walks three steps "
            "forward, waves with both hands over his head and finally sits down on the floor"]


@pytest.fixture(scope="module")
def workdir(chain):
  return chain["lexmlm"]


@pytest.fixture(scope="module")
def model(workdir):
  return LexicalModel.from_workdir(workdir, require_lexical=False)


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
  return export(str(workdir), str(tmp_path_factory.mktemp("export") / "text_encoder"))


def jax_text(model, captions):
  """Our ids, mask, token states (B, L, D), logits (B, L, V) and pooled states (B, D) at the
  workdir's text length."""
  tokens = model.tokenizer.encode(captions, model.config.data.max_text_length)
  ids, mask = tokens["input_ids"], tokens["attention_mask"]
  apply = lambda method: model.model.apply({"params": model.params}, ids, mask, method=method)
  _, pooled = apply(text_outputs)
  return (ids, mask, np.asarray(apply(LexMo.text_states)), np.asarray(apply(LexMo.text_logits)),
          np.asarray(pooled))


def assert_close(ours, reference, tol=TOL):
  ours, reference = np.asarray(ours), np.asarray(reference)
  assert ours.shape == reference.shape
  assert np.max(np.abs(ours - reference)) <= tol, np.max(np.abs(ours - reference))


def test_export_loads_in_transformers_with_the_same_outputs(model, exported):
  assert not (exported / "flax_model.msgpack").exists()
  ids, mask, states, logits, pooled = jax_text(model, CAPTIONS)
  assert mask.sum(1).max() == mask.shape[1]  # one caption is cut at the text limit
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(exported))
  tokens = tokenizer(CAPTIONS, padding="max_length", truncation=True,
                     max_length=model.config.data.max_text_length, return_tensors="pt")
  assert "token_type_ids" not in tokens  # DistilBERT takes none
  np.testing.assert_array_equal(tokens["input_ids"].numpy(), ids)
  np.testing.assert_array_equal(tokens["attention_mask"].numpy(), mask)

  encoder = transformers.AutoModel.from_pretrained(str(exported)).eval()
  mlm, info = transformers.AutoModelForMaskedLM.from_pretrained(str(exported),
                                                                output_loading_info=True)
  assert type(encoder).__name__ == "DistilBertModel"
  assert type(mlm).__name__ == "DistilBertForMaskedLM"
  assert not info["missing_keys"] and not info["unexpected_keys"], info
  with torch.no_grad():
    torch_states = encoder(**tokens).last_hidden_state
    torch_logits = mlm.eval()(**tokens).logits
  assert_close(torch_states, states)
  assert_close(torch_logits, logits)

  # SPLADE-max over the exported logits with the exported mask: the workdir's vectors.
  record = json.loads((exported / "lexical_pooling.json").read_text())
  vocab_mask = torch.ones(record["vocab_size"], dtype=torch.bool)
  vocab_mask[record["excluded_ids"]] = False
  np.testing.assert_array_equal(vocab_mask.numpy(), np.asarray(model.vocab_mask))
  tok = model.tokenizer
  assert {tok.cls_id, tok.sep_id, tok.pad_id, tok.mask_id} <= set(record["excluded_ids"])
  valid = tokens["attention_mask"].bool()
  z = torch_logits.masked_fill(~valid[..., None], float("-inf")).max(dim=1).values
  lexical = torch.log1p(torch.relu(z)) * vocab_mask
  expected = model.encode_texts(CAPTIONS)
  assert (expected > 0).sum(1).min() > 0  # vectors with weights, not zeros compared
  assert_close(lexical, expected)
  torch_pooled = (torch_states * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
  assert_close(torch_pooled, pooled)
  assert record["max_text_length"] == model.config.data.max_text_length
  assert record["condition_projection"] is None
  assert record["source"] == {"phase": model.phase, "step": model.step}


def readme_blocks(folder: pathlib.Path) -> list[str]:
  """The ```python blocks of the folder's README, pointed at the folder."""
  text = (folder / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  return [re.sub(r'^folder = ".*"$', f"folder = {str(folder)!r}", b, flags=re.M)
          for b in blocks]


def run_readme(folder: pathlib.Path) -> dict:
  blocks = readme_blocks(folder)
  assert len(blocks) == 2 and 'folder = "' not in "".join(blocks[1:])
  namespace = {}
  for block in blocks:
    exec(compile(block, str(folder / "README.md"), "exec"), namespace)  # pylint: disable=exec-used
  return namespace


def test_readme_code_gives_the_workdir_vectors(model, exported, capsys):
  readme = (exported / "README.md").read_text()
  assert "no trained conditioning projection" in readme
  assert "MoMask" in readme and "T2M-GPT" in readme and "MDM" in readme
  ns = run_readme(exported)
  assert "[" in capsys.readouterr().out  # it printed the top words
  assert_close(ns["lexical"], model.encode_texts(ns["captions"]))
  *_, pooled = jax_text(model, ns["captions"])
  assert_close(ns["pooled"], pooled)
  # Without a trained projection the CLIP stand-in gives the pooled vector.
  assert_close(ns["encode_text"](CAPTIONS), jax_text(model, CAPTIONS)[-1])


def test_export_writes_a_trained_condition_projection(model, workdir, tmp_path, monkeypatch):
  d = model.config.text.hidden_size
  rng = np.random.default_rng(0)
  kernel = rng.normal(0.0, 0.1, (d, 512)).astype(np.float32)
  bias = rng.normal(0.0, 0.1, (512,)).astype(np.float32)
  conditioned = copy.copy(model)
  conditioned.params = {**model.params,
                        "text_condition": {"projection": {"kernel": kernel, "bias": bias}}}
  monkeypatch.setattr(LexicalModel, "from_workdir",
                      classmethod(lambda cls, *args, **kwargs: conditioned))
  out = export(str(workdir), str(tmp_path / "conditioned"))

  linear = torch.nn.Linear(d, 512)
  linear.load_state_dict({k: torch.from_numpy(v) for k, v in safetensors.numpy.load_file(
      str(out / "condition_projection.safetensors")).items()})
  *_, pooled = jax_text(model, CAPTIONS)
  expected = pooled @ kernel + bias
  with torch.no_grad():
    assert_close(linear(torch.from_numpy(np.array(pooled))), expected)
  record = json.loads((out / "lexical_pooling.json").read_text())
  assert record["condition_projection"]["out_features"] == 512
  assert record["condition_projection"]["in_features"] == d
  ns = run_readme(out)
  features = ns["encode_text"](CAPTIONS)
  assert features.shape == (len(CAPTIONS), 512) and features.dtype == torch.float32
  # The stand-in gives what TextConditioner.projected gives: the projection, L2-normalised.
  assert_close(features, expected / np.linalg.norm(expected, axis=-1, keepdims=True))

  # Exported again from a workdir without one, the older projection goes.
  monkeypatch.undo()
  export(str(workdir), str(out))
  assert not (out / "condition_projection.safetensors").exists()
  assert json.loads((out / "lexical_pooling.json").read_text())["condition_projection"] is None


def test_a_malformed_condition_group_is_named():
  with pytest.raises(ValueError, match="text_condition.*projection"):
    export_lib.condition_projection({"text_condition": {"dense": {}}})


def run_cli(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "lexmo_jax.export", *args], capture_output=True,
                        text=True, timeout=300, env=env)


def test_the_command_exports_and_refuses_an_unknown_format(workdir, tmp_path):
  done = run_cli(f"--workdir={workdir}", f"--out={tmp_path / 'cli'}")
  assert done.returncode == 0, done.stderr
  assert "README.md" in done.stdout
  assert {"config.json", "model.safetensors", "lexical_pooling.json", "README.md",
          "tokenizer_config.json"} <= {p.name for p in (tmp_path / "cli").iterdir()}
  refused = run_cli(f"--workdir={workdir}", f"--out={tmp_path / 'onnx'}", "--format=onnx")
  lines = [l for l in refused.stderr.splitlines() if l.startswith("error: ")]
  assert refused.returncode == 2 and len(lines) == 1, refused.stderr
  assert "--format" in lines[0] and "pytorch" in lines[0], lines[0]
  assert not (tmp_path / "onnx").exists()


def test_export_of_a_missing_workdir_names_it(tmp_path):
  from lexmo_jax.inference import WorkdirError
  with pytest.raises(WorkdirError, match="config.json is missing"):
    export(str(tmp_path / "nothing"), str(tmp_path / "out"))
