"""Gallery search: the inverted index against dense matrix-product search, and the exact
index against the approximate engine (Seismic and the cluster probe) on million-item galleries.

Random sparse galleries stand in for trained lexical vectors: each item holds `--nnz`
distinct words drawn from a Zipf-like law over the 30522 BERT word pieces (a few words such
as "a", "person" sit in almost every item, most words are rare), with heavy-tailed
log-normal weights (σ = 1) and L2-normalised rows. For each gallery size the script reports
build time, index memory and query latency of the inverted index and, where the (N, V)
float32 matrix fits in `--dense-max-gb`, of dense search; then recall@10 of indexes pruned
to 8/16/32/64 terms per item against exact search. Results go to `--out` (Markdown) and
the same path with .json.

  python bench/bench_search.py                       # 10k, 100k, 1M (a few minutes)
  python bench/bench_search.py --sizes 10k --queries 20
  python bench/bench_search.py --engines --workdir runs/demo/lexcmlp --json OUT.json

With --engines it compares the engines instead (`lexmo_jax.search.engines`), pinned to one
core, on two kinds of gallery of each --engine-sizes size:
  zipf  the random vectors above;
  demo  the trained model's motion vectors (every split of its dataset), augmented to the
        size: each new item copies a random motion's vector, keeps each of its words with
        probability 0.8, scales the kept weights by log-normal noise (σ = 0.25) and replaces
        each dropped word by one drawn from the words' frequencies across the motions, with a
        weight drawn from all the motions' weights; so the number of words per item, which
        words are common, and the weights' distribution stay the model's.
Queries: `zipf` draws them from its law; `demo` takes the lexical vectors of the test split's
captions and keyword queries (one or two caption words, `search.gallery.keyword_query`;
rows for all of them and, apart, for those of one word and of two). Keyword queries go to the
approximate engine's keyword index (with the vocabulary's words, `gallery.keyword_words`),
whose answer no search knob changes: they are timed once. For each gallery and engine
setting: median single-query latency (one query at a time, `--single-passes` passes over the
queries, each query at its fastest), batched
latency per query, recall@10 against exact search on the same queries, build time and index
size. `--device` adds the compiled batched top-k over the whole gallery
(`lexmo_jax.search.device_top_k`) on JAX's default devices: a GPU or TPU host's accelerators,
or the pinned core. `--json OUT` writes one row per (gallery, engine, setting) with the keys
gallery_size, engine, ms_single_median, ms_batched, recall_at_10, build_s, index_mb (and
gallery, setting, queries, same_top_10, measured, and for the approximate engine
clusters_share and keyword_index_share, the shares of queries the cluster probe and the
keyword index answered rather than Seismic; its index_mb is its saved files plus what the
keyword index rebuilds in memory on loading);
`--extrapolate-to SIZE` adds rows at a size not measured (for lack of memory or time),
straight lines through the two largest measured sizes, never below the larger one's figure,
with `measured` false and `extrapolated` in `setting`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import resource
import sys
import time

import numpy as np
import scipy
import scipy.sparse as sp

# Run as a script from any folder: make the package importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from lexmo_jax.search.index import InvertedIndex  # noqa: E402
from lexmo_jax.search import approximate  # noqa: E402

VOCAB_SIZE = 30522
BATCH = 10_000
TOP_K = 10


def parse_size(text: str) -> int:
  text = text.strip().lower()
  scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
  number = text[:-1] if text[-1:] in "km" else text
  try:
    value = int(float(number) * scale)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not a gallery size: {text!r} (use e.g. 10k, 1M)")
  if value < TOP_K:
    raise argparse.ArgumentTypeError(f"gallery size {value} is below k={TOP_K}")
  return value


def parse_kept(text: str) -> list[int | None]:
  return [None if t.strip() == "all" else int(t) for t in text.split(",")]


def term_law(zipf: float, seed: int) -> np.ndarray:
  """Cumulative word probabilities, ranks assigned to word ids at random. Returns (V,)."""
  rng = np.random.default_rng(seed)
  p = 1.0 / np.arange(1, VOCAB_SIZE + 1) ** zipf
  p = p[rng.permutation(VOCAB_SIZE)]
  return np.cumsum(p / p.sum())


def random_lexical_vectors(rng, n: int, nnz: int, cdf: np.ndarray) -> sp.csr_array:
  """(n, V) float32 CSR, L2-normalised rows of (almost always exactly) nnz distinct words.

  Words are drawn with replacement, twice as many as needed, and each row keeps its first
  nnz distinct ones, so frequent words stay frequent without rows losing non-zeros.
  """
  draws = 2 * nnz
  terms = np.minimum(np.searchsorted(cdf, rng.random((n, draws))), VOCAB_SIZE - 1)
  keys = np.arange(n, dtype=np.int64)[:, None] * VOCAB_SIZE + terms
  _, first = np.unique(keys.ravel(), return_index=True)
  first.sort()
  rows = first // draws
  rank = np.arange(first.size) - np.searchsorted(rows, rows)
  kept = first[rank < nnz]
  rows, terms = kept // draws, terms.ravel()[kept]
  weights = rng.lognormal(0.0, 1.0, size=kept.size).astype(np.float32)
  csr = sp.coo_array((weights, (rows, terms)), shape=(n, VOCAB_SIZE)).tocsr()
  norms = sp.linalg.norm(csr, axis=1)
  csr.data /= np.repeat(norms, np.diff(csr.indptr)).astype(np.float32)
  return csr


def timed(fn, *args, **kwargs):
  start = time.perf_counter()
  out = fn(*args, **kwargs)
  return out, time.perf_counter() - start


def peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def available_gb() -> float:
  try:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
      if line.startswith("MemAvailable:"):
        return int(line.split()[1]) / 2**20
  except OSError:
    pass
  return float("nan")


def dense_top_k(gallery_nv: np.ndarray, queries_qv: np.ndarray, k: int) -> np.ndarray:
  scores = queries_qv @ gallery_nv.T
  part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
  order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
  return np.take_along_axis(part, order, axis=1)


def single_query_ms(search, queries, repeats: int) -> float:
  times = []
  for i in range(min(repeats, queries.shape[0])):
    _, t = timed(search, queries[i:i + 1])
    times.append(t)
  return 1e3 * float(np.median(times))


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
  hits = [len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact)]
  return float(np.mean(hits)) / exact.shape[1]


def same_top_k(found: np.ndarray, exact: np.ndarray) -> float:
  """The share of queries whose top-k is exact search's, in the same order."""
  return float(np.mean([f.tolist() == e.tolist() for f, e in zip(found, exact)]))


