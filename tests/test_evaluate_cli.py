"""The evaluate command: TMR's protocols on a trained workdir, lexical and dense side by side."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from lexmo_jax.evaluate import EvalOptions, evaluate, similarity
from lexmo_jax.evaluation import retrieval
from lexmo_jax.evaluation.sentence_encoder import SentenceEncoder, default_model_path
from lexmo_jax.inference import LexicalModel
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.train import data as data_lib

METRIC_KEYS = {f"{d}/{m}" for d in retrieval.DIRECTIONS for m in retrieval.METRIC_NAMES}


@pytest.fixture(scope="module")
def model(chain):
  return LexicalModel.from_workdir(chain["lexcmlp"])


@pytest.fixture(scope="module")
def encoded(model):
  """The train split's items encoded one by one, outside the evaluation batches."""
  pairs = data_lib.load_split(model.config, "train").pairs
  captions = [p.captions[0] for p in pairs]
  return {"ids": [p.item_id for p in pairs], "captions": captions,
          "text": model.encode_texts(captions),
          "motion": model.encode_motions([p.motion for p in pairs])}


def test_default_protocols_write_the_demo_shape(chain, encoded, tmp_path, capsys):
  out = tmp_path / "eval" / "retrieval.json"
  results = evaluate(str(chain["lexcmlp"]), "train", out=str(out))
  assert list(results) == ["all", "small_batches"]
  assert all(set(m) == METRIC_KEYS for m in results.values())
  assert json.loads(out.read_text()) == results
  printed = capsys.readouterr().out
  assert "| all |" in printed and "| small_batches |" in printed and str(out) in printed
  sims = similarity(encoded["text"], encoded["motion"])
  assert results["all"] == retrieval.contrastive_metrics(sims)
  assert results["small_batches"] == retrieval.small_batch_metrics(sims)


def test_threshold_dissimilar_and_dense_side_by_side(chain, encoded, sentence_encoder, tmp_path,
                                                     capsys):
  chosen = encoded["ids"][::4]
  ids_file = tmp_path / "dissimilar.txt"
  ids_file.write_text("\n".join(chosen + ["not-an-item"]) + "\n")
  options = EvalOptions(representations=("lexical", "dense"), threshold=0.9,
                        dissimilar_ids=str(ids_file))
  results = evaluate(str(chain["lexcmlp"]), "train", ("all", "threshold", "dissimilar"),
                     str(tmp_path / "r.json"), options)
  assert list(results) == ["all", "threshold", "dissimilar",
                           "dense/all", "dense/threshold", "dense/dissimilar"]
  captured = capsys.readouterr()
  assert "not aligned by our training" in captured.out
  assert "not-an-item" in captured.err

  sims = similarity(encoded["text"], encoded["motion"])
  captions_emb = sentence_encoder.encode(encoded["captions"])
  assert results["threshold"] == retrieval.contrastive_metrics(sims, captions_emb, 0.9)
  # Relevant captions only add correct items, so no recall can drop.
  for key in METRIC_KEYS - {"t2m/MedR", "m2t/MedR"}:
    assert results["threshold"][key] >= results["all"][key]
  subset = [encoded["ids"].index(i) for i in chosen]
  assert results["dissimilar"] == retrieval.contrastive_metrics(sims[np.ix_(subset, subset)])
  assert results["dense/all"] != results["all"]


def test_dense_states_are_mean_pooled_text_and_motion_cls(model):
  split = data_lib.load_split(model.config, "test")
  batches = model.eval_batches(split.pairs, split.mean, split.std)
  encoded = model.encode_eval_batches(batches)
  b = batches.batch(0)
  n = int(b["valid"].sum())
  variables = {"params": model.params}
  h_text = np.asarray(model.model.apply(variables, b["input_ids"], b["attention_mask"],
                                        method=LexMo.text_states))
  mask = b["attention_mask"][..., None]
  np.testing.assert_allclose(encoded["text_pooled"][:n],
                             ((h_text * mask).sum(1) / mask.sum(1))[:n], atol=1e-5)
  h_motion, _ = model.model.apply(variables, b["motion"], b["motion_mask"],
                                  method=LexMo.motion_states)
  np.testing.assert_allclose(encoded["motion_pooled"][:n], np.asarray(h_motion)[:n, 0],
                             atol=1e-5)


