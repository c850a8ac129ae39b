"""Motion captioning: the metrics are the field's, the searches find what they promise, the
task trains in the one loop from a pre-trained workdir, and its commands fail clearly."""
import csv
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, read_metrics, tiny_config, train_on_one_device
from lexmo_jax.evaluation import captioning
from lexmo_jax.models import caption_search

# Toy vocabulary of the search tests: 0 pad, 1 start, 2 end, 3 "A", 4 "B".
PAD, START, END = 0, 1, 2


def _markov(table):
  """next_log_probs of a decoder whose next piece depends on the last one only."""
  log_table = jnp.log(jnp.asarray(table, jnp.float32))

  def next_log_probs(seqs, t):
    return log_table[seqs[:, t]]
  return next_log_probs


def _sequence_log_prob(table, seq):
  total = 0.0
  for prev, piece in zip(seq, seq[1:]):
    total += np.log(table[prev][piece])
    if piece == END:
      break
  return total


def test_beam_search_finds_the_best_sequence_greedy_misses():
  # Greedy takes A (0.6) and then ends (0.35): 0.21. B (0.4) then end (0.99) is 0.396.
  table = np.full((5, 5), 1e-6)
  table[START, [3, 4]] = [0.6, 0.4]
  table[3, [END, 3, 4]] = [0.35, 0.33, 0.32]
  table[4, END] = 0.99
  table[END, END] = table[PAD, END] = 1.0
  table /= table.sum(1, keepdims=True)
  fn = _markov(table)
  greedy, _ = caption_search.greedy_search(fn, 1, 5, START, END, PAD)
  beam, score = caption_search.beam_search(fn, 1, 5, START, END, PAD, beam_size=2)
  assert greedy[0].tolist() == [START, 3, END, PAD, PAD]
  assert beam[0].tolist() == [START, 4, END, PAD, PAD]
  np.testing.assert_allclose(score[0], _sequence_log_prob(table, [START, 4, END]), rtol=1e-4)


def test_a_wide_beam_finds_the_exhaustive_optimum():
  rng = np.random.default_rng(0)
  max_length = 5
  for _ in range(5):
    table = rng.dirichlet(np.full(5, 0.5), size=5)
    # Every possible sequence: start, then up to max_length - 1 pieces, ending with END or
    # cut at max_length.
    best, best_seq = -np.inf, None
    for pieces in np.ndindex(*(5,) * (max_length - 1)):
      seq = [START, *pieces]
      if END in seq:
        seq = seq[:seq.index(END) + 1]
      lp = _sequence_log_prob(table, seq)
      if lp > best + 1e-9:
        best, best_seq = lp, seq
    beam, score = caption_search.beam_search(_markov(table), 1, max_length, START, END, PAD,
                                             beam_size=5 ** (max_length - 1))
    got = [int(p) for p in beam[0]]
    got = got[:got.index(END) + 1] if END in got else got
    assert got == best_seq
    np.testing.assert_allclose(score[0], best, rtol=1e-4)


def test_beam_size_one_is_greedy_search():
  rng = np.random.default_rng(1)
  for _ in range(10):
    fn = _markov(rng.dirichlet(np.full(5, 0.3), size=5))
    greedy, greedy_lp = caption_search.greedy_search(fn, 3, 8, START, END, PAD)
    beam, beam_score = caption_search.beam_search(fn, 3, 8, START, END, PAD, beam_size=1,
                                                  alpha=0.0)
    np.testing.assert_array_equal(greedy, beam)
    np.testing.assert_allclose(greedy_lp, beam_score, rtol=1e-5)


def test_length_penalty_favours_longer_captions():
  # Ending at once: 0.5, log −0.69, penalty 1 at n = 1; A B end: 0.5·0.9·0.9 = 0.405, log
  # −0.90, which α = 2 divides by ((5 + 3) / 6)² ≈ 1.78: −0.51 wins.
  table = np.full((5, 5), 1e-6)
  table[START, [END, 3]] = [0.5, 0.5]
  table[3, [4, END]] = [0.9, 0.1]
  table[4, [4, END]] = [0.1, 0.9]
  table[END, END] = table[PAD, END] = 1.0
  fn = _markov(table / table.sum(1, keepdims=True))
  plain, _ = caption_search.beam_search(fn, 1, 6, START, END, PAD, beam_size=3, alpha=0.0)
  penalised, _ = caption_search.beam_search(fn, 1, 6, START, END, PAD, beam_size=3, alpha=2.0)
  assert plain[0].tolist()[:2] == [START, END]
  assert penalised[0].tolist()[:4] == [START, 3, 4, END]