def bench_size(n: int, args, cdf) -> tuple[dict, InvertedIndex, list, sp.csr_array]:
  rng = np.random.default_rng(args.seed + n)
  batches = [(random_lexical_vectors(rng, min(BATCH, n - s), args.nnz, cdf),
              [f"m{i:07d}" for i in range(s, min(s + BATCH, n))])
             for s in range(0, n, BATCH)]
  queries = random_lexical_vectors(rng, args.queries, args.nnz, cdf)
  index, build_s = timed(InvertedIndex.build_from_batches, batches)
  (_, _), search_s = timed(index.search, queries, k=TOP_K)
  row = {
      "gallery": n,
      "mean_words_per_item": index.num_postings / n,
      "index_build_s": build_s,
      "index_mb": index.memory_bytes() / 2**20,
      "index_ms_per_query_batched": 1e3 * search_s / args.queries,
      "index_ms_single_query": single_query_ms(
          lambda q: index.search(q, k=TOP_K), queries, args.single_repeats),
  }
  dense_gb = n * VOCAB_SIZE * 4 / 2**30
  row["dense_gb"] = dense_gb
  if dense_gb > args.dense_max_gb:
    row["dense"] = (f"skipped: the (N, V) float32 matrix needs {dense_gb:.1f} GB, over "
                    f"--dense-max-gb {args.dense_max_gb:g} (available {available_gb():.1f} GB)")
  else:
    gallery, densify_s = timed(lambda: sp.vstack([b for b, _ in batches]).toarray())
    dense_q = queries.toarray()
    dense_idx, dense_s = timed(dense_top_k, gallery, dense_q, TOP_K)
    index_idx = index.search(queries, k=TOP_K)[0]
    positions = {m: i for i, m in enumerate(index.ids.tolist())}
    index_pos = np.vectorize(positions.__getitem__)(index_idx)
    row.update({
        "dense": "run",
        "dense_build_s": densify_s,
        "dense_mb": gallery.nbytes / 2**20,
        "dense_ms_per_query_batched": 1e3 * dense_s / args.queries,
        "dense_ms_single_query": single_query_ms(
            lambda q: dense_top_k(gallery, q, TOP_K), dense_q, args.single_repeats),
        "index_agrees_with_dense_at_10": recall_at_k(index_pos, dense_idx),
    })
    del gallery
  row["peak_rss_gb_so_far"] = peak_rss_gb()
  return row, index, batches, queries


