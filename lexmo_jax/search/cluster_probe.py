"""Cluster probing: the approximate engine's candidates for sentence-length queries, from an
inverted file (IVF) over the words a gallery uses, through faiss (`IndexIVFScalarQuantizer`,
inner product, 8-bit codes; Jégou et al., TPAMI 2011).

A trained model writes its motions with a few hundred words (199 for the demo), so every
word's posting list holds a large share of the gallery. Seismic then has to keep most of each
list to find a caption query's top-10 (bench/RESULTS.md: recall@10 0.78 at 1M), while the
gallery seen over those few words is a dense matrix whose items fall into tight clusters
(a motion, its mirrored copy, its spans, motions of the same action). k-means groups them;
a query scores the `num_clusters` centroids, and only the items of its `probes` best clusters
are scored in full. Keyword queries (every form of one or a few words, equal weights) are the exception: a centroid averages
a word's weight over a cluster, so the clusters holding the heaviest few items of one word
need not rank first; the engine sends those to Seismic (`approximate`).

A probe is memory-bound: each scanned item is read in full. Items are therefore stored as
8-bit codes (one byte a word in use, the width padded to a multiple of 16 so that faiss's SIMD
kernels apply), a quarter of float32's bytes; the codes only rank candidates, which go back to
be scored exactly (`approximate`: twice k of them by default). Built only where the gallery uses few enough words
(`probe_max_words`); wider vocabularies, such as random Zipf galleries, keep Seismic alone.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Rows of the gallery densified at a time while the index is filled (bounds the extra memory).
_CHUNK = 65_536
# Training points per centroid drawn for k-means; faiss warns below 39 points a centroid.
_TRAIN_PER_CLUSTER = 64
MIN_ITEMS_PER_CLUSTER = 39
# Codes are a word's weight in 8 bits, the width padded to this multiple.
_SIMD_WIDTH = 16


def _width(num_words: int) -> int:
  """The index's dimension: the words in use, padded to a multiple of the SIMD width."""
  return max(1, -(-num_words // _SIMD_WIDTH)) * _SIMD_WIDTH


def _faiss():
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the approximate engine's cluster probing needs faiss-cpu (pip install "
                      "faiss-cpu; it is in requirements.txt)") from e
  return faiss


def default_num_clusters(num_items: int) -> int:
  """About 4·√N clusters, a power of two (4096 at 1M items), at least 39 items each."""
  wanted = 2 ** int(round(np.log2(max(1.0, 4 * np.sqrt(num_items)))))
  return int(max(1, min(wanted, num_items // MIN_ITEMS_PER_CLUSTER)))


class ClusterProbe:
  """An IVF over the columns `words` of a gallery; positions are the gallery's rows.

  Attributes:
    words: (D,) sorted vocabulary ids the gallery uses; the index's dimensions, in order.
  """

  def __init__(self, words: np.ndarray, index):
    self.words, self._index = words, index

  @property
  def num_clusters(self) -> int:
    return int(self._index.nlist)

  @property
  def num_items(self) -> int:
    return int(self._index.ntotal)

  @classmethod
  def build(cls, vectors: sp.csr_array, num_clusters: int = 0, seed: int = 0) -> ClusterProbe:
    """Clusters the rows of (N, V) `vectors` (k-means on a sample of 64 per cluster) and
    files every row under its nearest centroid. `num_clusters` 0: `default_num_clusters`."""
    faiss = _faiss()
    words = np.unique(vectors.indices).astype(np.int64)
    n, dim = vectors.shape[0], _width(words.size)
    nlist = num_clusters or default_num_clusters(n)
    if not 1 <= nlist <= n:
      raise ValueError(f"cluster probing needs between 1 and {n} clusters for {n} items, "
                       f"got {nlist}")
    probe = cls(words, None)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, _TRAIN_PER_CLUSTER * nlist), replace=False))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist,
                                          faiss.ScalarQuantizer.QT_8bit_uniform,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.cp.seed = seed
    index.train(probe._dense(vectors[sample]))
    for start in range(0, n, _CHUNK):
      index.add(probe._dense(vectors[start:start + _CHUNK]))
    probe._index = index
    return probe

  def _column_of(self, terms: np.ndarray) -> np.ndarray:
    """The index's column of each vocabulary id in `terms`, -1 for words it does not use."""
    if not self.words.size:
      return np.full(terms.shape, -1, np.int64)
    col = np.minimum(np.searchsorted(self.words, terms), self.words.size - 1)
    return np.where(self.words[col] == terms, col, -1)

  def _dense(self, rows: sp.csr_array) -> np.ndarray:
    """(n, D) float32: `rows` over the index's words (other words dropped)."""
    out = np.zeros((rows.shape[0], _width(self.words.size)), np.float32)
    coo = rows.tocoo()
    col = self._column_of(coo.col)
    inside = col >= 0
    out[coo.row[inside], col[inside]] = coo.data[inside]
    return out

  def candidates(self, terms: np.ndarray, weights: np.ndarray, k: int, probes: int
                 ) -> np.ndarray:
    """Gallery rows among the best `k` (by their 8-bit codes) of the `probes` clusters
    nearest the query (terms, weights); rows of items added after the build are not among
    them."""
    column = self._column_of(terms)
    query = np.zeros((1, _width(self.words.size)), np.float32)
    inside = column >= 0
    query[0, column[inside]] = weights[inside]
    self._index.nprobe = int(min(probes, self.num_clusters))
    _, found = self._index.search(query, int(k))
    found = found[0]
    return found[found >= 0].astype(np.int64)

  def to_bytes(self) -> np.ndarray:
    """The words in use and the faiss index, as one uint8 array (`from_bytes` reads it)."""
    head = np.array([self.words.size], np.int64).view(np.uint8)
    return np.concatenate([head, self.words.astype(np.int64).view(np.uint8),
                           _faiss().serialize_index(self._index)])

  @classmethod
  def from_bytes(cls, data: np.ndarray, what: str) -> ClusterProbe:
    """Reads `to_bytes`'s array. Raises ValueError naming `what` when it is damaged."""
    try:
      size = int(data[:8].view(np.int64)[0])
      words = data[8:8 + 8 * size].view(np.int64).copy()
      index = _faiss().deserialize_index(np.ascontiguousarray(data[8 + 8 * size:]))
    except (ValueError, IndexError, RuntimeError) as e:
      raise ValueError(f"{what} is corrupt or not a cluster index: {e}") from e
    if words.size != size or index.d != _width(size):
      raise ValueError(f"{what} is corrupt: {size} words for a {index.d}-dimensional index")
    return cls(words, index)
