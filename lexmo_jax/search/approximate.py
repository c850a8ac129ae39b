"""The approximate engine for large galleries: Seismic (Bruch et al., SIGIR 2024, through the
`pyseismic-lsr` package) for keyword-length queries, cluster probing (an inverted file over
the words in use, through faiss; `cluster_probe`) for sentence-length ones, and an exact
threshold algorithm over per-word lists for keyword searches (`keyword_index`), behind the
exact index's interface.

Seismic keeps, for each word, only its heaviest postings (`n_postings` on average per word),
groups each word's postings into blocks by k-means over the items (`centroid_fraction`),
summarises every block by the words holding `summary_energy` of its mass, and at query time
reads the query's `query_cut` heaviest words, skipping every block whose summary scores below
`heap_factor` times the current k-th best score (Seismic's `posting_list.rs`: a lower factor
reads more blocks). That suits queries of a few words.
A caption's vector spreads over tens of the few hundred words a trained model uses, whose
posting lists each hold a large share of the gallery; Seismic loses its top-10 there
(recall@10 0.78 at 1M, bench/RESULTS.md), so queries of more than `seismic_max_terms` words
(vocabulary entries with a weight), keyword searches excepted, go to the cluster probe (`clusters` k-means clusters, the query's `probes` nearest scanned)
when the gallery uses at most `probe_max_words` words; otherwise every query goes to Seismic.
A keyword search (every form of each keyword, one weight: `gallery.keyword_query`) goes to the
keyword index, which finds its exact top-k in about 0.03 ms at 1M motions.

Seismic and the probe return `candidates` × k items (2 × k by default); Seismic stores
weights in 16 bits and the probe 8-bit codes, so every candidate is scored again here,
exactly, against the float32 item vectors: scores, order and the words that made each match
are the exact index's for every item found. The spare candidates catch the near-ties those
rounded weights misorder. The keyword index returns the exact top-k (with any item within
1e-5 of the k-th) and their sums, which are the scores: like the re-scored ones, equal to the
exact index's to float32 rounding (each adds in its own order), so two items within a
rounding step of each other may come in either order.

Items added after the build (`add`) go to a delta segment searched exactly and merged with the
candidates: nothing is rebuilt until `compact()` (or a save with `compact=True`) folds them
into new indexes. On disk (`lexmo_jax.search.store`): the float32 item vectors and ids (.npz),
the Seismic index file, the cluster index (.npy), the keyword index's lists (.npz), and a
manifest with their checksums.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import sys
import zipfile

import numpy as np
import scipy.sparse as sp

from lexmo_jax.search import cluster_probe, store
from lexmo_jax.search.keyword_index import KeywordIndex, words_of_terms
from lexmo_jax.search.index import (_as_csr, _check_ids, _check_unique, _normalise_rows,
                                    _one_query, _prepare_batch)

FORMAT_NAME = "lexmo_jax.seismic_index"
FORMAT_VERSION = 5  # 2: the cluster index beside Seismic's; 3: the keyword index; 4: its pair
# lists; 5: their depth, and the values the gallery chose for the build knobs left at 0
BUILD_SETTINGS = ("n_postings", "centroid_fraction", "summary_energy", "doc_cut", "clusters",
                  "probe_max_words")
# The manifest's record of the values the indexes were built with (`build_record`): Seismic's
# (`seismic_build`) and the cluster probe's number of clusters (0: no probe).
BUILT_WITH = ("n_postings", "centroid_fraction", "summary_energy", "doc_cut", "clusters")


@dataclasses.dataclass(frozen=True)
class ApproximateSettings:
  """The approximate engine's knobs. Seismic's (its paper's names): build `n_postings`,
  `centroid_fraction`, `summary_energy`, `doc_cut`; search `query_cut`, `heap_factor`.
  `n_postings` and `summary_energy` 0 choose by the gallery (`seismic_postings`,
  `seismic_energy`). Cluster probing: build
  `clusters` (0: about 4·√N, `cluster_probe.default_num_clusters`) and `probe_max_words` (the
  most words in use for which it is built); search `probes` (clusters scanned per query) and
  `seismic_max_terms` (queries of at most this many words go to Seismic). Both: `candidates`
  × k items are re-scored exactly."""
  # Seismic's build knobs, measured on the demo's vectors (bench/RESULTS.md): with a few
  # hundred words in use, each word's list holds a large share of the gallery, and fewer
  # postings kept per word lose the top-10 (`POSTINGS_FEW_WORDS`); summaries that keep less
  # of a block's mass skip the blocks a one-word keyword query needs (same top-10 as exact
  # search for 89% of the test gallery's keyword queries at 0.4, 96% at 0.7, 100% at 0.9).
  n_postings: int = 0  # 0: `seismic_postings` chooses by the words the gallery uses
  centroid_fraction: float = 0.1
  summary_energy: float = 0.0  # 0: `seismic_energy` chooses by the words the gallery uses
  doc_cut: int = 15
  query_cut: int = 10
  heap_factor: float = 1.0
  # candidates × k items come back from Seismic or the probe, re-scored exactly here.
  # Measured on the demo's vectors augmented to 1M motions, when Seismic answered keyword
  # searches: with k, its 16-bit weights misordered near-ties and 93% of them got exact
  # search's top-10 (recall@10 0.993); with 2 × k, 100% (0.49 → 0.69 ms a query).
  candidates: int = 2
  # Measured on the demo's vectors augmented to 1M motions (bench/RESULTS.md): of 4096
  # clusters, 16 / 32 / 48 probed find 0.92 / 0.98 / 0.98 of a caption query's exact top-10
  # (0.21 / 0.29 / 0.35 ms a query, one quiet core of the AMD machine).
  clusters: int = 0
  probes: int = 32
  probe_max_words: int = 1024
  seismic_max_terms: int = 8

  def __post_init__(self):
    for name in ("doc_cut", "query_cut", "candidates", "probes", "probe_max_words"):
      if getattr(self, name) < 1:
        raise ValueError(f"the approximate engine's {name} must be at least 1, got "
                         f"{getattr(self, name)}")
    for name in ("n_postings", "clusters", "seismic_max_terms"):
      if getattr(self, name) < 0:
        raise ValueError(f"the approximate engine's {name} must not be negative, got "
                         f"{getattr(self, name)}")
    for name in ("centroid_fraction", "heap_factor"):
      if not 0 < getattr(self, name) <= 1:
        raise ValueError(f"the approximate engine's {name} must lie in (0, 1], got "
                         f"{getattr(self, name)}")
    if not 0 <= self.summary_energy <= 1:
      raise ValueError("the approximate engine's summary_energy must lie in [0, 1] (0: chosen "
                       f"by the gallery), got {self.summary_energy}")


def _seismic():
  try:
    import seismic  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the approximate engine needs pyseismic-lsr (pip install "
                      "pyseismic-lsr; it is in requirements.txt)") from e
  return seismic


@contextlib.contextmanager
def _quiet():
  """Silences what the Rust library prints on the process's stdout while it builds."""
  sys.stdout.flush()
  saved = os.dup(1)
  try:
    with open(os.devnull, "wb") as null:
      os.dup2(null.fileno(), 1)
      yield
  finally:
    sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)


