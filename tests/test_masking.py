"""LexMLM's masking: whole words, at the configured rate, motion words more than function words."""
import jax
import numpy as np

from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax.phases import masking

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
  w = masking.idf_word_weights(tokens["input_ids"], tokens["attention_mask"], tok.vocab_size,
                               tok.special_ids)
  for motion_word in ("jumps", "clockwise", "kicks"):
    for function_word in ("a", "the", "person"):
      assert w[tok.token_to_id(motion_word)] > w[tok.token_to_id(function_word)]
  assert np.all(w[tok.special_ids] == 0)


def test_mask_rate_and_whole_words():
  tok, tokens = _corpus_tokens()
  w = masking.idf_word_weights(tokens["input_ids"], tokens["attention_mask"], tok.vocab_size,
                               tok.special_ids)
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
  w = masking.idf_word_weights(tokens["input_ids"], tokens["attention_mask"], tok.vocab_size,
                               tok.special_ids)
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