# Metrics.
CANDIDATES = ["a person walks forward and then sits down",
              "someone jumps three times",
              "a man waves with his right hand",
              "the person turns around"]
REFERENCES = [["a person walks forward then sits down on a chair", "someone walks and sits"],
              ["a person jumps up three times", "the figure hops three times in place",
               "someone jumps 3 times"],
              ["a man waves his left hand", "a person waves hello"],
              ["a person crawls forward"]]


def test_caption_metrics_equal_the_coco_scorers_called_as_nlg_eval_calls_them():
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.rouge.rouge import Rouge
  ours = captioning.caption_metrics(CANDIDATES, REFERENCES)
  refs = {i: r for i, r in enumerate(REFERENCES)}
  hyps = {i: [c] for i, c in enumerate(CANDIDATES)}
  bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
  expected = {f"bleu_{n + 1}": 100 * b for n, b in enumerate(bleu)}
  expected["rouge_l"] = 100 * Rouge().compute_score(refs, hyps)[0]
  expected["cider"] = 100 * Cider().compute_score(refs, hyps)[0]
  assert set(ours) == set(expected)
  for key, value in expected.items():
    assert ours[key] == pytest.approx(value, rel=1e-12), key
  assert 0 < ours["bleu_4"] < ours["bleu_1"] < 100


def test_bleu_1_of_a_hand_counted_case():
  # 3 of 4 unigrams match and the lengths are equal (no brevity penalty): 75.
  got = captioning.caption_metrics(["a b c d"], [["a b c e"]])
  assert got["bleu_1"] == pytest.approx(75.0, rel=1e-6)
  perfect = captioning.caption_metrics(["a man walks forward now"], [["a man walks forward now"]])
  assert perfect["bleu_4"] == pytest.approx(100.0, rel=1e-6)


def test_normalisation_is_lower_case_without_punctuation():
  assert captioning.normalise_caption("  A man walks, then SITS.\n") == "a man walks then sits"
  assert captioning.normalise_caption("the person's arm-swing!") == "the person's arm swing"


def test_caption_metrics_refuse_mismatched_inputs():
  with pytest.raises(ValueError, match="2 candidates but 1 reference sets"):
    captioning.caption_metrics(["a", "b"], [["a"]])
  with pytest.raises(ValueError, match="reference set 0 must be a non-empty list"):
    captioning.caption_metrics(["a"], [[]])
  with pytest.raises(TypeError, match="not one string"):
    captioning.caption_metrics("a man walks", [["a man walks"]])


@pytest.fixture(scope="module")
def bert_scorer():
  return captioning.BertScorer.from_pretrained()


def test_bert_score_reads_the_layer_transformers_gives(bert_scorer):
  from test_evaluate_cli import transformers_hidden_states
  sentences = ["a person walks forward slowly", "someone jumps three times in place"]
  assert bert_scorer.layer == 5  # bert_score's choice for a 6-layer model
  ours = bert_scorer.token_embeddings(sentences)
  h, mask, ids = transformers_hidden_states(sentences, layer=5)
  for i, emb in enumerate(ours):
    keep = (mask[i] > 0) & ~np.isin(ids[i], [101, 102])
    ref = h[i][keep] / np.linalg.norm(h[i][keep], axis=-1, keepdims=True)
    np.testing.assert_allclose(emb, ref, atol=3e-5)