# Seismic's postings per word when `n_postings` is 0. A gallery over few words (the cluster
# probe's case) has long lists, each holding a large share of the items: at 1M of the demo's
# vectors, 8000 keep the exact top-10 in 100% of keyword searches and 4000 in 98% (2 × k
# candidates; 2500 in 89% with k); when Seismic also served captions, 500 / 2000 / 8000 kept
# recall@10 0.40 / 0.87 / 0.999 of theirs (200k motions). Over a wide vocabulary (random Zipf
# vectors over 30,522 words, 1M items, Seismic alone, summary energy 0.6, 200 queries, one
# core beside another build): 1500 / 2000 / 2500 postings keep recall@10 0.980 / 0.987 /
# 0.988 at query cut 4 in 0.70 / 0.82 / 0.92 ms of Seismic's time, and 0.989 / 0.994 / 0.996
# at query cut 5 in 0.76 / 1.08 / 1.14 ms; builds of 172 / 230 / 291 s; earlier, 1000 kept
# only 0.94–0.97 and 8000 took twice 2500's time.
POSTINGS_FEW_WORDS, POSTINGS_MANY_WORDS = 8000, 1500
# Seismic's summary energy when `summary_energy` is 0. Over few words, 0.9: keyword-like
# queries of a few forms need the blocks that smaller summaries skip (above). Over a wide
# vocabulary (the Zipf vectors, 1M items, 2500 postings, 200 queries, one core, beside another
# build), 0.4 / 0.6 read a query at query cut 4 in 0.92 / 0.92 ms of Seismic's time against
# 1.04 ms for 0.9 on a quiet core, every one at recall@10 0.988 (query cut 3: 0.973, 5: 0.996
# at each energy); centroid fractions of 0.05 / 0.2 beside 0.6 took 0.90 / 0.85 ms.
ENERGY_FEW_WORDS, ENERGY_MANY_WORDS = 0.9, 0.6


