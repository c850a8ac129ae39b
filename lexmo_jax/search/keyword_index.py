"""Exact keyword search over a large gallery: the threshold algorithm (Fagin, Lotem & Naor,
"Optimal aggregation algorithms for middleware", PODS 2001) over one posting list per word.

A keyword query (`gallery.keyword_query`) puts one equal weight on every form of each keyword
("walk" is walk, walks, walked, walking). An item's score is then that weight times the sum,
over the keywords, of the item's weights on the keyword's forms: its weight on the *word*.
This index keeps, for every word (`words`: the stem groups of the vocabulary's whole words;
every other vocabulary entry is a word of its own), the items' summed weights twice:

  impact order  each word's items, heaviest first (what the algorithm reads);
  random access a dense (N,) row for the words most items hold (at least `DENSE_SHARE` of
                them, longest lists first, in at most twice the lists' own memory:
                `DENSE_BYTES_PER_POSTING`), the word's items in id order (binary search)
                otherwise.

A query of one word reads the first k items of its list. A query of two of the words most items
hold (`PAIR_WORDS` of them at most, each held by `PAIR_MIN_LENGTH` items or more) reads the
first k of the pair's list: the `PAIR_DEPTH` best items by the pair's summed weight, found by
the algorithm below when the index is built (a term-pair index, as in Yan, Shi & Suel,
"Efficient term proximity search with term-pair indexes", CIKM 2010; its entries are the
algorithm's own answers, so they are as exact). With more words, or a larger k, the algorithm reads
the head of every list, scores each item seen exactly by random access into the other words,
and takes the k-th best score τ. Any item not yet seen scores at most the sum of the words'
next weights; the depths are then chosen, in one step, so that this bound falls below τ (for
two words, the pair of depths with the fewest postings on a geometric grid; for more, the
list with the heaviest next weight is deepened until the bound falls), and the items read to
those depths are scored. The top-k is exact: no unseen item can reach it.

Written here because neither Seismic (`pyseismic-lsr`) nor faiss answers a query exactly:
Seismic reads pruned, 16-bit lists and skips blocks by summaries, and per form, not per word,
so the many near-equal weights of a gallery of similar motions cost it exact answers or time.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Random access is a dense (N,) row (4·N bytes, against 8 bytes a posting searched in item
# order) for words that at least this share of the items hold, longest first, while the rows
# take at most `DENSE_BYTES_PER_POSTING` bytes for each posting of the index. On the demo's
# vectors augmented to 1M motions (153 words in use, 29.5M postings, 139 lists of 1/64 of the
# items or more), two-keyword searches took a median 0.36 / 0.23 / 0.20 ms (p90 1.07 / 0.67
# / 0.29) with 8 / 16 / 24 bytes a posting (59 / 118 / 139 rows; one core, one run each).
DENSE_SHARE = 1 / 64
DENSE_BYTES_PER_POSTING = 16
# Items read from each list before the first k-th best score is known. On the demo's vectors
# augmented to 1M motions, two-keyword queries took a median 0.38 / 0.19 / 0.17 / 0.15 /
# 0.15 ms with 16 / 32 / 64 / 256 / 512 (a closer first k-th best saves more than it costs).
FIRST_DEPTH = 256
# Sums within this share of the k-th best are returned too, never cut arbitrarily: the sums
# are float32, added in each list's own order, so two items that tie (or that the exact
# index's own float32 additions rank the other way) can differ in their last bits.
SLACK = 1e-5
# Pair lists, for two-keyword searches among the words most items hold, where the algorithm's
# random reads into each other's rows cost the most (a median 0.45 ms at 1M of the demo's
# vectors, against 0.08 ms for one keyword): the best `PAIR_DEPTH` items of every pair of the
# `PAIR_WORDS` longest lists of `PAIR_MIN_LENGTH` items or more. On that gallery: 150 words,
# 11,175 pairs, 8.6 MiB, 3.6 s of the build; 69% of its two-keyword test queries are answered
# from them, in a few microseconds. At most 32,640 pairs (about 26 MiB).
PAIR_DEPTH = 100
PAIR_WORDS = 256
PAIR_MIN_LENGTH = 1024
# Depths tried when choosing how far to read (about 19% apart).
_GRID = np.unique(np.round(2.0 ** np.arange(0, 40, 0.25))).astype(np.int64)


def words_of_terms(groups: dict[str, list[int]] | None, vocab_size: int) -> np.ndarray:
  """(V,) int32 word number of each vocabulary entry: entries of one group share one, every
  other entry has its own."""
  words = np.arange(vocab_size, dtype=np.int64)
  for members in (groups or {}).values():
    if len(members) > 1:
      words[np.asarray(members)] = words[members[0]]
  return np.unique(words, return_inverse=True)[1].astype(np.int32)


class KeywordIndex:
  """Per-word posting lists of summed weights, in impact order, with random access.

  Attributes:
    words: (V,) int32, the word of each vocabulary entry.
    ptr: (W + 1,) int64, word w's postings are [ptr[w], ptr[w + 1]).
    items: (P,) int32 item positions, each word's heaviest first.
    neg_weights: (P,) float32, minus the summed weights in the same order (ascending, so that
      a binary search finds a depth).
    num_items: N.
    pairs: the pair lists: pair_depth () int64, the depth they were built to; pair_words
      (M,) int32 ascending; pair_ptr (M(M-1)/2 + 1,) int64, pair (i, j) of pair_words, i < j,
      in row-major order; pair_items int32 and pair_sums float32, each pair's best
      pair_depth items (and the ties of the last), heaviest first.
  """

  def __init__(self, words: np.ndarray, ptr: np.ndarray, items: np.ndarray,
               neg_weights: np.ndarray, num_items: int, pairs: dict[str, np.ndarray]):
    """`pairs`: the pair lists (`to_arrays`' pair_* arrays; `build` computes them)."""
    self.words, self.ptr, self.items = words, ptr, items
    self.neg_weights, self.num_items = neg_weights, num_items
    self._sizes = np.bincount(words, minlength=ptr.size - 1)
    lengths = np.diff(ptr)
    longest = np.argsort(-lengths, kind="stable")
    fits = int(DENSE_BYTES_PER_POSTING * items.size // max(1, 4 * num_items))
    dense = np.sort(longest[:fits][lengths[longest[:fits]] >= max(1, DENSE_SHARE * num_items)])
    self._dense_row = np.full(lengths.size, -1, np.int64)
    self._dense_row[dense] = np.arange(dense.size)
    self._dense = np.zeros((dense.size, num_items), np.float32)
    for row, w in enumerate(dense):
      self._dense[row, items[ptr[w]:ptr[w + 1]]] = -neg_weights[ptr[w]:ptr[w + 1]]
    # The other words' postings in item order, for a binary search.
    owner = np.repeat(np.arange(lengths.size), lengths)  # the word of each posting
    sparse = self._dense_row[owner] < 0
    owner = owner[sparse]
    order = np.lexsort((items[sparse], owner))
    self._sorted_items = items[sparse][order]
    self._sorted_weights = -neg_weights[sparse][order]
    sparse_lengths = np.where(self._dense_row < 0, lengths, 0)
    self._sorted_ptr = np.concatenate([[0], np.cumsum(sparse_lengths)])
    self._set_pairs(pairs)

  def _set_pairs(self, pairs: dict[str, np.ndarray]) -> None:
    self.pairs = pairs
    self._pair_depth = int(pairs["pair_depth"])
    self._pair_slot = np.full(self.ptr.size - 1, -1, np.int64)
    self._pair_slot[pairs["pair_words"]] = np.arange(pairs["pair_words"].size)

  def _pair_lists(self) -> dict[str, np.ndarray]:
    """`pairs` (the class docstring) to `PAIR_DEPTH`, by the threshold algorithm."""
    lengths = np.diff(self.ptr)
    longest = np.argsort(-lengths, kind="stable")[:PAIR_WORDS]
    chosen = np.sort(longest[lengths[longest] >= PAIR_MIN_LENGTH]).astype(np.int32)
    found, sums = [], []
    for i, a in enumerate(chosen.tolist()):
      for b in chosen[i + 1:].tolist():
        items, totals = self._threshold_top([a, b], PAIR_DEPTH)
        found.append(items.astype(np.int32))
        sums.append(totals.astype(np.float32))
    sizes = [f.size for f in found]
    return {"pair_depth": np.asarray(PAIR_DEPTH, np.int64), "pair_words": chosen,
            "pair_ptr": np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
            "pair_items": np.concatenate(found) if found else np.zeros(0, np.int32),
            "pair_sums": np.concatenate(sums) if sums else np.zeros(0, np.float32)}

  def _pair_top(self, words: list[int], k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The pair list's answer for two words, or None where there is none (words without a
    pair list, or k past its depth)."""
    i, j = sorted(int(self._pair_slot[w]) for w in words)
    if i < 0 or k > self._pair_depth:
      return None
    m = self.pairs["pair_words"].size
    pair = i * m - i * (i + 1) // 2 + (j - i - 1)
    lo, end = self.pairs["pair_ptr"][pair], self.pairs["pair_ptr"][pair + 1]
    sums = self.pairs["pair_sums"][lo:end]
    # The k-th's ties are all in the list: they tie with its last entry too.
    hi = _head_and_ties(np.negative(sums), k)
    return self.pairs["pair_items"][lo:lo + hi].astype(np.int64), sums[:hi]

  @classmethod
  def build(cls, vectors: sp.csr_array, words: np.ndarray) -> KeywordIndex:
    """From (N, V) non-negative item vectors (as the engine stores them) and (V,) words."""
    num_words = int(words.max()) + 1 if words.size else 0
    to_word = sp.csr_array((np.ones(words.size, np.float32), (np.arange(words.size), words)),
                           shape=(words.size, num_words))
    summed = sp.csc_array(vectors @ to_word)
    summed.sum_duplicates()
    lengths = np.diff(summed.indptr)
    owner = np.repeat(np.arange(num_words), lengths)
    order = np.lexsort((summed.indices, -summed.data, owner))
    index = cls(words.astype(np.int32), summed.indptr.astype(np.int64),
                summed.indices[order].astype(np.int32),
                (-summed.data[order]).astype(np.float32), vectors.shape[0], _NO_PAIRS)
    index._set_pairs(index._pair_lists())  # pylint: disable=protected-access
    return index

  def memory_bytes(self) -> int:
    return int(sum(a.nbytes for a in (self.words, self.ptr, self.items, self.neg_weights,
                                      self._dense, self._sorted_items, self._sorted_weights,
                                      self._sorted_ptr, *self.pairs.values())))

  def words_of_query(self, terms: np.ndarray, weights: np.ndarray) -> list[int] | None:
    """The words of a keyword query (every form of each of its words, one weight), or None
    for any other query."""
    given = weights.tolist()  # a few entries: plain Python is quicker than numpy here
    if not given or max(given) - min(given) > 1e-6 * max(given):
      return None
    found = sorted(set(self.words[terms].tolist()))
    # Each of the (distinct) terms belongs to one word: all forms are there iff they add up.
    if int(self._sizes[found].sum()) != len(given):
      return None  # some forms of a word are missing: not a keyword query
    return found

  def _weights_at(self, word: int, items: np.ndarray) -> np.ndarray:
    """(len(items),) float32 summed weights of `items` on `word` (0 where it has none)."""
    row = self._dense_row[word]
    if row >= 0:
      return np.take(self._dense[row], items)  # about twice as quick as [row, items]
    lo, hi = self._sorted_ptr[word], self._sorted_ptr[word + 1]
    if hi == lo:
      return np.zeros(items.size, np.float32)
    mine = self._sorted_items[lo:hi]
    at = np.minimum(np.searchsorted(mine, items), hi - lo - 1)
    return np.where(mine[at] == items, self._sorted_weights[lo:hi][at], np.float32(0))

  def _next_weight(self, word: int, depth: int) -> float:
    """The weight at `depth` in `word`'s list: the most any item below it holds."""
    at = self.ptr[word] + depth
    return float(-self.neg_weights[at]) if at < self.ptr[word + 1] else 0.0

  def _score(self, words: list[int], depths: list[int], k: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """The k best of the items read to `depths`, by their exact sums over `words` (more
    where sums within `SLACK` of the k-th tie with it), best first."""
    found, sums = [], []
    for j, (word, depth) in enumerate(zip(words, depths)):
      lo = self.ptr[word]
      items = self.items[lo:lo + depth]
      total = np.negative(self.neg_weights[lo:lo + depth])
      for other in words[:j] + words[j + 1:]:
        total += self._weights_at(other, items)
      found.append(items)
      sums.append(total)
    found, sums = np.concatenate(found), np.concatenate(sums)
    keep = min(k * len(words), found.size)  # an item read from m lists appears m times
    if found.size > keep:  # the keep heaviest entries and every entry tying with them
      cut = np.partition(sums, found.size - keep)[found.size - keep]
      best = sums >= cut * (1 - SLACK)
      found, sums = found[best], sums[best]
    found, first = np.unique(found, return_index=True)
    sums = sums[first]
    order = np.lexsort((found, -sums))
    if order.size > k:
      order = order[sums[order] >= sums[order[k - 1]] * (1 - SLACK)]
    return found[order].astype(np.int64), sums[order]

  def _depths_below(self, words: list[int], lengths: list[int], tau: float) -> list[int]:
    """Depths at which the sum of the next weights falls below `tau`."""
    if tau <= 0:
      return lengths
    if len(words) == 2:
      (a, b), (la, lb) = words, lengths
      grid = np.append(_GRID[_GRID < la], la)
      head = np.where(grid < la, -self.neg_weights[self.ptr[a] + np.minimum(grid, la - 1)], 0)
      # Depth in b past which every weight is below tau - head (the sum then below tau).
      need = np.searchsorted(self.neg_weights[self.ptr[b]:self.ptr[b + 1]], -(tau - head),
                             side="right")
      cost = np.where(head < tau, grid + need, np.iinfo(np.int64).max)
      best = int(np.argmin(cost))
      return [int(grid[best]), int(need[best])]
    depths = [min(FIRST_DEPTH, n) for n in lengths]
    nexts = [self._next_weight(w, d) for w, d in zip(words, depths)]
    while sum(nexts) >= tau:
      j = int(np.argmax(nexts))
      depths[j] = min(lengths[j], int(_GRID[np.searchsorted(_GRID, depths[j], side="right")]))
      nexts[j] = self._next_weight(words[j], depths[j])
    return depths

  def top(self, words: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k items with the largest summed weight over `words`, best first (ties by
    position), and those sums; fewer when fewer items hold any of the words, more when
    sums within `SLACK` of the k-th tie with it.

    Exact: every item it leaves out sums to less than the k-th returned (by `SLACK`).
    """
    words = [w for w in words if self.ptr[w + 1] > self.ptr[w]]
    if len(words) == 2:
      answer = self._pair_top(words, k)
      if answer is not None:
        return answer
    return self._threshold_top(words, k)

  def _threshold_top(self, words: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top` by the threshold algorithm, over `words` that each hold an item."""
    if not words:
      return np.zeros(0, np.int64), np.zeros(0, np.float32)
    if len(words) == 1:
      lo, end = self.ptr[words[0]], self.ptr[words[0] + 1]
      hi = lo + _head_and_ties(self.neg_weights[lo:end], k)
      return self.items[lo:hi].astype(np.int64), -self.neg_weights[lo:hi]
    lengths = [int(self.ptr[w + 1] - self.ptr[w]) for w in words]
    depths = [min(FIRST_DEPTH, n) for n in lengths]
    found, sums = self._score(words, depths, k)
    tau = float(sums[k - 1]) * (1 - SLACK) if sums.size >= k else 0.0
    if sum(self._next_weight(w, d) for w, d in zip(words, depths)) < tau:
      return found, sums
    return self._score(words, self._depths_below(words, lengths, tau), k)

  def to_arrays(self) -> dict[str, np.ndarray]:
    """What `from_arrays` needs (the random-access parts are rebuilt from it)."""
    return {"words": self.words, "ptr": self.ptr, "items": self.items,
            "neg_weights": self.neg_weights, "num_items": np.asarray(self.num_items),
            **self.pairs}

  @classmethod
  def from_arrays(cls, arrays, where: str) -> KeywordIndex:
    """Raises ValueError naming `where` when the arrays do not fit together."""
    try:
      words, ptr, items = arrays["words"], arrays["ptr"], arrays["items"]
      neg_weights, num_items = arrays["neg_weights"], int(arrays["num_items"])
      pairs = {key: arrays[key] for key in _NO_PAIRS}
    except KeyError as e:
      raise ValueError(f"{where} is not a keyword index: {e} is missing") from e
    if (ptr.ndim != 1 or ptr.size < 1 or ptr[0] != 0 or ptr[-1] != items.size
        or items.size != neg_weights.size or np.any(np.diff(ptr) < 0)
        or (words.size and (int(words.min()) < 0 or int(words.max()) >= ptr.size - 1))
        or (items.size and (int(items.min()) < 0 or int(items.max()) >= num_items))):
      raise ValueError(f"{where} is damaged: its posting lists do not fit together")
    # Within each list the weights must be finite, positive and heaviest first.
    if (not np.all(np.isfinite(neg_weights)) or np.any(neg_weights > 0)
        or not _ascending_in_each(neg_weights, ptr)):
      raise ValueError(f"{where} is damaged: its weights are not in impact order")
    _check_pairs(pairs, np.diff(ptr), num_items, where)
    return cls(words.astype(np.int32), ptr.astype(np.int64), items.astype(np.int32),
               neg_weights.astype(np.float32), num_items,
               {"pair_depth": np.asarray(int(pairs["pair_depth"]), np.int64),
                "pair_words": pairs["pair_words"].astype(np.int32),
                "pair_ptr": pairs["pair_ptr"].astype(np.int64),
                "pair_items": pairs["pair_items"].astype(np.int32),
                "pair_sums": pairs["pair_sums"].astype(np.float32)})


def _check_pairs(pairs: dict[str, np.ndarray], list_lengths: np.ndarray, num_items: int,
                 where: str) -> None:
  """Raises ValueError naming `where` unless the pair lists fit the index whose word lists
  are `list_lengths` long."""
  num_words = list_lengths.size
  depth, chosen, ptr = np.asarray(pairs["pair_depth"]), pairs["pair_words"], pairs["pair_ptr"]
  items, sums = pairs["pair_items"], pairs["pair_sums"]
  m = chosen.size
  if (depth.shape != () or depth.dtype.kind not in "iu" or int(depth) < 1
      or chosen.ndim != 1 or np.any(np.diff(chosen) <= 0)
      or (m and (int(chosen[0]) < 0 or int(chosen[-1]) >= num_words))
      or ptr.shape != (m * (m - 1) // 2 + 1,) or ptr[0] != 0 or ptr[-1] != items.size
      or items.size != sums.size or np.any(np.diff(ptr) < 0)
      or (items.size and (int(items.min()) < 0 or int(items.max()) >= num_items))):
    raise ValueError(f"{where} is damaged: its pair lists do not fit the index")
  if (not np.all(np.isfinite(sums)) or np.any(sums < 0)
      or not _ascending_in_each(np.negative(sums), ptr)):
    raise ValueError(f"{where} is damaged: its pair lists are not in impact order")
  # Each pair's list holds its depth's items, or every item holding either word where fewer
  # do: a shorter one would answer k up to the depth wrongly.
  first, second = np.triu_indices(m, 1)  # the pairs in row-major order, as pair_ptr
  holding = np.maximum(list_lengths[chosen[first]], list_lengths[chosen[second]])
  if np.any(np.diff(ptr) < np.minimum(int(depth), holding)):
    raise ValueError(f"{where} is damaged: its pair lists are shorter than their depth "
                     f"({int(depth)})")


def _head_and_ties(neg_values: np.ndarray, k: int) -> int:
  """How many entries of a list of negated values (ascending: heaviest first) are its first k
  and the entries within `SLACK` of the k-th (its ties)."""
  if k >= neg_values.size:
    return neg_values.size
  return int(np.searchsorted(neg_values, neg_values[k - 1] * (1 - SLACK), side="right"))


def _ascending_in_each(values: np.ndarray, ptr: np.ndarray) -> bool:
  """Whether `values` ascend within each list [ptr[i], ptr[i + 1])."""
  steps = np.diff(values)
  inner = ptr[1:-1]
  steps[inner[(inner > 0) & (inner < values.size)] - 1] = 0  # across list boundaries
  return not np.any(steps < 0)


# No pair lists: what `build` starts from before it computes them.
_NO_PAIRS = {"pair_depth": np.asarray(1, np.int64), "pair_words": np.zeros(0, np.int32),
             "pair_ptr": np.zeros(1, np.int64), "pair_items": np.zeros(0, np.int32),
             "pair_sums": np.zeros(0, np.float32)}