def test_bert_score_is_one_for_a_reference_and_ranks_meaning(bert_scorer, tmp_path):
  got = bert_scorer.score(["a person walks forward", "a person walks forward",
                           "the stock market fell sharply"],
                          [["someone jumps", "a person walks forward"],
                           ["someone is walking ahead"], ["someone is walking ahead"]])
  np.testing.assert_allclose(got["f1"][0], 1.0, atol=1e-5)
  assert got["f1"][1] > got["f1"][2]
  baseline = tmp_path / "baseline.tsv"
  with open(baseline, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["LAYER", "P", "R", "F"])
    writer.writerow([5, 0.5, 0.5, 0.5])
  rescaled = captioning.BertScorer(bert_scorer.encoder, 5,
                                   captioning.read_baseline(baseline, 5)).score(
                                       ["a person walks forward"], [["someone is walking ahead"]])
  np.testing.assert_allclose(rescaled["f1"], (got["f1"][1] - 0.5) / 0.5, rtol=1e-6)
  with pytest.raises(ValueError, match="no row for layer 7"):
    captioning.read_baseline(baseline, 7)


def test_caption_retrieval_and_the_nearest_neighbour():
  motions = np.eye(6, 10, dtype=np.float32)
  perfect = captioning.caption_retrieval(motions, motions)
  assert perfect["r_precision_1"] == 100.0 and perfect["matching_score"] == pytest.approx(1.0)
  shifted = captioning.caption_retrieval(np.roll(motions, 1, axis=0), motions)
  assert shifted["r_precision_1"] == 0.0
  assert captioning.nearest_neighbour_captions(motions[[2, 0]], motions, list("abcdef")) == [
      "c", "a"]


# The task in the training loop.
CAPTIONING_STEPS = 60

@pytest.fixture(scope="module")
def captioner_dir(chain, synthetic_root, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("captioning")
  config = tiny_config("captioning", synthetic_root, total_steps=CAPTIONING_STEPS, log_every=1,
                       checkpoint_every=CAPTIONING_STEPS, init_from=str(chain["lexcmlp"]))
  config.optim.warmup_steps = 5
  train_on_one_device(config, workdir)
  return workdir


def test_captioning_loss_falls(captioner_dir):
  losses = [m["caption_cross_entropy"] for m in read_metrics(captioner_dir)]
  assert len(losses) == CAPTIONING_STEPS and np.all(np.isfinite(losses))
  # It starts near a uniform guess over the output vocabulary and ends well below it.
  uniform = np.log(len(np.load(captioner_dir / "caption_vocabulary.npy")))
  assert abs(np.mean(losses[:3]) - uniform) < 0.5
  assert np.mean(losses[-5:]) < min(0.85 * np.mean(losses[:5]), uniform - 0.75)


def test_captioning_starts_from_the_pretrained_encoders_and_text_layers(captioner_dir, chain):
  from lexmo_jax.captioner import Captioner
  from lexmo_jax.inference import LexicalModel
  captioner = Captioner.from_workdir(captioner_dir)
  pretrained = LexicalModel.from_workdir(chain["lexcmlp"])
  # The motion encoder and its head were taken over and stayed frozen.
  for group in ("motion", "motion_head", "text"):
    for a, b in zip(jax.tree.leaves(captioner.params[group]),
                    jax.tree.leaves(pretrained.params[group])):
      np.testing.assert_array_equal(a, b)
  vocabulary = np.asarray(captioner.output_vocabulary)
  assert captioner.tokenizer.sep_id in vocabulary
  assert not np.isin(captioner.tokenizer.cls_id, vocabulary)


def test_captions_of_a_split_beam_and_greedy(captioner_dir, synthetic_root):
  from lexmo_jax.captioner import Captioner
  from lexmo_jax.train import data as data_lib
  captioner = Captioner.from_workdir(captioner_dir)
  split = data_lib.load_split(captioner.config, "test")
  batches = captioner.eval_batches(split.pairs, split.mean, split.std, batch_size=4)
  greedy = captioner.caption_eval_batches(batches, beam_size=1)
  beam = captioner.caption_eval_batches(batches, beam_size=3)
  assert len(greedy) == len(beam) == len(split.pairs)
  words = [len(c.split()) for c in greedy + beam]
  # min_length pieces before the end, at most max_length pieces in all.
  assert min(words) >= 1 and max(words) <= captioner.config.caption.max_length
  assert all("[" not in c for c in greedy + beam)  # no special token is written


def test_evaluate_captioning_writes_the_table_json(captioner_dir, capsys):
  from lexmo_jax.evaluation.captioning_report import evaluate_captioning
  results = evaluate_captioning(str(captioner_dir), split="test", beam_size=2)
  written = json.loads((captioner_dir / "eval" / "captioning.json").read_text())
  assert written["captioner"] == results["captioner"]
  keys = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider", "bert_score",
          "r_precision_1", "r_precision_3", "matching_score"}
  assert keys <= set(written["captioner"]) and keys <= set(written["nearest_neighbour"])
  item = written["captions"][0]
  assert {"id", "generated", "references"} <= set(item) and item["references"]
  out = capsys.readouterr().out
  assert "BLEU@1" in out and "nearest neighbour" in out and "published paper" in out


