"""Interpretability measures: content words, stop words, keyword precision, ground truth."""
import json

import numpy as np
import pytest

from input_pipeline.synthetic import ground_truth
from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax.evaluation import interpretability as interp
from lexmo_jax.evaluation import words


@pytest.fixture(scope="module")
def tok():
  return load_tokenizer()


def test_word_kinds_follow_the_field():
  assert words.kind("a") == "stop" and words.kind("their") == "stop"
  assert words.kind(".") == "punctuation" and words.kind(",") == "punctuation"
  assert words.kind("3") == "number" and words.kind("twice") == "number"
  assert words.kind("person") == "subject" and words.kind("someone") == "subject"
  assert words.kind("##s") == "piece"
  # Direction words distinguish motions: content here, unlike general stop lists.
  for w in ("up", "down", "forward", "back", "left", "clockwise", "claps", "jog"):
    assert words.kind(w) == "content", w


def test_content_words_match_on_stems_and_first_pieces(tok):
  own = words.CaptionWords(["A person claps their hands 3 times, then lunges forward."],
                           tok.tokenize)
  assert set(own.words) == {"claps", "hands", "lunges", "forward"}
  assert own.matches("clap") and own.matches("clapping") and own.matches("hand")
  assert own.matches("lung")  # "lunges" is lung + ##es for the tokenizer
  assert not own.matches("person") and not own.matches("their") and not own.matches("3")
  assert not own.matches("walk")
  assert own.covered_by(["clap", "forward", "a", "."]) == 2


def _vector(vocab_ids: dict[int, float], size: int) -> np.ndarray:
  v = np.zeros(size, np.float32)
  for i, w in vocab_ids.items():
    v[i] = w
  return v


def test_measures_on_hand_made_vectors(tok):
  ids = {w: tok.token_to_id(w) for w in ("walks", "forward", "slowly", "a", "person", ".",
                                         "jumps", "twice", "run")}
  size = tok.vocab_size
  lexical = _vector({ids["walks"]: 3, ids["forward"]: 2, ids["slowly"]: 1}, size)
  function = _vector({ids["a"]: 3, ids["person"]: 2, ids["."]: 1, ids["walks"]: 0.5}, size)
  jumper = _vector({ids["jumps"]: 3, ids["twice"]: 1}, size)
  motion_captions = [("a person walks forward slowly",), ("a person walks forward slowly",),
                     ("someone jumps twice",)]
  captions = ["a person walks forward slowly", "someone jumps twice"]
  judge = interp.KeywordJudge(["walk", "jump"], {"walk": np.array([True, True, False]),
                                                 "jump": np.array([False, False, True])},
                              "test")

  def query(keyword):
    q = np.zeros(size, np.float32)
    q[tok.token_to_id(keyword + "s")] = 1.0
    return q

  result = interp.measure(
      vocab=tok.vocab, tokenize=tok.tokenize,
      motion_vectors=np.stack([lexical, function, jumper]), motion_captions=motion_captions,
      caption_vectors=np.stack([lexical, jumper]), captions=captions, keyword_query=query,
      judge=judge, k=10)
  # Motion 1: 3/3 content; motion 2: walks only (1/4); motion 3: jumps (1/2, twice is a number).
  assert result["motion_precision_at_10"] == pytest.approx((1 + 0.25 + 0.5) / 3)
  assert result["stopword_share_motion"] == pytest.approx((0 + 0.5 + 0) / 3)
  assert result["subject_share_motion"] == pytest.approx((0 + 0.25 + 0) / 3)
  assert result["caption_self_recall_at_10"] == pytest.approx(1.0)
  assert result["nonzero_words_motion"] == pytest.approx(3.0)
  assert result["keyword_precision_per_keyword"]["jump"] == pytest.approx(1 / 3)
  assert result["keyword_precision_at_10"] == pytest.approx((2 / 3 + 1 / 3) / 2)
  # FLOPS: P(text_j>0)·P(motion_j>0) summed over j.
  expected = sum(np.mean(np.stack([lexical, jumper])[:, j] > 0)
                 * np.mean(np.stack([lexical, function, jumper])[:, j] > 0)
                 for j in ids.values())
  assert result["flops"] == pytest.approx(expected)
  table = interp.format_table(result)
  assert "| motion_precision_at_10 | 0.583 |" in table and "jump 0.3" in table
  assert "action_recall_at_10" not in result  # no ground truth of the actions


