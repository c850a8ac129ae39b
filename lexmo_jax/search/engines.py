"""The search engines behind one interface, and the choice between them.

  exact        `InvertedIndex` (scipy.sparse posting lists): every score exact; the reference,
               and the right engine up to a few hundred thousand motions.
  approximate  `ApproximateIndex`: Seismic (`pyseismic-lsr`) for keyword-length queries, a
               cluster probe (faiss IVF over the words in use) for sentence-length ones, and
               an exact threshold algorithm for keyword searches; the first two's candidates
               re-scored exactly. About 0.3 ms a caption query on a million of the demo's motions
               at recall@10 ≥ 0.97 against exact search, 0.03 ms a keyword search;
               random Zipf vectors take 2 ms (0.9 ms at query cut 4; bench/RESULTS.md).
  auto         exact below `AUTO_APPROXIMATE_FROM` items, approximate from there on.

Both answer `search(queries, k)`, `term_contributions`, `item_vector`, `save`/`load` (folders
written atomically with checksums, `lexmo_jax.search.store`); `load_index` opens either.

For batch jobs on a GPU or TPU host, `lexmo_jax.search.device_top_k.DeviceGallery` ranks a
whole batch of queries against every item exactly, in one compiled program over the devices.
"""
from __future__ import annotations

import pathlib

from lexmo_jax.search import approximate, store
from lexmo_jax.search.index import InvertedIndex

ENGINES = ("exact", "approximate", "auto")
# From this gallery size on, `auto` picks the approximate engine. Below it the exact index
# answers a caption query within about 25 ms (22–50 ms at 1M of the demo's vectors, one
# core), nothing is lost, and nothing takes minutes to build (the approximate engine's
# k-means, Seismic blocks and keyword lists: about 100 s to 5 min at 1M on one core, bench/RESULTS.md).
AUTO_APPROXIMATE_FROM = 500_000


def resolve_engine(engine: str, num_items: int) -> str:
  """'exact' or 'approximate' for a gallery of `num_items` items.

  Raises:
    ValueError: an unknown engine name.
  """
  if engine not in ENGINES:
    raise ValueError(f"--engine={engine!r} is not one of {', '.join(ENGINES)}")
  if engine == "auto":
    return "approximate" if num_items >= AUTO_APPROXIMATE_FROM else "exact"
  return engine


def build_index(vectors, ids, engine: str = "auto", top_k_terms: int | None = None,
                settings: approximate.ApproximateSettings | None = None, words=None):
  """An index of (N, V) vectors under `engine` (`top_k_terms` prunes the exact index only;
  `words`, the (V,) word of each vocabulary entry, serves the approximate engine's keyword
  searches: `keyword_index.words_of_terms`).

  Raises:
    ValueError: an unknown engine, or pruning asked of the approximate engine (it prunes
      by Seismic's `n_postings`).
  """
  chosen = resolve_engine(engine, len(ids))
  if chosen == "exact":
    return InvertedIndex.build(vectors, ids, top_k_terms=top_k_terms)
  if top_k_terms is not None:
    raise ValueError("--top-k-terms prunes the exact index; the approximate engine prunes by "
                     "its own n_postings")
  return approximate.ApproximateIndex.build(vectors, ids, settings, words=words)


def load_index(path):
  """The index saved in `path`, of whichever engine wrote it.

  Raises:
    FileNotFoundError, ValueError, store.IndexFormatError: naming the file.
  """
  meta = store.peek(path)
  if meta is None:
    raise FileNotFoundError(f"{pathlib.Path(path) / store.MANIFEST} is missing: {path} is not "
                            "a saved index")
  if meta.get("format") == approximate.FORMAT_NAME:
    return approximate.ApproximateIndex.load(path)
  return InvertedIndex.load(path)


def engine_of(index) -> str:
  return "approximate" if isinstance(index, approximate.ApproximateIndex) else "exact"
