"""LexMLM's masking: whole words, at the configured rate, motion words more than function words."""
import jax
import numpy as np

from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax.phases import informativeness, masking

CORPUS = [
    "a person walks forward and then jumps",
    "the person jumps twice in place",
    "a person waltzes clockwise in a circle",
    "the man turns around clockwise and walks back",
    "a person is running and then stops",
    "someone squats down and stands up",
    "the person kicks with the right leg",
    "a person waves the left hand",
]


def _corpus_tokens():
  tok = load_tokenizer()
  tokens = tok.encode(CORPUS * 4, 16)
  return tok, tokens


def test_idf_weights_rank_motion_words_above_function_words():
  tok, tokens = _corpus_tokens()
  w = informativeness.idf_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                       tok.vocab_size, tok.special_ids)
  for motion_word in ("jumps", "clockwise", "kicks"):
    for function_word in ("a", "the", "person"):
      assert w[tok.token_to_id(motion_word)] > w[tok.token_to_id(function_word)]
  assert np.all(w[tok.special_ids] == 0)


def test_mask_rate_and_whole_words():
  tok, tokens = _corpus_tokens()
  w = informativeness.idf_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                       tok.vocab_size, tok.special_ids)
  ids, am = tokens["input_ids"], tokens["attention_mask"]
  mask = np.asarray(masking.whole_word_mask(
      jax.random.key(0), ids, am, rate=0.5, is_continuation_v=tok.is_continuation,
      word_weight_v=w))
  special = np.isin(ids, tok.special_ids)
  assert not mask[special].any() and not mask[am == 0].any()
  starts = am.astype(bool) & ~special & ~tok.is_continuation[ids]
  for row in range(len(ids)):
    n_words = starts[row].sum()
    assert mask[row][starts[row]].sum() == max(1, round(0.5 * n_words))
    # A continuation piece is masked exactly when the piece before it is.
    for t in range(1, ids.shape[1]):
      if am[row, t] and tok.is_continuation[ids[row, t]]:
        assert mask[row, t] == mask[row, t - 1]


def test_motion_words_are_masked_more_often_than_function_words():
  tok, tokens = _corpus_tokens()
  w = informativeness.idf_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                       tok.vocab_size, tok.special_ids)
  ids, am = tokens["input_ids"], tokens["attention_mask"]
  counts = {}
  for seed in range(50):
    mask = np.asarray(masking.whole_word_mask(
        jax.random.key(seed), ids, am, rate=0.3, is_continuation_v=tok.is_continuation,
        word_weight_v=w))
    for word in ("jumps", "waltz", "clockwise", "a", "the", "person"):
      i = tok.token_to_id(word)
      present = ids == i
      hit, seen = counts.get(word, (0, 0))
      counts[word] = (hit + mask[present].sum(), seen + present.sum())
  rate = {word: hit / seen for word, (hit, seen) in counts.items()}
  for motion_word in ("jumps", "waltz", "clockwise"):
    for function_word in ("a", "the", "person"):
      assert rate[motion_word] > rate[function_word], rate


def test_uniform_weighting_masks_all_words_alike():
  tok, tokens = _corpus_tokens()
  w = np.ones(tok.vocab_size, np.float32)
  w[tok.special_ids] = 0
  ids, am = tokens["input_ids"], tokens["attention_mask"]
  mask = np.asarray(masking.whole_word_mask(
      jax.random.key(1), ids, am, rate=1.0, is_continuation_v=tok.is_continuation,
      word_weight_v=w))
  assert np.array_equal(mask, am.astype(bool) & ~np.isin(ids, tok.special_ids))


def _synthetic_tokens(root):
  from input_pipeline import humanml3d
  tok = load_tokenizer()
  pairs, _ = humanml3d.load_split(root, "train", "humanml3d")
  captions = [c for p in pairs for c in p.captions]
  groups = np.array([i for i, p in enumerate(pairs) for _ in p.captions])
  return tok, tok.encode(captions, 32), groups