def test_action_recall_asks_each_performed_action_to_be_named(tok):
  ids = {w: tok.token_to_id(w) for w in ("walks", "forward", "slowly", "jumps", "twice")}
  size = tok.vocab_size
  walker = _vector({ids["walks"]: 3, ids["forward"]: 2, ids["slowly"]: 1}, size)
  jumper = _vector({ids["jumps"]: 3, ids["twice"]: 1}, size)

  def query(keyword):
    q = np.zeros(size, np.float32)
    q[tok.token_to_id(keyword + "s")] = 1.0
    return q

  # The walker also runs, which none of its words says; a hop is named by "jump" or "hop".
  performed = [{"walk": ("walk",), "run": ("run",)}, {"hop": ("jump", "hop")}, {}]
  result = interp.action_recall(np.stack([walker, jumper, jumper]), tok.vocab, query,
                                performed, k=10)
  assert result["action_recall_at_10"] == pytest.approx(2 / 3)
  assert result["motions_with_every_action_named"] == pytest.approx(1 / 2)
  assert result["action_recall_per_action"] == {"hop": 1.0, "run": 0.0, "walk": 1.0}
  assert "actions named among a motion's 10 heaviest words: hop 1.00, run 0.00" in \
      interp.format_table(result)


def test_top_mass_and_cosine_tell_a_peaked_space_from_a_flat_one():
  flat = np.ones((3, 200), np.float32)
  assert interp.top_mass(flat) == pytest.approx(10 / 200)
  assert interp.mean_cosine_between(flat) == pytest.approx(1.0)
  peaked = np.zeros((3, 200), np.float32)
  peaked[0, :4] = [3, 2, 1, 1]
  peaked[1, 10:12] = 2
  peaked[2, 20] = 1
  peaked[:, 100:] = 0.01  # a floor far below the described words
  assert interp.top_mass(peaked) > 0.9
  assert interp.mean_cosine_between(peaked) < 0.1
  # An empty vector holds no mass and is left out; a single vector has no pair.
  assert interp.top_mass(np.zeros((2, 5))) == 0.0
  assert interp.mean_cosine_between(peaked[:1]) == 0.0


def test_judge_by_captions_uses_stems():
  judge = interp.judge_by_captions([("a man is running fast",), ("a man walks",)], ["run"])
  assert judge.relevant["run"].tolist() == [True, False]


def test_keyword_query_takes_every_form_of_a_word(tok):
  from lexmo_jax.search.gallery import keyword_ids, keyword_query
  ids, used, unknown = keyword_ids(tok, ["run", "xqzzyv", "jumped"])
  forms = {tok.vocab[i] for i in ids}
  assert {"run", "runs", "running", "jump", "jumps", "jumping", "jumped"} <= forms
  assert used == ["run", "jumped"] and unknown == ["xqzzyv"]
  query = keyword_query(tok, ["sit"])
  assert query[tok.token_to_id("sitting")] == 1.0 and query[tok.token_to_id("sit")] == 1.0
  assert query.sum() == len({i for i in np.flatnonzero(query)})


def test_synthetic_dataset_writes_its_actions(synthetic_root):
  payload = json.loads((synthetic_root / ground_truth.FILE).read_text())
  assert payload["format"] == ground_truth.FORMAT
  ids = [line for split in ("train", "val", "test")
         for line in (synthetic_root / f"{split}.txt").read_text().split()]
  assert set(payload["clips"]) == set(ids)
  truth = ground_truth.GroundTruth.load(synthetic_root)
  for clip_id, segments in payload["clips"].items():
    if clip_id.startswith("M"):
      continue
    mirror = payload["clips"]["M" + clip_id]
    assert [s["action"] for s in segments] == [s["action"] for s in mirror]
    for s, m in zip(segments, mirror):
      assert s["start"] < s["end"] and (s["start"], s["end"]) == (m["start"], m["end"])
      if s["side"] in ("left", "right"):
        assert m["side"] == {"left": "right", "right": "left"}[s["side"]]
    assert truth.actions(clip_id) == {s["action"] for s in segments}
  # The captions name the actions the file records.
  clip_id = ids[0]
  text = (synthetic_root / "texts" / f"{clip_id}.txt").read_text().lower()
  first = payload["clips"][clip_id][0]["action"].split("_")[0]
  assert first[:3] in text or first in ("side", "raise", "arm", "pick", "stand", "walk")


def test_ground_truth_spans_select_actions():
  truth = ground_truth.GroundTruth({
      "format": ground_truth.FORMAT, "fps": 20, "keywords": {"jump": ["jump", "hop"]},
      "clips": {"000001": [{"action": "walk", "start": 0.0, "end": 2.0},
                           {"action": "hop", "start": 2.0, "end": 4.0}]}}, "test")
  assert truth.performs("jump", "000001")
  assert not truth.performs("jump", "000001", 0.0, 2.0)
  assert truth.performs("jump", "000001", 1.5, 3.0)
  with pytest.raises(ValueError, match="not a synthetic actions file"):
    ground_truth.GroundTruth({"format": "other"}, "x.json")