def _run(*args):
  return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                        cwd=ROOT, check=False)


def test_caption_command_prints_caption_and_words(captioner_dir, synthetic_root, tmp_path):
  motion = sorted((synthetic_root / "new_joint_vecs").glob("*.npy"))[0]
  bad = tmp_path / "bad.npy"
  np.save(bad, np.zeros((30, 7), np.float32))
  done = _run("lexmo_jax.caption", f"--workdir={captioner_dir}",
              f"--motion={motion},{bad}")
  assert done.returncode != 0
  assert f"motion file {bad} has shape (30, 7)" in done.stderr
  done = _run("lexmo_jax.caption", f"--workdir={captioner_dir}", f"--motion={motion}",
              "--beam=2")
  assert done.returncode == 0, done.stderr
  assert "caption:" in done.stdout and "  words:" in done.stdout and "beam 2" in done.stdout


def test_caption_command_refuses_a_workdir_without_captioner(chain):
  done = _run("lexmo_jax.caption", f"--workdir={chain['lexcmlp']}", "--motion=x.npy")
  assert done.returncode != 0
  assert "is a 'lexcmlp' workdir, not a captioner" in done.stderr
  assert "configs/captioning.py" in done.stderr


def test_bad_captioning_config_is_refused_in_one_line(synthetic_root, chain):
  from lexmo_jax import config_validation
  config = tiny_config("captioning", synthetic_root, init_from=str(chain["lexcmlp"]))
  config.caption.condition = "pictures"
  with pytest.raises(config_validation.ConfigError,
                     match="config.caption.condition: 'pictures' is not one of"):
    config_validation.validate(config, 1)
  config = tiny_config("captioning", synthetic_root, init_from=str(chain["lexcmlp"]))
  config.caption.min_length = config.caption.max_length
  with pytest.raises(config_validation.ConfigError, match="config.caption.min_length"):
    config_validation.validate(config, 1)
  # A captioner of a motion encoder that was never pre-trained says nothing of its motions.
  config = tiny_config("captioning", synthetic_root)
  with pytest.raises(config_validation.ConfigError,
                     match="config.init_from: the captioning task starts from a finished"):
    config_validation.validate(config, 1)


def test_the_lexical_critic_picks_the_hypothesis_the_space_agrees_with(captioner_dir):
  from lexmo_jax.captioner import Captioner
  from lexmo_jax.train import data as data_lib
  captioner = Captioner.from_workdir(captioner_dir)
  # Captions no longer than the text limit, so that encoding their text sees every piece
  # the critic saw.
  captioner.config.caption.max_length = captioner.config.data.max_text_length
  split = data_lib.load_split(captioner.config, "test")
  batches = captioner.eval_batches(split.pairs, split.mean, split.std, batch_size=4)
  motions = captioner.encode_eval_batches(batches)["motion"]

  def agreement(captions):
    texts = captioner.encode_texts(captions)
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
    return np.sum(unit(texts) * unit(motions), axis=1)

  captioner.config.caption.rerank_weight = 0.0
  plain = captioner.caption_eval_batches(batches, beam_size=4)
  captioner.config.caption.rerank_weight = 1e4  # the critic alone decides
  critic = captioner.caption_eval_batches(batches, beam_size=4)
  # The critic scores the word pieces it decoded; the captions are scored again from their
  # text, whose pieces can differ slightly.
  assert np.mean(agreement(critic) >= agreement(plain) - 1e-3) >= 0.9
  assert np.mean(agreement(critic)) > np.mean(agreement(plain))