def _uses_few_words(vectors: sp.csr_array, settings: ApproximateSettings) -> bool:
  """Whether the gallery uses at most `probe_max_words` words (the cluster probe's case)."""
  return np.unique(vectors.indices).size <= settings.probe_max_words


def seismic_postings(settings: ApproximateSettings, few_words: bool) -> int:
  """Seismic's `n_postings` for a gallery: the setting, or where it is 0 the default for a
  gallery over few words or many."""
  return settings.n_postings or (POSTINGS_FEW_WORDS if few_words else POSTINGS_MANY_WORDS)


def seismic_energy(settings: ApproximateSettings, few_words: bool) -> float:
  """Seismic's `summary_energy` for a gallery: the setting, or where it is 0 the default for
  a gallery over few words or many."""
  return settings.summary_energy or (ENERGY_FEW_WORDS if few_words else ENERGY_MANY_WORDS)


def check_clusters(settings: ApproximateSettings, num_items: int) -> None:
  """Refuses more clusters than a gallery of `num_items` can fill (ValueError)."""
  most = max(1, num_items // cluster_probe.MIN_ITEMS_PER_CLUSTER)
  if settings.clusters > most:
    raise ValueError(f"--clusters={settings.clusters} is too many for {num_items} "
                     f"motions: k-means needs {cluster_probe.MIN_ITEMS_PER_CLUSTER} a cluster, "
                     f"so at most {most} (0 chooses about 4·√N, at most one per "
                     f"{cluster_probe.MIN_ITEMS_PER_CLUSTER})")


def _build_probe(vectors: sp.csr_array, settings: ApproximateSettings, few_words: bool
                 ) -> cluster_probe.ClusterProbe | None:
  """The cluster probe, or None where the gallery uses more than `probe_max_words` words."""
  if not few_words:
    return None
  check_clusters(settings, vectors.shape[0])
  return cluster_probe.ClusterProbe.build(vectors, settings.clusters)


def seismic_build(settings: ApproximateSettings, few_words: bool) -> dict:
  """The values Seismic is built with (`n_postings` and `summary_energy` chosen by the
  gallery where the settings leave them at 0)."""
  return {"n_postings": seismic_postings(settings, few_words),
          "centroid_fraction": settings.centroid_fraction,
          "summary_energy": seismic_energy(settings, few_words), "doc_cut": settings.doc_cut}


def build_record(settings: ApproximateSettings, few_words: bool,
               probe: cluster_probe.ClusterProbe | None) -> dict:
  """The manifest's record of what the indexes were built with: `seismic_build`'s values and
  the probe's number of clusters (0: no probe)."""
  return {**seismic_build(settings, few_words),
          "clusters": probe.num_clusters if probe is not None else 0}


def _build_seismic(vectors: sp.csr_array, settings: ApproximateSettings, few_words: bool):
  seismic = _seismic()
  dataset = seismic.SeismicDataset()
  dataset.add_documents_by_id([str(i) for i in range(vectors.shape[0])],
                              vectors.indices.astype(np.int64), vectors.data.astype(np.float32),
                              vectors.indptr.astype(np.int64))
  with _quiet():
    return seismic.SeismicIndex.build_from_dataset(
        dataset, **seismic_build(settings, few_words), num_threads=0)


class ApproximateIndex:
  """Seismic and cluster-probe indexes over L2-normalised lexical vectors, with exact
  re-scoring and a delta segment of items added since the build.

  Attributes:
    vectors: (N, V) float32 CSR, the stored (normalised) item vectors, built and added.
    ids: (N,) item ids.
    num_indexed: the first `num_indexed` items are in the indexes; the rest are the delta.
    probe: the `cluster_probe.ClusterProbe`, or None (the gallery uses too many words).
    keywords: the `keyword_index.KeywordIndex` of the indexed items.
    built_with: the values the indexes were built with (`build_record`), the gallery's choices
      included; saved in the manifest.
  """

  def __init__(self, vectors: sp.csr_array, ids: np.ndarray, settings: ApproximateSettings,
               seismic_index, num_indexed: int, keywords: KeywordIndex,
               probe: cluster_probe.ClusterProbe | None, built_with: dict,
               normalise: bool = True):
    self.vectors, self.ids, self.settings = vectors, ids, settings
    self._seismic, self.num_indexed, self.normalise = seismic_index, num_indexed, normalise
    self.probe, self.keywords, self.built_with = probe, keywords, built_with
    self.last_route = ""
    self._strings = _seismic().get_seismic_string()
    self._position = None
    self._terms = None

  engine = "approximate"

  @property
  def num_items(self) -> int:
    return self.ids.shape[0]

  @property
  def vocab_size(self) -> int:
    return self.vectors.shape[1]

  @property
  def num_postings(self) -> int:
    return int(self.vectors.nnz)

  @classmethod
  def build(cls, vectors, ids, settings: ApproximateSettings | None = None,
            normalise: bool = True, words: np.ndarray | None = None) -> ApproximateIndex:
    """Indexes (N, V) non-negative vectors (dense or scipy.sparse) under their N ids.

    `words`: (V,) the word of each vocabulary entry (`keyword_index.words_of_terms`: the
    forms of a word share one), for keyword searches; None: every entry is its own word.
    """
    csr = _as_csr(vectors, "gallery vectors")
    ids = _check_ids(ids, csr.shape[0], "gallery vectors")
    _check_unique(ids)
    if csr.shape[0] == 0:
      raise ValueError("cannot index an empty gallery")
    csr = _normalise_rows(csr) if normalise else csr
    csr.sort_indices()
    settings = settings or ApproximateSettings()
    few_words = _uses_few_words(csr, settings)
    words = words_of_terms(None, csr.shape[1]) if words is None else np.asarray(words)
    if words.shape != (csr.shape[1],):
      raise ValueError(f"words has shape {words.shape}, the vocabulary {csr.shape[1]} entries")
    probe = _build_probe(csr, settings, few_words)
    return cls(csr, ids, settings, _build_seismic(csr, settings, few_words), csr.shape[0],
               KeywordIndex.build(csr, words.astype(np.int32)), probe,
               build_record(settings, few_words, probe), normalise)

  def add(self, vectors, ids) -> None:
    """Appends items to the delta segment (searched exactly until `compact`)."""
    csr = _as_csr(vectors, "added vectors")
    if csr.shape[1] != self.vocab_size:
      raise ValueError(f"added vectors have {csr.shape[1]} vocabulary columns, the index "
                       f"{self.vocab_size}")
    ids = _check_ids(ids, csr.shape[0], "added vectors")
    _check_unique(np.concatenate([self.ids, ids]))
    csr = _normalise_rows(csr) if self.normalise else csr
    csr.sort_indices()
    self.vectors = sp.csr_array(sp.vstack([self.vectors, csr], format="csr"), dtype=np.float32)
    self.ids = np.concatenate([self.ids, ids])
    self._position = None

  def compact(self) -> None:
    """Rebuilds every index over every item, the delta included."""
    few_words = _uses_few_words(self.vectors, self.settings)
    self._seismic = _build_seismic(self.vectors, self.settings, few_words)
    self.probe = _build_probe(self.vectors, self.settings, few_words)
    self.keywords = KeywordIndex.build(self.vectors, self.keywords.words)
    self.built_with = build_record(self.settings, few_words, self.probe)
    self.num_indexed = self.num_items

  def _term_strings(self) -> np.ndarray:
    """(V,) the vocabulary ids as the strings Seismic names its components by."""
    if self._terms is None:
      self._terms = np.arange(self.vocab_size).astype(str).astype(self._strings)
    return self._terms

  def warm_up(self) -> None:
    """Answers a query through each index once, so that the first real query is not slowed
    by what a first search starts (thread pools, pages of the index files read in)."""
    if self.num_indexed:
      first = self.vectors[[0]]
      self.search(first, 1, keywords=True)
      if first.nnz:  # a keyword query: every form of the first item's first word
        word = np.zeros(self.vocab_size, np.float32)
        word[self.keywords.words == self.keywords.words[first.indices[0]]] = 1.0
        self.search(word, 1, keywords=True)
      self.search(first, 1)

  def route(self, num_terms: int) -> str:
    """Which index answers a query of `num_terms` words: 'seismic' or 'clusters'."""
    if self.probe is None or num_terms <= self.settings.seismic_max_terms:
      return "seismic"
    return "clusters"

  def _candidates(self, terms: np.ndarray, weights: np.ndarray, k: int, route: str
                  ) -> np.ndarray:
    if route == "clusters":
      return self.probe.candidates(terms, weights, k * self.settings.candidates,
                                   self.settings.probes)
    found = self._seismic.search("q", self._term_strings()[terms], weights,
                                 k * self.settings.candidates, self.settings.query_cut,
                                 self.settings.heap_factor)
    return np.fromiter((int(doc) for _, _, doc in found), np.int64, len(found))

  def _exact_scores(self, items: np.ndarray, query_v: np.ndarray) -> np.ndarray:
    """Scores of `items` (sorted positions) against a dense (V,) query, float32."""
    ptr = self.vectors.indptr
    lengths = ptr[items + 1] - ptr[items]
    starts = np.cumsum(lengths) - lengths
    pos = np.repeat(ptr[items] - starts, lengths) + np.arange(lengths.sum())
    products = self.vectors.data[pos] * query_v[self.vectors.indices[pos]]
    # Items without words (an empty motion vector) own no products and sum to 0.
    owner = np.repeat(np.arange(items.size), lengths)
    return np.bincount(owner, weights=products, minlength=items.size).astype(np.float32)

  def search(self, query_vectors, k: int = 10, keywords: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
    """As `InvertedIndex.search`: ids (Q, k) ((k,) for one query) and scores, exact for the
    items found; items that share no word with a query fill the list in gallery order.

    `keywords`: the queries are keyword queries (`gallery.keyword_query`: every form of each
    keyword, equal weights), answered exactly by the keyword index (or, where a query is not
    made of whole words, by Seismic however many forms it holds; the cluster probe ranks
    clusters by their mean weights, which keyword queries need the maxima of).
    `last_route` then says which index answered the last query: 'keywords', 'seismic' or
    'clusters'.
    """
    if k < 1:
      raise ValueError(f"k must be at least 1, got {k}")
    arr = query_vectors if sp.issparse(query_vectors) else np.asarray(query_vectors)
    single = arr.ndim == 1
    one = _one_query(arr, self.vocab_size, self.normalise, "query vectors")
    if one is not None:  # one query: no sparse matrices built (most of a query's time)
      rows = [one]
    else:
      queries = _prepare_batch(arr[None, :] if single else arr, self.normalise, None,
                               "query vectors")
      if queries.shape[1] != self.vocab_size:
        raise ValueError(f"query vectors have {queries.shape[1]} vocabulary columns, the "
                         f"index {self.vocab_size}")
      rows = [(queries.indices[lo:hi].astype(np.int64), queries.data[lo:hi].astype(np.float32))
              for lo, hi in zip(queries.indptr[:-1], queries.indptr[1:])]
    k = min(k, self.num_items)
    top_idx = np.empty((len(rows), k), np.int64)
    top_score = np.empty((len(rows), k), np.float32)
    delta = np.arange(self.num_indexed, self.num_items)
    query_v = np.zeros(self.vocab_size, np.float32)
    for r, (terms, weights) in enumerate(rows):
      found = delta
      words = self.keywords.words_of_query(terms, weights) if keywords else None
      self.last_route = ("keywords" if words is not None else "seismic" if keywords
                         else self.route(terms.size))
      query_v[terms] = weights
      if words is not None:
        # The keyword index's sums are already exact: times the query's one weight, they are
        # the scores (as the exact index sums them, up to float32 rounding).
        found, sums = self.keywords.top(words, k)
        scores = sums * weights[0]
        if delta.size:
          found = np.concatenate([found, delta])
          scores = np.concatenate([scores, self._exact_scores(delta, query_v)])
      else:
        if terms.size:
          found = np.union1d(self._candidates(terms, weights, k, self.last_route), delta)
        scores = self._exact_scores(found, query_v)
      keep = scores > 0
      found, scores = found[keep], scores[keep]
      order = np.lexsort((found, -scores))[:k]
      idx, score = found[order], scores[order]
      if idx.size < k:
        # Fewer than k candidates matched: the first items in gallery order fill the list,
        # scored exactly too (one the indexes did not return may still share a word), and
        # the whole list is ordered as the exact index orders it.
        filler = np.setdiff1d(np.arange(min(self.num_items, k + idx.size)), idx)[:k - idx.size]
        idx = np.concatenate([idx, filler])
        score = np.concatenate([score, self._exact_scores(filler, query_v)])
        order = np.lexsort((idx, -score))
        idx, score = idx[order], score[order]
      query_v[terms] = 0.0
      top_idx[r], top_score[r] = idx, score
    ids = self.ids[top_idx]
    return (ids[0], top_score[0]) if single else (ids, top_score)

  def index_of(self, item: int | str) -> int:
    if isinstance(item, (int, np.integer)):
      if not 0 <= item < self.num_items:
        raise IndexError(f"item {item} is outside the gallery of {self.num_items}")
      return int(item)
    if self._position is None:
      self._position = {str(i): n for n, i in enumerate(self.ids.tolist())}
    if str(item) not in self._position:
      raise KeyError(f"no item {item!r} in the index")
    return self._position[str(item)]

  def item_vector(self, item: int | str) -> dict[int, float]:
    row = self.vectors[[self.index_of(item)]]
    return {int(t): float(w) for t, w in zip(row.indices, row.data)}

  def term_contributions(self, query, item: int | str, top: int = 5
                         ) -> list[tuple[int, float]]:
    """As `InvertedIndex.term_contributions`: the words behind an item's score."""
    arr = query if sp.issparse(query) else np.asarray(query)
    if arr.ndim != 1 and not (sp.issparse(arr) and arr.shape[0] == 1):
      raise ValueError(f"query must be a single (V,) vector, got shape {arr.shape}")
    q = _prepare_batch(arr if sp.issparse(arr) else arr[None, :], self.normalise, None,
                       "query vector")
    if q.shape[1] != self.vocab_size:
      raise ValueError(f"query has {q.shape[1]} vocabulary entries, the index "
                       f"{self.vocab_size}")
    items = self.item_vector(item)
    contributions = [(int(t), float(w) * items[int(t)]) for t, w in zip(q.indices, q.data)
                     if int(t) in items]
    contributions.sort(key=lambda tc: (-tc[1], tc[0]))
    return contributions[:top]

  def memory_bytes(self) -> int:
    """Bytes of the stored vectors and ids and of the keyword index (the Seismic index's own
    size is its file's)."""
    return int(self.vectors.data.nbytes + self.vectors.indices.nbytes
               + self.vectors.indptr.nbytes + self.ids.nbytes + self.keywords.memory_bytes())

  def save(self, path, compact: bool = False, source: dict | None = None) -> pathlib.Path:
    """Writes the index to a folder (`lexmo_jax.search.store`), rebuilding every index over
    the delta too first when `compact`; `source` (what the vectors came from) goes in the
    manifest."""
    if compact and self.num_indexed < self.num_items:
      self.compact()

    def vectors(stem: pathlib.Path) -> pathlib.Path:
      out = stem.with_name(stem.name + ".npz")
      np.savez(out, data=self.vectors.data, indices=self.vectors.indices,
               indptr=self.vectors.indptr, ids=self.ids)
      return out

    def seismic_file(stem: pathlib.Path) -> pathlib.Path:
      with _quiet():
        self._seismic.save(str(stem))
      return stem.with_name(stem.name + ".index.seismic")
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "engine": "approximate",
            "vocab_size": self.vocab_size, "num_items": self.num_items,
            "num_indexed": self.num_indexed, "normalise": self.normalise,
            "settings": dataclasses.asdict(self.settings), "built_with": self.built_with,
            "source": source}
    def keywords_file(stem: pathlib.Path) -> pathlib.Path:
      out = stem.with_name(stem.name + ".keywords.npz")
      np.savez(out, **self.keywords.to_arrays())
      return out
    writers = {"vectors": vectors, "seismic": seismic_file, "keywords": keywords_file}
    if self.probe is not None:
      def probe_file(stem: pathlib.Path) -> pathlib.Path:
        out = stem.with_name(stem.name + ".clusters.npy")
        np.save(out, self.probe.to_bytes(), allow_pickle=False)
        return out
      writers["clusters"] = probe_file
    return store.write_index(path, meta, writers)

  @classmethod
  def load(cls, path) -> ApproximateIndex:
    """Reads an index written by `save`, checking format and checksums.

    Raises:
      FileNotFoundError, ValueError (store.IndexFormatError for another format or version):
        naming the file.
    """
    meta, paths = store.read_index(path, FORMAT_NAME, FORMAT_VERSION)
    manifest = pathlib.Path(path) / store.MANIFEST
    try:
      vocab_size, num_items = int(meta["vocab_size"]), int(meta["num_items"])
      num_indexed = int(meta["num_indexed"])
      settings = ApproximateSettings(**meta["settings"])
      built = {key: meta["built_with"][key] for key in BUILT_WITH}
      if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                 for v in built.values()):
        raise ValueError(f"built_with holds a value that is not a number: {built}")
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(f"{manifest} is damaged ({type(e).__name__}: {e}); delete the folder "
                       "to rebuild the index") from e
    if not 0 <= num_indexed <= num_items:
      raise ValueError(f"{manifest} is damaged: {num_indexed} items indexed of {num_items}")
    with _reading(paths["vectors"], "an index archive"):
      with np.load(paths["vectors"], allow_pickle=False) as npz:
        data, indices, indptr, ids = npz["data"], npz["indices"], npz["indptr"], npz["ids"]
      if ids.shape[0] != num_items or indptr.shape[0] - 1 != num_items:
        raise ValueError(f"{paths['vectors']} is inconsistent with {manifest}: "
                         f"{indptr.shape[0] - 1} vectors and {ids.shape[0]} ids for "
                         f"{num_items} items")
      if indices.size and int(indices.max()) >= vocab_size:
        raise ValueError(f"{paths['vectors']} is inconsistent with {manifest}: a word id "
                         f"{int(indices.max())} outside its vocabulary of {vocab_size}")
      vectors = sp.csr_array((data, indices, indptr), shape=(num_items, vocab_size))
    index = _load_seismic(paths["seismic"])
    if index.len != num_indexed:
      raise ValueError(f"{paths['seismic']} is inconsistent with {manifest}: it holds "
                       f"{index.len} items, {num_indexed} are indexed")
    if ("clusters" in paths) != (built["clusters"] > 0):
      raise ValueError(f"{manifest} is damaged: it records {built['clusters']} clusters and "
                       f"{'a' if 'clusters' in paths else 'no'} cluster index file; delete the "
                       "folder to rebuild the index")
    probe = None
    if "clusters" in paths:
      with _reading(paths["clusters"], "a cluster index"):
        probe = cluster_probe.ClusterProbe.from_bytes(
            np.load(paths["clusters"], allow_pickle=False), str(paths["clusters"]))
      if probe.num_items != num_indexed or probe.num_clusters != built["clusters"]:
        raise ValueError(f"{paths['clusters']} is inconsistent with {manifest}: it holds "
                         f"{probe.num_items} items in {probe.num_clusters} clusters; "
                         f"{num_indexed} are indexed in {built['clusters']}")
    if "keywords" not in paths:
      raise ValueError(f"{manifest} is damaged: it names no keyword index file; delete the "
                       "folder to rebuild the index")
    with _reading(paths["keywords"], "a keyword index"):
      with np.load(paths["keywords"], allow_pickle=False) as npz:
        keywords = KeywordIndex.from_arrays(dict(npz), str(paths["keywords"]))
    if keywords.num_items != num_indexed or keywords.words.size != vocab_size:
      raise ValueError(f"{paths['keywords']} is inconsistent with {manifest}: it holds "
                       f"{keywords.num_items} items over {keywords.words.size} vocabulary "
                       f"entries; {num_indexed} are indexed over {vocab_size}")
    return cls(vectors, ids, settings, index, num_indexed, keywords, probe, built,
               bool(meta.get("normalise", True)))


