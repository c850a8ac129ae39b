"""The keyword index: exact top-k of keyword queries by the threshold algorithm, against the
exact index, on galleries whose words have several forms; what it refuses to answer; and its
saved lists."""
import numpy as np
import pytest
import scipy.sparse as sp

from lexmo_jax.search import engines, keyword_index
from lexmo_jax.search.approximate import ApproximateIndex
from lexmo_jax.search.index import InvertedIndex
from lexmo_jax.search.keyword_index import KeywordIndex, words_of_terms

V = 240
# Words of three forms (entries 0-2, 3-5, ... up to 89), every other entry a word of its own.
GROUPS = {f"w{i}": [3 * i, 3 * i + 1, 3 * i + 2] for i in range(30)}


def _gallery(n, seed=0, nnz=20, copies=1):
  """Zipf-like vectors; with `copies` > 1, each of n / copies motions repeated with noise, so
  that many items nearly tie (as an augmented gallery's do)."""
  rng = np.random.default_rng(seed)
  p = 1.0 / np.arange(1, V + 1)
  p /= p.sum()
  base = np.zeros((n // copies, V), np.float32)
  for row in base:
    terms = rng.choice(V, nnz, replace=False, p=p)
    row[terms] = rng.lognormal(0, 1, nnz)
  dense = np.repeat(base, copies, axis=0)
  dense *= rng.lognormal(0, 0.05, dense.shape).astype(np.float32)
  return dense, [f"m{i}" for i in range(dense.shape[0])]


def _keyword_query(words, chosen):
  query = np.zeros(V, np.float32)
  query[np.isin(words, chosen)] = 1.0
  return query


@pytest.mark.parametrize("copies,first_depth,pair_min_length",
                         [(1, 256, 1024), (25, 256, 1024), (25, 4, 1024), (25, 256, 1)])
def test_keyword_searches_return_exact_searchs_top_10(copies, first_depth, pair_min_length,
                                                      monkeypatch):
  # A first depth of 4 leaves most queries' k-th best unknown after the first reading: the
  # depths chosen from it (two words) or deepened (more) must still find every top item.
  # With lists of any length paired, every two-keyword query is answered by a pair list.
  monkeypatch.setattr(keyword_index, "FIRST_DEPTH", first_depth)
  monkeypatch.setattr(keyword_index, "PAIR_MIN_LENGTH", pair_min_length)
  dense, ids = _gallery(2000, copies=copies)
  dense[5] = 0  # a motion without words
  dense[:, V - 1] = 0  # a word no motion holds
  words = words_of_terms(GROUPS, V)
  index = ApproximateIndex.build(dense, ids, words=words)
  exact = InvertedIndex.build(dense, ids)
  rng = np.random.default_rng(1)
  unused = int(words[V - 1])
  dense_rows = (index.keywords._dense_row >= 0).sum()  # pylint: disable=protected-access
  assert 0 < dense_rows < words.max() + 1  # both kinds of random access are exercised
  for m in [1, 2, 3, 4] * 30:
    chosen = rng.choice(int(words.max()) + 1, m, replace=False)
    query = _keyword_query(words, chosen)
    found, scores = index.search(query, 10, keywords=True)
    assert index.last_route == "keywords"
    e_found, e_scores = exact.search(query, 10)
    np.testing.assert_allclose(scores, e_scores, rtol=1e-6, atol=1e-7)
    # Same motions in the same order, wherever the exact scores do not tie.
    positive = e_scores > 0
    assert list(found[positive]) == list(e_found[positive]), (chosen, found, e_found)
  # A word no motion holds adds nothing; with it alone, nothing matches.
  query = _keyword_query(words, [int(words[0]), unused])
  assert list(index.search(query, 10, keywords=True)[0]) == list(exact.search(query, 10)[0])
  assert index.search(_keyword_query(words, [unused]), 3, keywords=True)[1].tolist() == [0] * 3


def test_top_is_exact_when_few_motions_hold_the_words():
  dense, ids = _gallery(300)
  words = words_of_terms(GROUPS, V)
  keywords = KeywordIndex.build(ApproximateIndex.build(dense, ids, words=words).vectors, words)
  rare = [int(w) for w in np.unique(words[150:])][:3]
  sums = dense[:, np.isin(words, rare)]
  holders = int((sums > 0).any(axis=1).sum())
  found, totals = keywords.top(rare, 50)
  assert 0 < found.size == min(50, holders)
  assert list(totals) == sorted(totals, reverse=True)


def test_pair_lists_answer_as_the_threshold_algorithm_does(monkeypatch):
  # Every pair of the 12 longest lists keeps its best 15 items: k up to 15 is read from
  # them, the same items with the same sums (and the k-th's ties) as the algorithm finds;
  # past 15, and for words without a pair list, the algorithm answers.
  monkeypatch.setattr(keyword_index, "PAIR_DEPTH", 15)
  monkeypatch.setattr(keyword_index, "PAIR_WORDS", 12)
  monkeypatch.setattr(keyword_index, "PAIR_MIN_LENGTH", 1)
  dense, _ = _gallery(1500, copies=25)
  dense[:40, 0:6] = 20.0  # the same, heaviest, weight on the first two words for 40
  # motions: ties past the 15th
  words = words_of_terms(GROUPS, V)
  keywords = KeywordIndex.build(sp.csr_array(dense), words)
  paired = keywords.pairs["pair_words"]
  assert paired.size == 12 and keywords.pairs["pair_ptr"].size == 12 * 11 // 2 + 1
  unpaired = int(np.setdiff1d(np.unique(words), paired)[0])
  answered = 0
  for a, b in [(a, b) for a in paired for b in paired if a < b] + [(paired[0], unpaired)]:
    for k in (1, 7, 15, 16):
      direct = keywords._threshold_top([int(a), int(b)], k)  # pylint: disable=protected-access
      from_pairs = keywords._pair_top([int(b), int(a)], k)  # pylint: disable=protected-access
      if from_pairs is None:
        assert k > 15 or unpaired in (a, b)
        continue
      answered += 1
      np.testing.assert_array_equal(from_pairs[0], direct[0])
      np.testing.assert_array_equal(from_pairs[1], direct[1])
      np.testing.assert_array_equal(keywords.top([int(a), int(b)], k)[0], direct[0])
  assert answered == 66 * 3
  first_two = [int(words[0]), int(words[3])]
  assert keywords._pair_top(first_two, 10) is not None  # pylint: disable=protected-access
  tied = keywords.top(first_two, 10)[0]
  assert sorted(tied.tolist()) == list(range(40))  # every item tying with the 10th
  # The lists keep the depth they were built to: read back where the code's depth is now
  # larger, they answer k up to 15 and leave k = 16 to the algorithm, never answering short.
  arrays = keywords.to_arrays()
  assert int(arrays["pair_depth"]) == 15
  monkeypatch.setattr(keyword_index, "PAIR_DEPTH", 100)
  loaded = KeywordIndex.from_arrays(arrays, "k.npz")
  pair = [int(paired[0]), int(paired[1])]
  assert loaded._pair_top(pair, 15) is not None  # pylint: disable=protected-access
  assert loaded._pair_top(pair, 16) is None  # pylint: disable=protected-access
  by_algorithm = keywords._threshold_top(pair, 16)[0]  # pylint: disable=protected-access
  np.testing.assert_array_equal(loaded.top(pair, 16)[0], by_algorithm)


def test_ties_are_never_cut_arbitrarily():
  # Three motions with one score for the query "word 0 or word 1": the first in gallery
  # order wins, as in the exact index, however the lists were read.
  tied = np.array([[0, 0.5], [0.5, 0], [0.5, 0]], np.float32)
  keywords = KeywordIndex.build(sp.csr_array(tied), words_of_terms(None, 2))
  assert sorted(keywords.top([0, 1], 1)[0].tolist()) == [0, 1, 2]
  index = ApproximateIndex.build(tied, ["a", "b", "c"])
  assert index.search(np.ones(2, np.float32), 1, keywords=True)[0].tolist() == ["a"]
  assert index.last_route == "keywords"


def test_only_whole_keywords_with_one_weight_go_to_the_keyword_index():
  dense, ids = _gallery(400)
  words = words_of_terms(GROUPS, V)
  index = ApproximateIndex.build(dense, ids, words=words)
  query = np.zeros(V, np.float32)
  query[[0, 1]] = 1.0  # two of the three forms of word 0
  index.search(query, 5, keywords=True)
  assert index.last_route == "seismic"
  query[2] = 0.5  # all three, unequal weights
  index.search(query, 5, keywords=True)
  assert index.last_route == "seismic"
  query[2] = 1.0
  index.search(query, 5, keywords=True)
  assert index.last_route == "keywords"
  index.search(query, 5)  # not asked as keywords: the other routes
  assert index.last_route != "keywords"


def test_added_motions_are_found_and_the_lists_survive_a_save(tmp_path, monkeypatch):
  monkeypatch.setattr(keyword_index, "PAIR_MIN_LENGTH", 1)
  dense, ids = _gallery(600)
  words = words_of_terms(GROUPS, V)
  index = ApproximateIndex.build(dense[:400], ids[:400], words=words)
  index.add(dense[400:], ids[400:])
  query = _keyword_query(words, [int(words[3]), int(words[100])])
  expected = InvertedIndex.build(dense, ids).search(query, 10)[0]
  assert list(index.search(query, 10, keywords=True)[0]) == list(expected)
  loaded = engines.load_index(index.save(tmp_path / "idx"))
  assert list(loaded.search(query, 10, keywords=True)[0]) == list(expected)
  assert loaded.last_route == "keywords"
  np.testing.assert_array_equal(loaded.keywords.words, words)
  assert index.keywords.pairs["pair_words"].size > 1
  for key, saved in index.keywords.pairs.items():
    np.testing.assert_array_equal(loaded.keywords.pairs[key], saved)
  loaded.save(tmp_path / "idx", compact=True)
  compacted = engines.load_index(tmp_path / "idx")
  assert compacted.keywords.num_items == 600
  assert list(compacted.search(query, 10, keywords=True)[0]) == list(expected)


def test_lists_that_do_not_fit_together_are_refused_by_name(monkeypatch):
  monkeypatch.setattr(keyword_index, "PAIR_MIN_LENGTH", 1)
  dense, ids = _gallery(100)
  words = words_of_terms(GROUPS, V)
  arrays = KeywordIndex.build(ApproximateIndex.build(dense, ids).vectors, words).to_arrays()
  broken = dict(arrays, items=arrays["items"][:-1])
  with pytest.raises(ValueError, match="k.npz is damaged: its posting lists do not fit"):
    KeywordIndex.from_arrays(broken, "k.npz")
  longest = int(np.argmax(np.diff(arrays["ptr"])))
  lo, hi = arrays["ptr"][longest], arrays["ptr"][longest + 1]
  shuffled = arrays["neg_weights"].copy()
  shuffled[lo:hi] = shuffled[lo:hi][::-1]  # lightest first
  with pytest.raises(ValueError, match="k.npz is damaged: its weights are not in impact order"):
    KeywordIndex.from_arrays(dict(arrays, neg_weights=shuffled), "k.npz")
  pair_sums = arrays["pair_sums"].copy()
  pair_sums[:2] = pair_sums[1::-1]  # the first pair's best two swapped
  assert pair_sums[0] != pair_sums[1]
  with pytest.raises(ValueError, match="k.npz is damaged: its pair lists are not in impact"):
    KeywordIndex.from_arrays(dict(arrays, pair_sums=pair_sums), "k.npz")
  with pytest.raises(ValueError, match="k.npz is damaged: its pair lists do not fit"):
    KeywordIndex.from_arrays(dict(arrays, pair_words=arrays["pair_words"][:-1]), "k.npz")
  monkeypatch.setattr(keyword_index, "PAIR_DEPTH", 5)
  shallow = KeywordIndex.build(ApproximateIndex.build(dense, ids).vectors, words).to_arrays()
  with pytest.raises(ValueError, match=r"k.npz is damaged: its pair lists are shorter than "
                     r"their depth \(6\)"):  # lists of 5 read as 6 deep
    KeywordIndex.from_arrays(dict(shallow, pair_depth=np.asarray(6)), "k.npz")
  for depth in (np.asarray(0), np.asarray(2.5), np.asarray([100])):
    with pytest.raises(ValueError, match="k.npz is damaged: its pair lists do not fit"):
      KeywordIndex.from_arrays(dict(arrays, pair_depth=depth), "k.npz")
  with pytest.raises(ValueError, match="k.npz is not a keyword index: 'pair_depth' is missing"):
    KeywordIndex.from_arrays({k: v for k, v in arrays.items() if k != "pair_depth"}, "k.npz")
  with pytest.raises(ValueError, match="k.npz is not a keyword index: 'ptr' is missing"):
    KeywordIndex.from_arrays({k: v for k, v in arrays.items() if k != "ptr"}, "k.npz")
  with pytest.raises(ValueError, match="words has shape"):
    ApproximateIndex.build(dense, ids, words=words[:-1])