def bench_pruning(batches, queries, exact: InvertedIndex, kept: list[int | None]) -> list[dict]:
  exact_ids = exact.search(queries, k=TOP_K)[0]
  rows = []
  for k in kept:
    if k is None:
      index, build_s = exact, float("nan")
    else:
      index, build_s = timed(InvertedIndex.build_from_batches, batches, top_k_terms=k)
    (found, _), search_s = timed(index.search, queries, k=TOP_K)
    rows.append({
        "kept_terms": "all" if k is None else k,
        "recall_at_10": recall_at_k(found, exact_ids),
        "index_mb": index.memory_bytes() / 2**20,
        "build_s": build_s,
        "ms_per_query_batched": 1e3 * search_s / queries.shape[0],
    })
  return rows


def fmt(value) -> str:
  if value is None:
    return "—"
  if isinstance(value, float):
    return "n/a" if np.isnan(value) else f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
  return str(value)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for row in rows:
    lines.append("| " + " | ".join(fmt(row.get(c, "—")) for c in columns) + " |")
  return "\n".join(lines)


SIZE_COLUMNS = ["gallery", "mean_words_per_item", "index_build_s", "index_mb",
                "index_ms_per_query_batched", "index_ms_single_query", "dense_build_s",
                "dense_mb", "dense_ms_per_query_batched", "dense_ms_single_query",
                "index_agrees_with_dense_at_10"]
PRUNE_COLUMNS = ["kept_terms", "recall_at_10", "index_mb", "build_s", "ms_per_query_batched"]


def report(results: dict) -> str:
  setup = results["setup"]
  parts = [
      "# Gallery search benchmark",
      "",
      f"Machine: {setup['machine']}; numpy {setup['numpy']}, scipy {setup['scipy']}.",
      f"Random galleries: {setup['nnz']} distinct Zipf({setup['zipf']}) words per item over "
      f"V={VOCAB_SIZE}, {setup['queries']} queries of the same law, top-{TOP_K}. "
      "Log-normal (σ = 1) weights, rows L2-normalised. Times in seconds (build) and "
      "milliseconds per query; the inverted index runs on scipy.sparse, dense search is a "
      "float32 numpy matrix product. Random vectors share words only by chance, so the "
      "recall of pruned indexes is a pessimistic estimate for trained vectors, whose "
      "weight concentrates on the few words that describe the item.",
      "",
      "## Build, memory and latency",
      "",
      markdown_table(results["sizes"], SIZE_COLUMNS),
      "",
  ]
  notes = [f"- {r['gallery']}: dense {r['dense']}" for r in results["sizes"]
           if r["dense"] != "run"]
  if notes:
    parts += ["Dense search not run:", *notes, ""]
  parts += [f"## Recall@{TOP_K} of pruned indexes (gallery {results['pruning_gallery']})",
            "", markdown_table(results["pruning"], PRUNE_COLUMNS), ""]
  return "\n".join(parts)


