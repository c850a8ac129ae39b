"""A sparse inverted index over vocabulary ids for searching a gallery of lexical vectors.

Each vocabulary id (word piece) owns a posting list: the gallery items that carry the word
and their weights. A query only visits the posting lists of its own non-zero words, so the
cost follows the overlap of words rather than N × V. Scores are the dot products of the
query with the stored (by default L2-normalised) item vectors; without pruning they are
exactly those of a dense matrix-product search.

Posting lists are kept CSR-style as three numpy arrays: `term_ptr` (V+1,) offsets,
`item_idx` (nnz,) item indices ascending within each list, `weight` (nnz,) float32. The two
index arrays share one integer type (int32 below 2^31 postings) so that scipy can use them
in place, without copying the postings at every search.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import zipfile
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from lexmo_jax.search import store

FORMAT_NAME = "lexmo_jax.inverted_index"
FORMAT_VERSION = 2
# Score entries computed at once during search (≈ 12 bytes each in scipy's product).
_SCORE_BUDGET = 1 << 24


def _as_csr(vectors, what: str) -> sp.csr_array:
  """A 2-D batch of vectors as float32 CSR with explicit zeros dropped."""
  if sp.issparse(vectors):
    csr = sp.csr_array(vectors, dtype=np.float32)
  else:
    dense = np.asarray(vectors)
    if dense.ndim != 2:
      raise ValueError(f"{what} must be a (N, V) matrix, got shape {dense.shape}")
    if not np.issubdtype(dense.dtype, np.number):
      raise ValueError(f"{what} must hold numbers, got dtype {dense.dtype}")
    csr = sp.csr_array(dense.astype(np.float32, copy=False))
  if csr.ndim != 2:
    raise ValueError(f"{what} must be a (N, V) matrix, got shape {csr.shape}")
  csr.sum_duplicates()
  csr.eliminate_zeros()
  _check_weights(csr.data, what)
  return csr


def _check_weights(weights: np.ndarray, what: str) -> None:
  """Refuses NaN, infinite or negative weights in lexical vectors."""
  # Two reductions answer for the usual, valid, case (a NaN fails the first comparison).
  if not weights.size or (weights.min() >= 0 and weights.max() < np.inf):
    return
  if not np.all(np.isfinite(weights)):
    raise ValueError(f"{what} holds NaN or infinite weights")
  if np.any(weights < 0):
    raise ValueError(f"{what} holds negative weights; lexical vectors are non-negative "
                     "(log(1 + ReLU(z)))")


def _row_of_entry(csr: sp.csr_array) -> np.ndarray:
  return np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))


def _normalise_rows(csr: sp.csr_array) -> sp.csr_array:
  rows = _row_of_entry(csr)
  norms = np.sqrt(np.bincount(rows, weights=np.square(csr.data, dtype=np.float64),
                              minlength=csr.shape[0]))
  # All-zero rows have no entries, so dividing only the stored entries never sees a 0 norm.
  data = (csr.data / norms[rows]).astype(np.float32)
  return sp.csr_array((data, csr.indices, csr.indptr), shape=csr.shape)


def _keep_top_terms(csr: sp.csr_array, k: int) -> sp.csr_array:
  """Each row's k largest entries (ties broken by lower term id)."""
  counts = np.diff(csr.indptr)
  if counts.max(initial=0) <= k:
    return csr
  rows = _row_of_entry(csr)
  # Non-negative float32 values order like their bit patterns, so one integer key sorts by
  # row, then by decreasing weight; the stable sort keeps CSR's ascending term ids on ties.
  descending = np.uint32(0xFFFFFFFF) - csr.data.astype(np.float32).view(np.uint32)
  order = np.argsort((rows << 32) | descending.astype(np.int64), kind="stable")
  rank = np.empty(order.size, dtype=np.int64)
  rank[order] = np.arange(order.size) - csr.indptr[rows[order]]
  keep = rank < k
  indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, k))])
  return sp.csr_array((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)


def _prepare_batch(vectors, normalise: bool, top_k_terms: int | None,
                   what: str) -> sp.csr_array:
  csr = _as_csr(vectors, what)
  if normalise:
    csr = _normalise_rows(csr)
  if top_k_terms is not None:
    csr = _keep_top_terms(csr, top_k_terms)
  return csr


def _one_query(vector, vocab_size: int, normalise: bool, what: str
               ) -> tuple[np.ndarray, np.ndarray] | None:
  """(terms, weights) of one query given as a (V,) array or a 1-row scipy.sparse matrix,
  checked and normalised as `_prepare_batch` would, without building sparse matrices (a
  few microseconds instead of a few hundred); None for any other input."""
  if sp.issparse(vector):
    if vector.shape[0] != 1 or vector.format != "csr" or not vector.has_canonical_format:
      return None
    terms, weights = vector.indices, np.asarray(vector.data, np.float32)
  else:
    dense = np.asarray(vector)
    if dense.ndim != 1 or not np.issubdtype(dense.dtype, np.number):
      return None
    terms = np.flatnonzero(dense)
    weights = dense[terms].astype(np.float32)
  if vector.shape[-1] != vocab_size:
    raise ValueError(f"{what} have {vector.shape[-1]} vocabulary columns, the index "
                     f"{vocab_size}")
  _check_weights(weights, what)
  keep = weights != 0
  terms, weights = terms[keep].astype(np.int64), weights[keep]
  if normalise and weights.size:
    weights = (weights / np.sqrt(np.square(weights, dtype=np.float64).sum())).astype(np.float32)
  return terms, weights


def _check_ids(ids: Sequence[str], n: int, what: str) -> np.ndarray:
  ids = list(ids)
  if len(ids) != n:
    raise ValueError(f"{what} has {n} vectors but {len(ids)} ids")
  if not all(isinstance(i, (str, np.str_)) for i in ids):
    raise ValueError(f"{what}: gallery ids must be strings")
  return np.asarray(ids, dtype=str) if ids else np.zeros((0,), dtype="<U1")


def _check_unique(ids: np.ndarray) -> None:
  seen = set()
  for i in ids.tolist():
    if i in seen:
      raise ValueError(f"gallery ids must be unique; {i!r} appears more than once")
    seen.add(i)


@dataclasses.dataclass
class InvertedIndex:
  """Posting lists of a gallery of lexical vectors.

  Attributes:
    term_ptr: (V+1,) int32 or int64; term t's postings are entries term_ptr[t]:term_ptr[t+1].
    item_idx: (nnz,) gallery positions of term_ptr's type, ascending within each list.
    weight: (nnz,) float32 weights of the stored (normalised, pruned) item vectors.
    ids: (N,) str gallery ids.
    normalise: whether rows were L2-normalised; queries are normalised too, so scores are
      cosine similarities.
    top_k_terms: terms kept per item, None when nothing was pruned.
  """
  term_ptr: np.ndarray
  item_idx: np.ndarray
  weight: np.ndarray
  ids: np.ndarray
  normalise: bool = True
  top_k_terms: int | None = None
  _id_to_index: dict[str, int] | None = dataclasses.field(
      default=None, init=False, repr=False, compare=False)

  @property
  def vocab_size(self) -> int:
    return self.term_ptr.shape[0] - 1

  @property
  def num_items(self) -> int:
    return self.ids.shape[0]

  @property
  def num_postings(self) -> int:
    return self.item_idx.shape[0]

  @classmethod
  def build(cls, vectors, ids: Sequence[str], top_k_terms: int | None = None,
            normalise: bool = True) -> InvertedIndex:
    """Indexes a whole gallery at once.

    Args:
      vectors: (N, V) non-negative lexical vectors (numpy, JAX or scipy.sparse).
      ids: N unique item ids.
      top_k_terms: keep only each item's k largest weights (after normalising).
      normalise: L2-normalise each item first.
    """
    return cls._from_batches([(vectors, ids)], None, top_k_terms, normalise,
                             batch_names=False)

  @classmethod
  def build_from_batches(cls, batches: Iterable[tuple[object, Sequence[str]]],
                         vocab_size: int | None = None, top_k_terms: int | None = None,
                         normalise: bool = True) -> InvertedIndex:
    """Indexes a gallery streamed as (vectors (B, V), ids (B,)) batches.

    Only each batch's non-zeros are kept, so a million items never need a dense (N, V)
    matrix: the index holds 8 bytes per kept weight, and building it peaks at about
    three times that.

    Args:
      batches: iterable of (vectors, ids); vectors dense or scipy.sparse, all of width V.
      vocab_size: V, needed only when there may be no batch at all.
      top_k_terms: keep only each item's k largest weights (after normalising).
      normalise: L2-normalise each item first.
    """
    return cls._from_batches(batches, vocab_size, top_k_terms, normalise, batch_names=True)

  @classmethod
  def _from_batches(cls, batches, vocab_size, top_k_terms, normalise, batch_names: bool
                    ) -> InvertedIndex:
    if top_k_terms is not None and top_k_terms < 1:
      raise ValueError(f"top_k_terms must be a positive number of terms, got {top_k_terms}")
    data_parts, term_parts, count_parts, id_parts = [], [], [], []
    for b, (vectors, batch_ids) in enumerate(batches):
      what = f"gallery batch {b}" if batch_names else "gallery"
      csr = _prepare_batch(vectors, normalise, top_k_terms, what)
      if vocab_size is None:
        vocab_size = csr.shape[1]
      elif csr.shape[1] != vocab_size:
        raise ValueError(f"{what} has {csr.shape[1]} vocabulary columns, "
                         f"expected {vocab_size}")
      id_parts.append(_check_ids(batch_ids, csr.shape[0], what))
      data_parts.append(csr.data)
      term_parts.append(csr.indices.astype(np.int32, copy=False))
      count_parts.append(np.diff(csr.indptr))
    if vocab_size is None:
      raise ValueError("the gallery is empty and vocab_size was not given")
    ids = np.concatenate(id_parts) if id_parts else np.zeros((0,), dtype="<U1")
    _check_unique(ids)
    n = ids.shape[0]
    item_ptr = np.concatenate([[0], np.cumsum(np.concatenate(count_parts or [[]]))])
    # Matching index dtypes stop scipy from copying the term ids up to int64.
    ptr_dtype = np.int32 if item_ptr[-1] < np.iinfo(np.int32).max else np.int64
    by_item = sp.csr_array(
        (np.concatenate(data_parts or [np.zeros(0, np.float32)]),
         np.concatenate(term_parts or [np.zeros(0, np.int32)]).astype(ptr_dtype, copy=False),
         item_ptr.astype(ptr_dtype)),
        shape=(n, vocab_size))
    del data_parts, term_parts
    # The CSC layout of the (N, V) gallery is exactly the term-major posting lists, and
    # scipy's conversion keeps item indices ascending within each term.
    by_term = by_item.tocsc()
    del by_item
    return cls(term_ptr=by_term.indptr.astype(ptr_dtype, copy=False),
               item_idx=by_term.indices.astype(ptr_dtype, copy=False),
               weight=by_term.data.astype(np.float32, copy=False),
               ids=ids, normalise=normalise, top_k_terms=top_k_terms)

  def _postings(self) -> sp.csr_array:
    """The index as a (V, N) CSR matrix sharing its arrays."""
    if self.item_idx.dtype != self.term_ptr.dtype:
      self.item_idx = self.item_idx.astype(np.int64)
      self.term_ptr = self.term_ptr.astype(np.int64)
    return sp.csr_array((self.weight, self.item_idx, self.term_ptr),
                        shape=(self.vocab_size, self.num_items))

  def _prepare_queries(self, query_vectors) -> tuple[sp.csr_array, bool]:
    arr = query_vectors if sp.issparse(query_vectors) else np.asarray(query_vectors)
    single = arr.ndim == 1
    if single:
      arr = arr[None, :]
    csr = _prepare_batch(arr, self.normalise, None, "query vectors")
    if csr.shape[1] != self.vocab_size:
      raise ValueError(f"query vectors have {csr.shape[1]} vocabulary columns, the index "
                       f"has {self.vocab_size}")
    return csr, single

  def search(self, query_vectors, k: int = 10, keywords: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
    """The k best gallery items for each query, by decreasing score.

    Items that share no word with a query score 0; they fill the list (lowest gallery
    position first) when fewer than k items score above 0. Equal scores are ordered by
    gallery position. k is capped at the gallery size.

    Args:
      query_vectors: (Q, V) or (V,) non-negative lexical vectors (dense or scipy.sparse).
      k: results per query.
      keywords: the queries are keyword queries (the approximate engine routes them; every
        score here is exact either way).

    Returns:
      ids: (Q, k) str array ((k,) for a single query); scores: (Q, k) float32.
    """
    del keywords
    if k < 1:
      raise ValueError(f"k must be at least 1, got {k}")
    if self.num_items == 0:
      raise ValueError("cannot search an empty index")
    queries, single = self._prepare_queries(query_vectors)
    k = min(k, self.num_items)
    postings = self._postings()
    q = queries.shape[0]
    top_idx = np.empty((q, k), dtype=np.int64)
    top_score = np.empty((q, k), dtype=np.float32)
    for start, stop in self._query_batches(queries):
      scores = (queries[start:stop] @ postings).tocsr()
      for r in range(scores.shape[0]):
        lo, hi = scores.indptr[r], scores.indptr[r + 1]
        top_idx[start + r], top_score[start + r] = self._top_of_row(
            scores.indices[lo:hi], scores.data[lo:hi], k)
    ids = self.ids[top_idx]
    if single:
      return ids[0], top_score[0]
    return ids, top_score

  def _query_batches(self, queries: sp.csr_array):
    """Runs of queries whose posting lists together stay within _SCORE_BUDGET entries.

    A query's score row holds at most as many entries as the postings it visits, so the
    budget bounds the memory of each sparse score block even when common words have
    posting lists as long as the gallery.
    """
    visited = np.diff(self.term_ptr)[queries.indices]
    rows = np.repeat(np.arange(queries.shape[0]), np.diff(queries.indptr))
    cost = np.minimum(np.bincount(rows, weights=visited, minlength=queries.shape[0]),
                      self.num_items)
    start, total = 0, 0.0
    for r, c in enumerate(cost):
      if r > start and total + c > _SCORE_BUDGET:
        yield start, r
        start, total = r, 0.0
      total += c
    if start < queries.shape[0]:
      yield start, queries.shape[0]

  def _top_of_row(self, items: np.ndarray, scores: np.ndarray, k: int):
    positive = scores > 0
    items, scores = items[positive], scores[positive]
    if items.size > k:
      # Everything tied with the k-th score must stay a candidate for the index tie-break.
      kth = np.partition(scores, items.size - k)[items.size - k]
      keep = scores >= kth
      items, scores = items[keep], scores[keep]
    order = np.lexsort((items, -scores))[:k]
    items, scores = items[order], scores[order]
    if items.size < k:
      taken = np.zeros(self.num_items, dtype=bool)
      taken[items] = True
      filler = np.flatnonzero(~taken)[:k - items.size]
      items = np.concatenate([items, filler])
      scores = np.concatenate([scores, np.zeros(filler.size, np.float32)])
    return items, scores

  def index_of(self, item: int | str) -> int:
    """The gallery position of an item given by position or id."""
    if isinstance(item, (str, np.str_)):
      if self._id_to_index is None:
        self._id_to_index = {i: n for n, i in enumerate(self.ids.tolist())}
      if item not in self._id_to_index:
        raise KeyError(f"no gallery item has id {item!r}")
      return self._id_to_index[item]
    index = int(item)
    if not 0 <= index < self.num_items:
      raise IndexError(f"item index {index} is outside the gallery of {self.num_items}")
    return index

  def item_vector(self, item: int | str) -> dict[int, float]:
    """The stored (normalised, pruned) weights of one item as {term_id: weight}.

    Scans all postings (O(nnz)): meant for inspecting single items, not for bulk use.
    """
    index = self.index_of(item)
    hits = np.flatnonzero(self.item_idx == index)
    terms = np.searchsorted(self.term_ptr, hits, side="right") - 1
    return {int(t): float(w) for t, w in zip(terms, self.weight[hits])}

  def term_contributions(self, query, item: int | str, top: int = 5
                         ) -> list[tuple[int, float]]:
    """Why an item matched: the words adding most to its score for this query.

    Args:
      query: (V,) lexical vector of the query.
      item: gallery position or id.
      top: how many words to return.

    Returns:
      Up to `top` (term_id, contribution) pairs by decreasing contribution; contributions
      are query weight × item weight and sum (over all shared words) to the item's score.
    """
    arr = query if sp.issparse(query) else np.asarray(query)
    if arr.ndim != 1 and not (sp.issparse(arr) and arr.shape[0] == 1):
      raise ValueError(f"query must be a single (V,) vector, got shape {arr.shape}")
    queries, _ = self._prepare_queries(arr)
    index = self.index_of(item)
    contributions = []
    for term, q_weight in zip(queries.indices, queries.data):
      lo, hi = self.term_ptr[term], self.term_ptr[term + 1]
      pos = lo + np.searchsorted(self.item_idx[lo:hi], index)
      if pos < hi and self.item_idx[pos] == index:
        contributions.append((int(term), float(q_weight) * float(self.weight[pos])))
    contributions.sort(key=lambda tc: (-tc[1], tc[0]))
    return contributions[:top]

  def memory_bytes(self) -> int:
    """Bytes held by the posting arrays and the ids."""
    return int(self.term_ptr.nbytes + self.item_idx.nbytes + self.weight.nbytes
               + self.ids.nbytes)

  def save(self, path, source: dict | None = None) -> pathlib.Path:
    """Writes the index to a folder (`lexmo_jax.search.store`: the postings' .npz and the
    manifest index.json, replaced atomically, with checksums); `source` (what the vectors
    came from) is kept in the manifest."""
    def postings(stem: pathlib.Path) -> pathlib.Path:
      path = stem.with_name(stem.name + ".npz")
      np.savez(path, term_ptr=self.term_ptr, item_idx=self.item_idx, weight=self.weight,
               ids=self.ids)
      return path
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "engine": "exact",
            "vocab_size": self.vocab_size, "num_items": self.num_items,
            "num_postings": self.num_postings, "normalise": self.normalise,
            "top_k_terms": self.top_k_terms, "source": source}
    return store.write_index(path, meta, {"postings": postings})

  @classmethod
  def load(cls, path) -> InvertedIndex:
    """Reads an index written by `save`, checking its format, checksums and consistency.

    Raises:
      FileNotFoundError, ValueError (store.IndexFormatError for another format or version):
        naming the file.
    """
    meta, paths = store.read_index(path, FORMAT_NAME, FORMAT_VERSION)
    arrays_path = paths["postings"]
    try:
      with np.load(arrays_path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in ("term_ptr", "item_idx", "weight", "ids")}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
      raise ValueError(f"{arrays_path} is corrupt or not an index archive: {e}") from e
    except KeyError as e:
      raise ValueError(f"{arrays_path} lacks the array {e}") from e
    index = cls(term_ptr=arrays["term_ptr"], item_idx=arrays["item_idx"],
                weight=arrays["weight"], ids=arrays["ids"],
                normalise=bool(meta.get("normalise", True)),
                top_k_terms=meta.get("top_k_terms"))
    problem = index._consistency_problem(meta)
    if problem:
      raise ValueError(f"{arrays_path} is inconsistent: {problem}")
    return index

  def _consistency_problem(self, meta: dict) -> str | None:
    ptr, items = self.term_ptr, self.item_idx
    if ptr.ndim != 1 or items.ndim != 1 or self.weight.ndim != 1 or self.ids.ndim != 1:
      return "arrays must be 1-D"
    if ptr.shape[0] != meta.get("vocab_size", -1) + 1:
      return f"term_ptr has {ptr.shape[0]} entries for a vocabulary of {meta.get('vocab_size')}"
    if self.ids.shape[0] != meta.get("num_items"):
      return f"{self.ids.shape[0]} ids for {meta.get('num_items')} items"
    if items.shape != self.weight.shape or items.shape[0] != meta.get("num_postings"):
      return "postings and weights differ in length from the recorded count"
    if ptr[0] != 0 or ptr[-1] != items.shape[0] or np.any(np.diff(ptr) < 0):
      return "term_ptr is not a valid offset array"
    if items.size and (items.min() < 0 or items.max() >= self.ids.shape[0]):
      return "item indices fall outside the gallery"
    return None
