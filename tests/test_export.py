"""A trained workdir's text encoder exports to a folder transformers loads, same outputs."""
import numpy as np
import pytest

from lexmo_jax.export import export
from lexmo_jax.inference import LexicalModel
from lexmo_jax.models.lexmo import LexMo


@pytest.fixture(scope="module")
def workdir(chain):
  return chain["lexmlm"]


def test_export_loads_in_transformers_with_the_same_logits(workdir, tmp_path):
  from transformers import FlaxAutoModelForMaskedLM
  out = export(str(workdir), str(tmp_path / "hf"))
  model = LexicalModel.from_workdir(workdir, require_lexical=False)
  tokens = model.tokenizer.encode(["a person jumps twice", "someone walks in a circle"], 16)
  ours = model.model.apply({"params": model.params}, tokens["input_ids"],
                           tokens["attention_mask"], method=LexMo.text_logits)
  hf = FlaxAutoModelForMaskedLM.from_pretrained(out)
  theirs = hf(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).logits
  np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-4)
  assert (out / "vocab.txt").exists() or (out / "tokenizer.json").exists()


def test_export_of_a_missing_workdir_names_it(tmp_path):
  from lexmo_jax.inference import WorkdirError
  with pytest.raises(WorkdirError, match="config.json is missing"):
    export(str(tmp_path / "nothing"), str(tmp_path / "out"))