# --- the engines ---------------------------------------------------------------------------

ENGINE_SETTINGS = [  # the approximate engine's search knobs (`approximate.with_settings`)
    {"query_cut": 3, "probes": 16}, {"query_cut": 4, "probes": 16},
    {"query_cut": 5, "probes": 16},
    {"query_cut": 10, "probes": 32},
    {"query_cut": 10, "probes": 48}, {"query_cut": 20, "probes": 32}]


def pin_to_one_core() -> str:
  try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    return "pinned to one core"
  except (AttributeError, OSError):
    return "not pinned (no sched_setaffinity)"


def demo_vectors(workdir: str) -> tuple[sp.csr_array, sp.csr_array, sp.csr_array, np.ndarray,
                                        np.ndarray]:
  """(motion vectors of every split, test captions' text vectors, keyword query vectors, the
  number of keywords of each, and the (V,) word of each vocabulary entry)."""
  from lexmo_jax.inference import LexicalModel  # pylint: disable=g-import-not-at-top
  from lexmo_jax.search.gallery import keyword_query, keyword_words  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top
  model = LexicalModel.from_workdir(workdir)
  motions = []
  for split in ("train", "val", "test"):
    try:
      data = data_lib.load_split(model.config, split)
    except (FileNotFoundError, ValueError):
      continue
    batches = model.eval_batches(data.pairs, data.mean, data.std)
    motions.append(model.encode_eval_batches(batches)["motion"])
    if split == "test":
      captions = [c for p in data.pairs for c in p.captions][:400]
      words = sorted({w for c in captions for w in c.lower().split() if w.isalpha()
                      and len(w) > 2})
  texts = model.encode_texts(captions)
  keyword_rows, counts = [], []
  rng = np.random.default_rng(0)
  for _ in range(400):
    pick = rng.choice(words, size=rng.integers(1, 3), replace=False).tolist()
    try:
      keyword_rows.append(keyword_query(model.tokenizer, pick))
    except ValueError:
      continue
    counts.append(len(pick))
  return (sp.csr_array(np.concatenate(motions)), sp.csr_array(texts),
          sp.csr_array(np.stack(keyword_rows)), np.asarray(counts),
          keyword_words(model.tokenizer))


def augment(base: sp.csr_array, n: int, rng) -> sp.csr_array:
  """(n, V) vectors like `base`'s rows (the module docstring says how)."""
  base = sp.csr_array(base, dtype=np.float32)
  base.sort_indices()
  counts = np.diff(base.indptr)
  word_freq = np.bincount(base.indices, minlength=base.shape[1]).astype(np.float64)
  word_cdf = np.cumsum(word_freq / word_freq.sum())
  rows = rng.integers(0, base.shape[0], size=n)
  lengths = counts[rows]
  starts = np.repeat(base.indptr[rows], lengths)
  offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
  source = starts + offsets
  words = base.indices[source].astype(np.int64)
  weights = base.data[source] * rng.lognormal(0.0, 0.25, size=source.size).astype(np.float32)
  dropped = rng.random(source.size) > 0.8
  words[dropped] = np.minimum(np.searchsorted(word_cdf, rng.random(dropped.sum())),
                              base.shape[1] - 1)
  weights[dropped] = rng.choice(base.data, size=dropped.sum())
  item = np.repeat(np.arange(n), lengths)
  out = sp.csr_array((weights, (item, words)), shape=(n, base.shape[1]))
  out.sum_duplicates()  # a replacement that repeats a kept word adds to it
  return out