def test_agreement_weights_tell_subject_nouns_from_motion_words(synthetic_root):
  # IDF cannot: each annotator (here, each caption) picks its own subject noun, so "someone"
  # is as rare as "walks". Agreement asks whether the word comes back for the same motion.
  tok, tokens, groups = _synthetic_tokens(synthetic_root)
  w = informativeness.agreement_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                             groups, tok.vocab_size, tok.special_ids)
  present = np.zeros(tok.vocab_size, bool)
  present[tokens["input_ids"][tokens["attention_mask"] > 0]] = True
  for noise in ("a", ".", "person", "someone"):
    if present[tok.token_to_id(noise)]:
      assert w[tok.token_to_id(noise)] < 0.2, (noise, w[tok.token_to_id(noise)])
  motion_words = [t for t in ("walks", "jumps", "clockwise", "kicks", "runs", "waves")
                  if present[tok.token_to_id(t)]]
  assert motion_words
  informative = [w[tok.token_to_id(t)] for t in motion_words]
  assert min(informative) > 0.5, dict(zip(motion_words, informative))
  assert np.all(w[tok.special_ids] == 0) and np.all(w >= 0)


def test_agreement_needs_motions_with_several_captions():
  tok, tokens = _corpus_tokens()
  w = informativeness.agreement_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                             np.arange(len(tokens["input_ids"])),
                                             tok.vocab_size, tok.special_ids)
  assert not np.any(w > 0)  # one caption per motion: nothing to agree on


def test_phase_masking_favours_motion_words_and_says_so(synthetic_root, caplog):
  import logging
  from conftest import tiny_config
  from lexmo_jax.evaluation import words
  from lexmo_jax.train import data as data_lib
  config = tiny_config("lexmlm", synthetic_root)
  tok = load_tokenizer()
  split = data_lib.load_split(config, "train")
  constants = {"is_continuation": np.asarray(tok.is_continuation),
               "word_weights": data_lib.word_weights(config, tok, split, synthetic_root.parent)}
  with caplog.at_level(logging.INFO, logger="lexmo_jax.data"):
    rates = data_lib.log_masking(config, tok, split, constants)
  assert "most often masked" in caplog.text and "least often" in caplog.text
  content = [r for w, r in rates.items() if words.kind(w) == "content"]
  function = [r for w, r in rates.items() if words.kind(w) in ("stop", "punctuation", "subject")]
  assert content and function
  assert np.mean(content) > 3 * np.mean(function), rates


def test_content_gate_follows_the_captions_own_pos_tags(synthetic_root):
  from input_pipeline import humanml3d
  tok = load_tokenizer()
  pairs, _ = humanml3d.load_split(synthetic_root, "train", "humanml3d")
  tagged = humanml3d.tagged_captions(synthetic_root, [p.motion_id for p in pairs])
  assert tagged and all("/" in tags for _, tags in tagged)
  counts = informativeness.pos_counts(tagged)
  gate = informativeness.content_gate(tok.vocab, counts)
  for function_word in ("the", "a", "with", "and", ".", ","):
    assert gate[tok.token_to_id(function_word)] == 0, function_word
  for content_word in ("walks", "jumps", "left", "slowly", "hands"):
    assert gate[tok.token_to_id(content_word)] == 1, content_word
  # Surface forms are counted where words and tags line up: "walks" is tagged walk/VERB.
  assert counts["walks"].most_common(1)[0][0] == "VERB"


def test_pos_counts_reads_humanml3d_tag_fields():
  counts = informativeness.pos_counts([
      ("A man kicks with his left leg.", "a/DET man/NOUN kick/VERB with/ADP his/PRON "
       "left/ADJ leg/NOUN"),
      ("odd line", "broken")])
  assert counts["kick"]["VERB"] == 1 and counts["kicks"]["VERB"] == 1
  assert counts["with"]["ADP"] == 1 and "broken" not in counts