def test_impossible_requests_are_refused_before_encoding(chain, tmp_path):
  workdir = str(chain["lexcmlp"])
  out = str(tmp_path / "r.json")
  with pytest.raises(ValueError, match="dissimilar protocol needs --dissimilar-ids FILE"):
    evaluate(workdir, "train", ("dissimilar",), out)
  with pytest.raises(ValueError, match="unknown protocols nearest"):
    evaluate(workdir, "train", ("all", "nearest"), out)
  with pytest.raises(ValueError, match="unknown representations sparse"):
    evaluate(workdir, "train", ("all",), out, EvalOptions(representations=("sparse",)))
  with pytest.raises(FileNotFoundError, match="id list .*missing.txt does not exist"):
    evaluate(workdir, "train", ("dissimilar",), out,
             EvalOptions(dissimilar_ids=str(tmp_path / "missing.txt")))
  with pytest.raises(FileNotFoundError, match="sentence encoder folder .*nowhere does not"):
    evaluate(workdir, "train", ("threshold",), out,
             EvalOptions(sentence_encoder=str(tmp_path / "nowhere")))
  with pytest.raises(ValueError, match="small_batches protocol needs at least 32 items; "
                                       "split 'test'"):
    evaluate(workdir, "test", ("small_batches",), out)
  assert not (tmp_path / "r.json").exists()


def test_a_workdir_without_finished_phase_exits_2_with_one_line(chain, tmp_path):
  (tmp_path / "config.json").write_text((chain["lexcmlp"] / "config.json").read_text())
  result = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.evaluate", f"--workdir={tmp_path}"], cwd=ROOT,
      env=dict(os.environ), capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines == [f"error: {tmp_path} has no finished phase to load: {tmp_path} holds no "
                   "checkpoints/ folder: not a training workdir"]


@pytest.fixture(scope="module")
def sentence_encoder():
  return SentenceEncoder.from_pretrained()


def transformers_hidden_states(sentences, layer=None):
  """all-MiniLM-L6-v2's token states through transformers' PyTorch BertModel: the last
  layer's, or layer `layer`'s (hidden_states[layer]); with the attention mask and input ids."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  folder = default_model_path()
  model = transformers.BertModel.from_pretrained(str(folder)).eval()
  tokens = transformers.BertTokenizerFast.from_pretrained(str(folder))(
      sentences, padding=True, return_tensors="pt")
  with torch.no_grad():
    out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                output_hidden_states=layer is not None)
  h = out.last_hidden_state if layer is None else out.hidden_states[layer]
  return (h.numpy().astype(np.float64), tokens["attention_mask"].numpy(),
          tokens["input_ids"].numpy())


def _transformers_embeddings(sentences):
  """all-MiniLM-L6-v2 through transformers' BertModel, pooled as sentence-transformers."""
  h, mask, _ = transformers_hidden_states(sentences)
  mask = mask[..., None]
  pooled = (h * mask).sum(1) / mask.sum(1)
  return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


SENTENCES = ["a person walks forward slowly", "someone is slowly walking ahead",
             "a man jumps up and down three times, then turns around to his left and sits",
             "the stock market fell sharply today"]


def test_sentence_embeddings_equal_transformers_mean_pooling(sentence_encoder):
  ours = sentence_encoder.encode(SENTENCES)
  assert ours.shape == (4, 384)
  np.testing.assert_allclose(ours, _transformers_embeddings(SENTENCES), atol=2e-5)