@contextlib.contextmanager
def _reading(path: pathlib.Path, what: str):
  """Any error met while reading `path` (whose checksum matched: a file damaged before it was
  recorded, or replaced by another whose record was edited too) as a ValueError naming it."""
  try:
    yield
  except ValueError as e:
    if str(path) in str(e):
      raise
    raise ValueError(f"{path} is corrupt or not {what} ({e}); delete the folder to rebuild "
                     "the index") from e
  except (zipfile.BadZipFile, OSError, EOFError, KeyError, IndexError, TypeError,
          AttributeError, AssertionError, RuntimeError) as e:
    raise ValueError(f"{path} is corrupt or not {what} ({type(e).__name__}: {e}); delete the "
                     "folder to rebuild the index") from e


def _load_seismic(path: pathlib.Path):
  """The Seismic index in `path`.

  Raises:
    ValueError: the file is not a Seismic index, or is cut short (naming it).
  """
  seismic = _seismic()
  try:
    with _quiet():
      return seismic.SeismicIndex.load(str(path))
  except (KeyboardInterrupt, SystemExit):
    raise
  except BaseException as e:  # pylint: disable=broad-except
    # The Rust library reports a short or foreign file as OSError, and a panic while it
    # decodes one as pyo3's PanicException, which is not an Exception.
    raise ValueError(f"{path} is corrupt or not a Seismic index ({type(e).__name__}: {e}); "
                     "delete the folder to rebuild the index") from e


def with_settings(index: ApproximateIndex, **search_settings) -> ApproximateIndex:
  """`index` searched with other search-time knobs (query_cut, heap_factor, candidates,
  probes, seismic_max_terms)."""
  settings = dataclasses.replace(index.settings, **search_settings)
  searched = ApproximateIndex(index.vectors, index.ids, settings, index._seismic,  # pylint: disable=protected-access
                              index.num_indexed, index.keywords, index.probe,
                              index.built_with, index.normalise)
  # The word-id strings Seismic is queried with (about 18 ms to make for 30522 words): made
  # once, not again for each setting.
  searched._terms = index._term_strings()  # pylint: disable=protected-access
  return searched