def _time_queries(search, queries: sp.csr_array, limit: int, passes: int = 1, **kwargs
                  ) -> float:
  """Median milliseconds of one query at a time over the first `limit` queries, each timed
  in `passes` passes over them all and counted at its fastest (what the machine let through
  in one pass, a moment's interruption or a cold cache, does not make a query slow)."""
  picked = [queries[[i]] for i in range(min(limit, queries.shape[0]))]
  fastest = np.full(len(picked), np.inf)
  for _ in range(passes):
    for i, query in enumerate(picked):
      fastest[i] = min(fastest[i], timed(search, query, TOP_K, **kwargs)[1])
  return 1e3 * float(np.median(fastest))


def _keyword_index_mb(index: approximate.ApproximateIndex) -> float:
  """MiB the keyword index rebuilds in memory on loading (its dense rows and item-ordered
  lists), beyond what its file holds."""
  stored = sum(a.nbytes for a in index.keywords.to_arrays().values())
  return (index.keywords.memory_bytes() - stored) / 2**20


def bench_engines(name: str, gallery: sp.csr_array, query_sets: dict, args,
                  words: np.ndarray | None = None) -> list[dict]:
  """One row per (engine, setting) on one gallery (`words`: the vocabulary's words, for the
  keyword index)."""
  n = gallery.shape[0]
  ids = [f"m{i:08d}" for i in range(n)]
  exact, exact_build = timed(InvertedIndex.build, gallery, ids)
  rows = []
  reference = {q: exact.search(queries, TOP_K)[0] for q, queries in query_sets.items()}
  for q, queries in query_sets.items():
    (_, _), batched = timed(exact.search, queries, TOP_K)
    rows.append({"gallery": name, "gallery_size": n, "engine": "exact", "setting": "",
                 "queries": q, "ms_single_median": _time_queries(
                     exact.search, queries, args.single_repeats, args.single_passes),
                 "ms_batched": 1e3 * batched / queries.shape[0], "recall_at_10": 1.0,
                 "same_top_10": 1.0,
                 "build_s": exact_build, "index_mb": exact.memory_bytes() / 2**20})
    print(rows[-1], flush=True)
  del exact
  approx, approx_build = timed(approximate.ApproximateIndex.build, gallery, ids, words=words)
  approx.warm_up()  # as the search command does on opening an index
  folder = pathlib.Path(args.scratch) / f"{name}_{n}"
  approx.save(folder)
  approx_mb = sum(f.stat().st_size for f in folder.iterdir()) / 2**20 + _keyword_index_mb(approx)
  seen = set()
  for knobs in ENGINE_SETTINGS:
    if approx.probe is None:  # Seismic alone: the probe's knobs change nothing
      knobs = {k: v for k, v in knobs.items() if k != "probes"}
    if tuple(knobs.items()) in seen:
      continue
    seen.add(tuple(knobs.items()))
    engine = approximate.with_settings(approx, **knobs)
    for q, queries in query_sets.items():
      # Keyword queries go to the keyword index, as the search command sends them; its
      # answer does not depend on the knobs, so they are timed at the first setting only.
      keywords = q.startswith("keywords")
      if keywords and len(seen) > 1:
        continue
      (found, _), batched = timed(engine.search, queries, TOP_K, keywords=keywords)
      routes = []
      for i in range(queries.shape[0]):
        engine.search(queries[[i]], TOP_K, keywords=keywords)
        routes.append(engine.last_route)
      rows.append({"gallery": name, "gallery_size": n, "engine": "approximate",
                   "setting": ("keyword index" if routes.count("keywords") == len(routes)
                               else ",".join(f"{k}={v}" for k, v in knobs.items())),
                   "clusters_share": routes.count("clusters") / len(routes),
                   "keyword_index_share": routes.count("keywords") / len(routes),
                   "queries": q, "ms_single_median": _time_queries(
                       engine.search, queries, args.single_repeats, args.single_passes,
                       keywords=keywords),
                   "ms_batched": 1e3 * batched / queries.shape[0],
                   "recall_at_10": recall_at_k(found, reference[q]),
                   "same_top_10": same_top_k(found, reference[q]),
                   "build_s": approx_build, "index_mb": approx_mb})
      print(rows[-1], flush=True)
  del approx, engine
  if args.device:
    rows += bench_device(name, gallery, ids, query_sets, reference, args)
  return rows


