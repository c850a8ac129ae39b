"""The inverted index: exact agreement with dense search, pruning, streaming, files."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

from lexmo_jax.search import index as index_module
from lexmo_jax.search.index import InvertedIndex

V = 400


def sparse_vectors(rng, n, nnz=25, vocab=V):
  """Non-negative vectors whose words follow a Zipf-like law, as trained ones do."""
  p = 1.0 / np.arange(1, vocab + 1)
  p /= p.sum()
  out = np.zeros((n, vocab), np.float32)
  for i in range(n):
    terms = rng.choice(vocab, size=nnz, replace=False, p=p)
    out[i, terms] = np.log1p(rng.exponential(2.0, size=nnz))
  return out


def dense_search(gallery, queries, k, normalise=True):
  if normalise:
    gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-30)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
  scores = queries.astype(np.float64) @ gallery.astype(np.float64).T
  order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def gallery():
  rng = np.random.default_rng(0)
  vectors = sparse_vectors(rng, 300)
  ids = [f"{i:06d}" for i in range(300)]
  return vectors, ids, sparse_vectors(rng, 20)


def assert_same_ranking(index_ids, index_scores, ids, dense_idx, dense_scores):
  np.testing.assert_allclose(index_scores, dense_scores, rtol=1e-5, atol=1e-6)
  for row in range(dense_idx.shape[0]):
    s = dense_scores[row]
    for j in range(s.shape[0]):
      # Positions whose score is within float32 rounding of a neighbour are ties.
      gaps = [abs(s[j] - s[i]) for i in (j - 1, j + 1) if 0 <= i < s.shape[0]]
      if min(gaps, default=1.0) > 1e-5:
        assert index_ids[row, j] == ids[dense_idx[row, j]]


@pytest.mark.parametrize("normalise", [True, False])
def test_search_equals_dense_search(gallery, normalise):
  vectors, ids, queries = gallery
  index = InvertedIndex.build(vectors, ids, normalise=normalise)
  # Searching must use the posting arrays in place, not a copy of them.
  assert np.shares_memory(index._postings().indices, index.item_idx)
  got_ids, got_scores = index.search(queries, k=10)
  assert got_ids.shape == (20, 10) and got_scores.shape == (20, 10)
  assert got_scores.dtype == np.float32
  dense_idx, dense_scores = dense_search(vectors, queries, 10, normalise)
  assert_same_ranking(got_ids, got_scores, ids, dense_idx, dense_scores)


def test_search_in_small_score_blocks_gives_the_same_results(gallery, monkeypatch):
  vectors, ids, queries = gallery
  index = InvertedIndex.build(vectors, ids)
  expected = index.search(queries, k=10)
  monkeypatch.setattr(index_module, "_SCORE_BUDGET", 50)
  assert len(list(index._query_batches(index._prepare_queries(queries)[0]))) == 20
  for a, b in zip(index.search(queries, k=10), expected):
    np.testing.assert_array_equal(a, b)


def test_single_query_and_large_k(gallery):
  vectors, ids, queries = gallery
  index = InvertedIndex.build(vectors, ids)
  one_ids, one_scores = index.search(queries[3], k=5)
  assert one_ids.shape == (5,) and one_scores.shape == (5,)
  many_ids, many_scores = index.search(queries, k=5)
  np.testing.assert_array_equal(one_ids, many_ids[3])
  np.testing.assert_array_equal(one_scores, many_scores[3])
  all_ids, all_scores = index.search(queries[:2], k=1000)
  assert all_ids.shape == (2, 300)
  assert all(sorted(row) == sorted(ids) for row in all_ids.tolist())
  assert np.all(np.diff(all_scores, axis=1) <= 0)


def test_query_without_shared_words_gets_zero_scores():
  vectors = np.zeros((4, 10), np.float32)
  vectors[:, :3] = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
  index = InvertedIndex.build(vectors, ["a", "b", "c", "d"])
  query = np.zeros(10, np.float32)
  query[7] = 1.0
  got_ids, got_scores = index.search(query, k=3)
  assert got_ids.tolist() == ["a", "b", "c"]
  assert got_scores.tolist() == [0.0, 0.0, 0.0]
  # One shared word: the match comes first, then the zero-score filler in gallery order.
  query[2] = 1.0
  got_ids, got_scores = index.search(query, k=3)
  assert got_ids.tolist() == ["c", "a", "b"]
  assert got_scores[0] == pytest.approx(np.sqrt(0.5))


def test_equal_scores_follow_gallery_order():
  vectors = np.zeros((5, 6), np.float32)
  vectors[[0, 2, 4], 1] = 3.0
  vectors[[1, 3], 2] = 1.0
  index = InvertedIndex.build(vectors, ["v", "w", "x", "y", "z"])
  query = np.zeros(6, np.float32)
  query[1] = 1.0
  got_ids, _ = index.search(query, k=4)
  assert got_ids.tolist() == ["v", "x", "z", "w"]


def test_pruning_keeps_each_items_top_terms(gallery):
  vectors, ids, queries = gallery
  full = InvertedIndex.build(vectors, ids)
  pruned = InvertedIndex.build(vectors, ids, top_k_terms=5)
  nnz = np.count_nonzero(vectors, axis=1)
  assert full.num_postings == nnz.sum()
  assert pruned.num_postings == np.minimum(nnz, 5).sum()
  assert pruned.memory_bytes() < full.memory_bytes()
  unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  for item in (0, 17, 299):
    kept = pruned.item_vector(item)
    expected_terms = np.argsort(-unit[item], kind="stable")[:5]
    assert sorted(kept) == sorted(expected_terms.tolist())
    for term, weight in kept.items():
      assert weight == pytest.approx(unit[item, term], rel=1e-6)
  # Pruned search is the dense search over the pruned (not re-normalised) vectors.
  pruned_dense = np.zeros_like(unit)
  for item in range(unit.shape[0]):
    for term, weight in pruned.item_vector(item).items():
      pruned_dense[item, term] = weight
  q_unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
  got_ids, got_scores = pruned.search(queries, k=10)
  dense_idx, dense_scores = dense_search(pruned_dense, q_unit, 10, normalise=False)
  assert_same_ranking(got_ids, got_scores, ids, dense_idx, dense_scores)


def test_pruning_breaks_ties_by_lower_term_id():
  vectors = np.array([[0.0, 1.0, 2.0, 1.0, 1.0, 0.0]], np.float32)
  pruned = InvertedIndex.build(vectors, ["a"], top_k_terms=2, normalise=False)
  assert pruned.item_vector("a") == {2: 2.0, 1: 1.0}


def test_streaming_build_equals_one_shot(gallery):
  vectors, ids, _ = gallery
  whole = InvertedIndex.build(vectors, ids, top_k_terms=12)
  batches = [(vectors[:100], ids[:100]),
             (sp.csr_array(vectors[100:250]), ids[100:250]),
             (sp.coo_matrix(vectors[250:]), ids[250:])]
  streamed = InvertedIndex.build_from_batches(iter(batches), top_k_terms=12)
  for name in ("term_ptr", "item_idx", "weight", "ids"):
    np.testing.assert_array_equal(getattr(streamed, name), getattr(whole, name))
  assert np.all(np.diff(streamed.item_idx[streamed.term_ptr[5]:streamed.term_ptr[6]]) > 0)


def test_term_contributions_explain_the_score(gallery):
  vectors, ids, queries = gallery
  index = InvertedIndex.build(vectors, ids)
  got_ids, got_scores = index.search(queries[0], k=3)
  contributions = index.term_contributions(queries[0], str(got_ids[0]), top=1000)
  assert sum(c for _, c in contributions) == pytest.approx(float(got_scores[0]), rel=1e-5)
  assert [c for _, c in contributions] == sorted((c for _, c in contributions), reverse=True)
  item = int(got_ids[0])
  q_unit = queries[0] / np.linalg.norm(queries[0])
  g_unit = vectors[item] / np.linalg.norm(vectors[item])
  expected = q_unit * g_unit
  top = index.term_contributions(queries[0], item, top=3)
  assert [t for t, _ in top] == np.argsort(-expected, kind="stable")[:3].tolist()
  for term, value in top:
    assert value == pytest.approx(expected[term], rel=1e-5)


def test_save_load_round_trip(gallery, tmp_path):
  vectors, ids, queries = gallery
  index = InvertedIndex.build(vectors, ids, top_k_terms=10)
  folder = index.save(tmp_path / "gallery_index")
  meta = json.loads((folder / "index.json").read_text())
  assert meta["format_version"] == 2 and meta["top_k_terms"] == 10
  assert len(meta["files"]["postings"]["sha256"]) == 64
  loaded = InvertedIndex.load(folder)
  for name in ("term_ptr", "item_idx", "weight", "ids"):
    np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
  assert loaded.normalise and loaded.top_k_terms == 10
  assert loaded.memory_bytes() == index.memory_bytes()
  for a, b in zip(loaded.search(queries, k=7), index.search(queries, k=7)):
    np.testing.assert_array_equal(a, b)
  # A second save replaces the first generation's files.
  index.save(folder)
  assert len(list(folder.glob("postings-*.npz"))) == 1


def _postings_file(folder):
  return folder / json.loads((folder / "index.json").read_text())["files"]["postings"]["name"]


def test_load_errors_name_the_file(gallery, tmp_path):
  from lexmo_jax.search.store import IndexFormatError
  vectors, ids, _ = gallery
  with pytest.raises(FileNotFoundError, match="index.json is missing"):
    InvertedIndex.load(tmp_path / "nowhere")
  folder = InvertedIndex.build(vectors, ids).save(tmp_path / "idx")
  arrays = _postings_file(folder)
  good = arrays.read_bytes()
  arrays.write_bytes(good[: len(good) // 2])
  with pytest.raises(ValueError, match=f"{arrays.name} is corrupt: its size or SHA-256"):
    InvertedIndex.load(folder)
  arrays.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, one bit flipped
  with pytest.raises(ValueError, match=f"{arrays.name} is corrupt"):
    InvertedIndex.load(folder)
  arrays.write_bytes(good)

  meta_path = folder / "index.json"
  meta = json.loads(meta_path.read_text())
  meta_path.write_text(json.dumps({**meta, "format_version": 99}))
  with pytest.raises(IndexFormatError, match="index.json has format version 99"):
    InvertedIndex.load(folder)
  meta_path.write_text(json.dumps({**meta, "files": []}))
  with pytest.raises(ValueError, match="index.json is damaged: its 'files' is not a record"):
    InvertedIndex.load(folder)
  # A manifest may name only files of its own folder, whatever lies elsewhere.
  (tmp_path / arrays.name).write_bytes(good)
  for name in (f"../{arrays.name}", str(tmp_path / arrays.name), "index.json"):
    files = {"postings": {**meta["files"]["postings"], "name": name}}
    meta_path.write_text(json.dumps({**meta, "files": files}))
    with pytest.raises(ValueError, match="is damaged: file 'postings' is named .*not a file of"):
      InvertedIndex.load(folder)
  (tmp_path / "elsewhere.npz").write_bytes(good)
  arrays.unlink()
  arrays.symlink_to(tmp_path / "elsewhere.npz")
  meta_path.write_text(json.dumps(meta))
  with pytest.raises(ValueError, match=f"{arrays.name} is a symbolic link"):
    InvertedIndex.load(folder)
  arrays.unlink()
  arrays.write_bytes(good)
  meta_path.write_text(json.dumps({**meta, "format": "someone.else"}))
  with pytest.raises(IndexFormatError, match="describes a 'someone.else' index"):
    InvertedIndex.load(folder)
  meta_path.write_text("{not json")
  with pytest.raises(ValueError, match="index.json is not valid JSON"):
    InvertedIndex.load(folder)
  meta_path.write_text(json.dumps({**meta, "num_items": 5}))
  with pytest.raises(ValueError, match=f"{arrays.name} is inconsistent"):
    InvertedIndex.load(folder)
  arrays.unlink()
  meta_path.write_text(json.dumps(meta))
  with pytest.raises(FileNotFoundError, match=f"{arrays.name} is missing"):
    InvertedIndex.load(folder)


def test_a_save_killed_half_way_leaves_the_previous_index(gallery, tmp_path, monkeypatch):
  import os
  vectors, ids, queries = gallery
  old = InvertedIndex.build(vectors[:50], ids[:50])
  folder = old.save(tmp_path / "idx")

  def killed(*args, **kwargs):
    raise KeyboardInterrupt  # the process dies between writing the data and the manifest
  monkeypatch.setattr(os, "replace", killed)
  with pytest.raises(KeyboardInterrupt):
    InvertedIndex.build(vectors, ids).save(folder)
  monkeypatch.undo()
  loaded = InvertedIndex.load(folder)
  assert loaded.num_items == 50
  np.testing.assert_array_equal(loaded.search(queries, 5)[0], old.search(queries, 5)[0])
  InvertedIndex.build(vectors, ids).save(folder)  # the next save clears the leftovers
  assert len(list(folder.iterdir())) == 2 and InvertedIndex.load(folder).num_items == len(ids)


def test_a_save_deletes_only_the_index_s_own_files(gallery, tmp_path):
  # An index written into a folder that holds other files leaves them be, whatever their
  # names; only the previous generation and leftovers of interrupted saves go.
  vectors, ids, _ = gallery
  folder = tmp_path / "shared_folder"
  folder.mkdir()
  others = ["mywork.tmp", "holiday-0123456789ab.jpg", "notes.txt"]
  for name in others:
    (folder / name).write_text("keep me")
  index = InvertedIndex.build(vectors, ids)
  first = _postings_file(index.save(folder))
  (folder / "postings-0123456789ab.npz").write_bytes(b"half")  # an interrupted save's file
  (folder / "index.json.0123456789ab.tmp").write_text("{")
  second = _postings_file(index.save(folder))
  assert sorted(p.name for p in folder.iterdir()) == sorted(others + ["index.json",
                                                                        second.name])
  assert first != second and all((folder / n).read_text() == "keep me" for n in others)
  with pytest.raises(ValueError, match="notes.txt is a file, not an index folder"):
    index.save(folder / "notes.txt")


def test_bad_gallery_and_queries_are_named(gallery):
  vectors, ids, _ = gallery
  with pytest.raises(ValueError, match="negative weights"):
    InvertedIndex.build(-vectors[:3], ids[:3])
  bad = vectors[:3].copy()
  bad[1, 0] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    InvertedIndex.build(bad, ids[:3])
  with pytest.raises(ValueError, match="3 vectors but 2 ids"):
    InvertedIndex.build(vectors[:3], ids[:2])
  with pytest.raises(ValueError, match="'a' appears more than once"):
    InvertedIndex.build_from_batches([(vectors[:2], ["a", "b"]), (vectors[2:3], ["a"])])
  with pytest.raises(ValueError, match=r"must be a \(N, V\) matrix"):
    InvertedIndex.build(vectors[0], ids[:1])
  with pytest.raises(ValueError, match="gallery batch 1 has 7 vocabulary columns"):
    InvertedIndex.build_from_batches([(vectors[:2], ["a", "b"]), (np.ones((1, 7)), ["c"])])
  with pytest.raises(ValueError, match="top_k_terms"):
    InvertedIndex.build(vectors, ids, top_k_terms=0)
  index = InvertedIndex.build(vectors, ids)
  with pytest.raises(ValueError, match="query vectors have 9 vocabulary columns"):
    index.search(np.ones((2, 9)))
  with pytest.raises(ValueError, match="k must be at least 1"):
    index.search(vectors[:1], k=0)
  with pytest.raises(KeyError, match="no gallery item has id 'zzz'"):
    index.term_contributions(vectors[0], "zzz")
  with pytest.raises(IndexError, match="outside the gallery"):
    index.term_contributions(vectors[0], 300)


def _bench_module():
  spec = importlib.util.spec_from_file_location(
      "bench_search", pathlib.Path(__file__).resolve().parents[1] / "bench" / "bench_search.py")
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  return bench


def test_benchmark_script_runs_small(tmp_path):
  bench = _bench_module()
  out = tmp_path / "results.md"
  bench.main(["--sizes", "1k,2k", "--queries", "4", "--nnz", "20", "--kept", "4,all",
              "--single-repeats", "2", "--dense-max-gb", "0.2", "--out", str(out)])
  results = json.loads(out.with_suffix(".json").read_text())
  small, large = results["sizes"]
  assert small["dense"] == "run" and small["index_agrees_with_dense_at_10"] == 1.0
  assert large["dense"].startswith("skipped")
  assert [r["kept_terms"] for r in results["pruning"]] == [4, "all"]
  assert results["pruning"][-1]["recall_at_10"] == 1.0
  assert "## Recall@10 of pruned indexes (gallery 2000)" in out.read_text()


def test_engine_benchmark_writes_the_issue_s_row_keys(tmp_path, monkeypatch):
  bench = _bench_module()
  monkeypatch.setattr(bench, "pin_to_one_core", lambda: "not pinned (test)")  # this process
  out = tmp_path / "engines.json"
  bench.main(["--engines", "--engine-sizes", "1k,2k", "--extrapolate-to", "10k", "--queries",
              "5", "--nnz", "20", "--single-repeats", "2", "--device", "--scratch",
              str(tmp_path / "scratch"), "--json", str(out)])
  rows = json.loads(out.read_text())["rows"]
  keys = {"gallery_size", "engine", "ms_single_median", "ms_batched", "recall_at_10",
          "build_s", "index_mb"}
  assert all(keys <= set(r) for r in rows)
  measured = [r for r in rows if r["gallery_size"] == 2000]
  assert {r["engine"] for r in measured} == {"exact", "approximate", "device top-k"}
  # The compiled top-k is exact: the exact index's top-10 on every query.
  assert all(r["recall_at_10"] == 1.0 for r in measured if r["engine"] == "device top-k")
  assert all("extrapolated from 1,000 and 2,000" in r["setting"] and r["recall_at_10"] is None
             and r["measured"] is False for r in rows if r["gallery_size"] == 10000)
  assert all(r["measured"] is True for r in rows if r["gallery_size"] < 10000)
  assert "device top-k" in out.with_suffix(".md").read_text()


def test_a_failed_save_is_named_and_keeps_the_previous_index(gallery, tmp_path, monkeypatch):
  import errno
  vectors, ids, _ = gallery
  folder = InvertedIndex.build(vectors[:50], ids[:50]).save(tmp_path / "idx")

  def full_disk(path, **arrays):
    with open(path, "wb") as f:
      f.write(b"half")
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(np, "savez", full_disk)
  with pytest.raises(OSError, match=r"cannot write the index .*idx: No space left on device "
                                    r"\([\d.]+ MB free there\); the index saved before"):
    InvertedIndex.build(vectors, ids).save(folder)
  monkeypatch.undo()
  assert InvertedIndex.load(folder).num_items == 50 and len(list(folder.iterdir())) == 2