def test_sentence_embeddings_ignore_padding_and_rank_meaning(sentence_encoder):
  together = sentence_encoder.encode(SENTENCES)
  alone = np.concatenate([sentence_encoder.encode([s]) for s in SENTENCES])
  np.testing.assert_allclose(together, alone, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-6)
  cos = together @ together.T
  assert cos[0, 1] > cos[0, 2] > cos[0, 3]


def test_missing_sentence_encoder_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="sentence encoder folder .*nowhere"):
    SentenceEncoder.from_pretrained(tmp_path / "nowhere")


def test_interpretability_task_writes_measures_and_pictures(chain, synthetic_root, tmp_path,
                                                            capsys):
  from PIL import Image
  from lexmo_jax.evaluation.interpretability_report import evaluate_interpretability
  out = tmp_path / "eval" / "interpretability.json"
  result = evaluate_interpretability(str(chain["lexcmlp"]), "test", str(out))
  assert json.loads(out.read_text()) == result
  for key in ("motion_precision_at_10", "stopword_share_motion", "stopword_share_text",
              "caption_self_recall_at_10", "keyword_precision_at_10", "nonzero_words_motion",
              "nonzero_words_text", "flops"):
    assert key in result and np.isfinite(result[key]), key
  # The synthetic dataset's actions.json judges keyword search, with its keywords.
  assert result["keyword_judged_by"] == "actions.json"
  assert {"walk", "run", "jump", "clap", "punch"} <= set(result["keyword_precision_per_keyword"])
  # ... and says which performed actions the motions' heaviest words name.
  assert 0 <= result["action_recall_at_10"] <= 1 and result["action_recall_per_action"]
  assert (0 <= result["described_action_recall_at_10"] <= 1
          and result["described_action_recall_per_action"])
  assert len(result["described"]) == 3
  # Each motion is described by its words, forms of one word together, heaviest first.
  from lexmo_jax.evaluation.words import stem
  for item in result["described"]:
    weights = [w for _, w in item["words"]]
    assert weights == sorted(weights, reverse=True) and len(weights) <= 10
    forms = [word.split("/") for word, _ in item["words"]]
    assert all(len({stem(f) for f in group}) == 1 for group in forms if len(group) > 1), item
  printed = capsys.readouterr().out
  assert "motion_precision_at_10" in printed and "described by" in printed
  for picture in result["pictures"]:
    with Image.open(picture) as image:
      assert image.size[0] > 300 and image.size[1] > 200


def test_bottleneck_task_reports_real_and_zeroed_b(chain, tmp_path, capsys):
  from lexmo_jax.evaluation.bottleneck import evaluate_bottleneck
  result = evaluate_bottleneck(str(chain["lexmmm"]), "test", str(tmp_path / "b.json"))
  assert set(result) == {"text", "motion"}
  for r in result.values():
    assert 0 <= r["from_bottleneck"] <= 1 and 0 <= r["from_zero_bottleneck"] <= 1
    assert r["masked_words"] > 0
  assert "zeroed bottleneck" in capsys.readouterr().out
  assert set(evaluate_bottleneck(str(chain["lexmlm"]), "test", str(tmp_path / "t.json"))) == {
      "text"}


def test_interpretability_through_the_command_line(chain, tmp_path):
  out = tmp_path / "i.json"
  proc = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.evaluate", f"--workdir={chain['lexcmlp']}",
       "--task=interpretability", "--keywords=walk,jump", f"--out={out}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": str(ROOT)})
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert set(json.loads(out.read_text())["keyword_precision_per_keyword"]) == {"walk", "jump"}
  proc = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.evaluate", f"--workdir={chain['lexcmlp']}",
       "--task=interpretability", "--keywords=levitate", f"--out={out}"],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": str(ROOT)})
  assert proc.returncode != 0 and "levitate" in proc.stderr and "Traceback" not in proc.stderr