def bench_device(name: str, gallery: sp.csr_array, ids: list, query_sets: dict,
                 reference: dict, args) -> list[dict]:
  """Rows of the compiled batched top-k (`device_top_k`) on JAX's default devices."""
  import jax  # pylint: disable=g-import-not-at-top
  from lexmo_jax.search.device_top_k import DeviceGallery  # pylint: disable=g-import-not-at-top
  devices = jax.devices()
  gallery_on, build = timed(DeviceGallery.build, gallery, ids, devices=devices)
  where = f"{devices[0].platform} ×{len(devices)}, {devices[0].device_kind}"
  rows = []
  for q, queries in query_sets.items():
    gallery_on.search(queries, TOP_K)  # compiles for this batch's shape
    gallery_on.search(queries[[0]], TOP_K)  # and for one query
    (found, _), batched = timed(gallery_on.search, queries, TOP_K)
    rows.append({"gallery": name, "gallery_size": gallery.shape[0], "engine": "device top-k",
                 "setting": f"{gallery_on.layout},{where}", "queries": q,
                 "ms_single_median": _time_queries(gallery_on.search, queries,
                                                   min(args.single_repeats, 20),
                                                   args.single_passes),
                 "ms_batched": 1e3 * batched / queries.shape[0],
                 "recall_at_10": recall_at_k(found, reference[q]),
                 "same_top_10": same_top_k(found, reference[q]), "build_s": build,
                 "index_mb": gallery_on.memory_bytes() / 2**20})
    print(rows[-1], flush=True)
  return rows


def engines_main(args) -> None:
  pinned = pin_to_one_core()
  sizes = [parse_size(s) for s in args.engine_sizes.split(",")]
  zipf_sizes = ([] if args.zipf_sizes == "none" else
                [parse_size(s) for s in args.zipf_sizes.split(",")] if args.zipf_sizes
                else sizes)
  sizes = sorted(set(sizes) | set(zipf_sizes))
  rng = np.random.default_rng(args.seed)
  cdf = term_law(args.zipf, args.seed)
  demo = demo_vectors(args.workdir) if args.workdir else None
  rows = []
  for n in sizes:
    if demo is not None:
      motions, texts, keywords, counts, words = demo
      keywords, counts = keywords[:args.queries], counts[:args.queries]
      query_sets = {"captions": texts[:args.queries], "keywords": keywords}
      for c in np.unique(counts):  # and apart by the number of keywords
        query_sets[f"keywords: {c} word{'s' if c > 1 else ''}"] = keywords[
            np.flatnonzero(counts == c)]
      rows += bench_engines("demo", augment(motions, n, rng), query_sets, args, words)
    if n not in zipf_sizes:
      continue
    zipf_gallery = sp.vstack([random_lexical_vectors(rng, min(BATCH * 10, n - s), args.nnz, cdf)
                              for s in range(0, n, BATCH * 10)], format="csr")
    rows += bench_engines("zipf", zipf_gallery, {
        "zipf": random_lexical_vectors(rng, args.queries, args.nnz, cdf)}, args)
    del zipf_gallery
  setup = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                      f"{platform.system()}", "cores": pinned, "numpy": np.__version__,
           "scipy": scipy.__version__, "seismic": _version("pyseismic-lsr"),
           "faiss": _version("faiss-cpu"), "jax": _version("jax"),
           "demo_workdir": args.workdir, "peak_rss_gb": peak_rss_gb()}
  for row in rows:
    row["measured"] = True
  if args.extrapolate_to:
    rows += extrapolate(rows, parse_size(args.extrapolate_to))
  text = engines_report(rows, setup)
  print("\n" + text)
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"setup": setup, "rows": rows}, indent=2) + "\n")
    args.json.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")


def extrapolate(rows: list[dict], size: int) -> list[dict]:
  """Rows at `size` items, straight lines through each (gallery, queries, engine, setting)'s
  two largest measured sizes for latency, build time and index size (all grow about linearly
  with the gallery), never below the larger size's figure (two noisy points can slope down);
  recall is not extrapolated. Labelled `measured: false` and `extrapolated` in `setting`."""
  out = []
  keys = ("ms_single_median", "ms_batched", "build_s", "index_mb")
  for group in sorted({(r["gallery"], r["queries"], r["engine"], r["setting"]) for r in rows}):
    measured = sorted((r for r in rows if (r["gallery"], r["queries"], r["engine"],
                                           r["setting"]) == group), key=lambda r: r["gallery_size"])
    if len(measured) < 2 or measured[-1]["gallery_size"] >= size:
      continue
    a, b = measured[-2], measured[-1]
    t = (size - a["gallery_size"]) / (b["gallery_size"] - a["gallery_size"])
    row = {**b, "gallery_size": size, "recall_at_10": None, "same_top_10": None,
           "measured": False,
           "setting": (b["setting"] + "," if b["setting"] else "") +
                      f"extrapolated from {a['gallery_size']:,} and {b['gallery_size']:,}"}
    for key in keys:
      row[key] = max(b[key], a[key] + t * (b[key] - a[key]))
    out.append(row)
  return out


def _version(package: str) -> str:
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return "not installed"


ENGINE_COLUMNS = ["gallery", "gallery_size", "queries", "engine", "setting", "clusters_share",
                  "keyword_index_share",
                  "ms_single_median", "ms_batched", "recall_at_10", "same_top_10", "build_s",
                  "index_mb"]


def engines_report(rows: list[dict], setup: dict) -> str:
  parts = ["# Search engines: exact index, approximate engine, device top-k", "",
           f"Machine: {setup['machine']}, {setup['cores']}; pyseismic-lsr {setup['seismic']}, "
           f"faiss-cpu {setup['faiss']}, jax {setup['jax']}, "
           f"scipy {setup['scipy']}. Top-{TOP_K}; recall@10 against the exact index on the "
           "same queries, and the share of queries whose top-10 is the exact index's "
           "(same_top_10); milliseconds per query; peak memory "
           f"{setup['peak_rss_gb']:.1f} GB.", "", markdown_table(rows, ENGINE_COLUMNS), ""]
  for (gallery, queries) in sorted({(r["gallery"], r["queries"]) for r in rows}):
    group = [r for r in rows if r["gallery"] == gallery and r["queries"] == queries
             and r["measured"]]
    largest = max(r["gallery_size"] for r in group)
    exact = next(r for r in group if r["engine"] == "exact" and r["gallery_size"] == largest)
    good = [r for r in group if r["engine"] == "approximate" and r["gallery_size"] == largest
            and r["recall_at_10"] >= 0.97]
    if good:
      best = min(good, key=lambda r: r["ms_single_median"])
      ratio = exact["ms_single_median"] / best["ms_single_median"]
      parts.append(f"- {gallery}/{queries} at {largest:,}: fastest setting with recall@10 ≥ "
                   f"0.97 is {best['setting']}: {best['ms_single_median']:.3f} ms "
                   f"(recall {best['recall_at_10']:.3f}), "
                   f"{ratio:.{0 if ratio >= 10 else 1}f}× the exact "
                   f"index's {exact['ms_single_median']:.1f} ms.")
    else:
      parts.append(f"- {gallery}/{queries} at {largest:,}: no setting reached recall@10 0.97.")
  return "\n".join(parts)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--sizes", default="10k,100k,1M",
                      help="comma-separated gallery sizes, e.g. 10k,100k")
  parser.add_argument("--queries", type=int, default=100)
  parser.add_argument("--nnz", type=int, default=100, help="distinct words per item")
  parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the word law")
  parser.add_argument("--kept", default="8,16,32,64,all", help="terms kept per item")
  parser.add_argument("--pruning-size", type=parse_size, default=None,
                      help="gallery of the pruning sweep (default: the largest size ≤ 100k)")
  parser.add_argument("--dense-max-gb", type=float, default=4.0,
                      help="largest dense (N, V) float32 gallery to try")
  parser.add_argument("--single-repeats", type=int, default=20,
                      help="queries timed one at a time")
  parser.add_argument("--single-passes", type=int, default=1, help="--engines: passes over "
                      "the queries timed one at a time; each counts at its fastest (the "
                      "committed results used 1)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(
      f"bench/results_search_{datetime.date.today().isoformat()}.md"),
                      help="Markdown results, and the same path with .json (default: a dated "
                      "file in bench/, so that the committed figures are never overwritten)")
  parser.add_argument("--engines", action="store_true",
                      help="compare the exact and approximate engines instead")
  parser.add_argument("--engine-sizes", default="1M", help="gallery sizes of --engines")
  parser.add_argument("--zipf-sizes", default="", help="sizes of --engines' zipf gallery "
                      "('' = --engine-sizes, 'none': the demo gallery only; its Seismic build "
                      "takes about 12 min at 1M)")
  parser.add_argument("--extrapolate-to", default="", help="--engines: add rows at this size "
                      "(e.g. 10M), extrapolated from the two largest measured, labelled so")
  parser.add_argument("--workdir", default="", help="a trained workdir whose motion vectors "
                      "make the `demo` gallery of --engines ('' = zipf only)")
  parser.add_argument("--scratch", default="/tmp/bench_search_engines",
                      help="where --engines saves the approximate indexes (to size them)")
  parser.add_argument("--device", action="store_true", help="--engines: also the compiled "
                      "batched top-k over the whole gallery (lexmo_jax.search.device_top_k) on "
                      "JAX's default devices (a GPU or TPU host's accelerators)")
  parser.add_argument("--json", type=pathlib.Path, default=None,
                      help="--engines: one row per (gallery, engine, setting) here, and .md")
  args = parser.parse_args(argv)
  if args.engines:
    engines_main(args)
    return
  sizes = [parse_size(s) for s in args.sizes.split(",")]
  kept = parse_kept(args.kept)
  if args.queries < 1:
    parser.error("--queries must be at least 1")
  pruning_size = args.pruning_size or max([s for s in sizes if s <= 100_000] or [min(sizes)])
  if pruning_size not in sizes:
    sizes = sorted(sizes + [pruning_size])

  cdf = term_law(args.zipf, args.seed)
  results = {"setup": {"machine": f"{platform.processor() or platform.machine()}, "
                                  f"{os.cpu_count()} CPUs, {platform.system()}",
                       "numpy": np.__version__, "scipy": scipy.__version__, "nnz": args.nnz,
                       "zipf": args.zipf, "queries": args.queries},
             "sizes": [], "pruning": [], "pruning_gallery": pruning_size}
  for n in sizes:
    row, index, batches, queries = bench_size(n, args, cdf)
    results["sizes"].append(row)
    print(f"gallery {n}: " + ", ".join(f"{k}={fmt(v)}" for k, v in row.items()
                                       if k != "gallery"), flush=True)
    if n == pruning_size:
      results["pruning"] = bench_pruning(batches, queries, index, kept)
    del index, batches, queries

  text = report(results)
  print("\n" + text)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(text)
  args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
  print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
  main()
