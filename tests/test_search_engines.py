"""The search engines: the approximate one (Seismic and the cluster probe) against the exact index on the trained
demo's gallery and on random galleries, items added without a rebuild, durable saves, and the
command's --engine."""
import json

import numpy as np
import pytest
import scipy.sparse as sp

from lexmo_jax.inference import LexicalModel
from lexmo_jax.search import approximate, cli, engines, store
from lexmo_jax.search import gallery as gallery_lib
from lexmo_jax.search.approximate import ApproximateIndex, ApproximateSettings
from lexmo_jax.search.gallery import Gallery, keyword_query
from lexmo_jax.search.index import InvertedIndex

V = 300


def _random_gallery(n, seed=0, nnz=24):
  rng = np.random.default_rng(seed)
  p = 1.0 / np.arange(1, V + 1)
  p /= p.sum()
  dense = np.zeros((n, V), np.float32)
  for row in dense:
    terms = rng.choice(V, nnz, replace=False, p=p)
    row[terms] = rng.lognormal(0, 1, nnz)
  return dense, [f"m{i}" for i in range(n)]


@pytest.fixture(scope="module")
def model(chain):
  return LexicalModel.from_workdir(chain["lexcmlp"])


@pytest.fixture(scope="module")
def galleries(chain, model, tmp_path_factory):
  root = tmp_path_factory.mktemp("engines")
  exact = Gallery.open(chain["lexcmlp"], "train", str(root / "exact"), model=model,
                       engine="exact")
  approx = Gallery.open(chain["lexcmlp"], "train", str(root / "approximate"), model=model,
                        engine="approximate")
  return exact, approx


def test_keyword_queries_keep_their_top_10_through_the_approximate_engine(galleries):
  exact, approx = galleries
  assert exact.engine == "exact" and approx.engine == "approximate"
  words = sorted({w for p in exact.pairs.values() for c in p.captions for w in c.split()
                  if w.isalpha() and len(w) > 2})
  queries = [[w] for w in words] + [[a, b] for a, b in zip(words, words[1:])]
  queries.append(["run", "jump"])
  same, asked = 0, 0
  for keywords in queries:
    try:
      vector = keyword_query(exact.model.tokenizer, keywords)
    except ValueError:
      continue  # not a word of the vocabulary
    asked += 1
    a = [h.item_id for h in exact.search_vector(vector, 10)]
    hits = approx.search_vector(vector, 10, keywords=True)
    assert approx.answered_by == "approximate engine (keyword index)"
    same += a == [h.item_id for h in hits]
    for hit in hits:  # each hit still shows the words that made it
      if hit.score > 0:
        assert hit.words and sum(c for _, c in hit.words) <= hit.score + 1e-5
  assert asked > 50 and same / asked >= 0.97, (same, asked)


def test_caption_queries_find_exact_searchs_top_10(galleries, model):
  exact, approx = galleries
  captions = [p.captions[0] for p in list(exact.pairs.values())[:60]]
  vectors = model.encode_texts(captions)
  # Sentence-length queries go to the cluster probe, keyword-length ones to Seismic.
  routes = [approx.index.route(int((v > 0).sum())) for v in vectors]
  assert approx.index.probe is not None and routes.count("clusters") > len(routes) // 2
  e_ids, e_scores = exact.index.search(vectors, 10)
  a_ids, a_scores = approx.index.search(vectors, 10)
  recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(a_ids, e_ids)])
  assert recall >= 0.97, recall
  # The scores of what it finds are exact.
  np.testing.assert_allclose(a_scores[:, 0], e_scores[:, 0], atol=1e-5)


def test_items_are_added_without_a_rebuild_and_survive_a_save(tmp_path, monkeypatch):
  dense, ids = _random_gallery(600)
  queries = _random_gallery(20, seed=1, nnz=6)[0]
  index = ApproximateIndex.build(dense[:400], ids[:400])

  def no_build(*args, **kwargs):
    raise AssertionError("adding items must not rebuild the Seismic index")
  from lexmo_jax.search import approximate
  with monkeypatch.context() as m:
    m.setattr(approximate, "_build_seismic", no_build)
    index.add(dense[400:], ids[400:])
    assert index.num_items == 600 and index.num_indexed == 400
    folder = index.save(tmp_path / "idx")
    loaded = engines.load_index(folder)
  reference = InvertedIndex.build(dense, ids)
  e_ids, _ = reference.search(queries, 10)
  for found in (index.search(queries, 10)[0], loaded.search(queries, 10)[0]):
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, e_ids)]) >= 0.97
  assert "m599" in {i for row in loaded.search(dense[599:600] * 10, 1)[0] for i in row}
  with pytest.raises(ValueError, match="'m5' appears more than once"):
    loaded.add(dense[:1], ["m5"])
  loaded.save(folder, compact=True)
  assert engines.load_index(folder).num_indexed == 600


def test_a_damaged_or_foreign_index_is_named(tmp_path):
  dense, ids = _random_gallery(200)
  folder = ApproximateIndex.build(dense, ids).save(tmp_path / "idx")
  meta = json.loads((folder / store.MANIFEST).read_text())
  seismic_file = folder / meta["files"]["seismic"]["name"]
  data = seismic_file.read_bytes()
  seismic_file.write_bytes(data[: len(data) - 100])
  with pytest.raises(ValueError, match=f"{seismic_file.name} is corrupt"):
    engines.load_index(folder)
  # Cut short with its record edited to match: Seismic's own error, under the file's name.
  meta["files"]["seismic"].update(bytes=seismic_file.stat().st_size,
                                  sha256=store.sha256(seismic_file))
  (folder / store.MANIFEST).write_text(json.dumps(meta))
  with pytest.raises(ValueError, match=f"{seismic_file.name} is corrupt or not a Seismic index"):
    engines.load_index(folder)
  # Another gallery's files, their records edited to match: refused by what they hold.
  seismic_file.write_bytes(data)
  original = json.loads((folder / store.MANIFEST).read_text().replace(
      json.dumps(meta["files"]["seismic"]["sha256"]), json.dumps(store.sha256(seismic_file))))
  original["files"]["seismic"]["bytes"] = len(data)
  other = ApproximateIndex.build(*_random_gallery(120, seed=1)).save(tmp_path / "other")
  theirs = json.loads((other / store.MANIFEST).read_text())["files"]
  for key, message in (("seismic", "it holds 120 items, 200 are indexed"),
                       ("keywords", "it holds 120 items"), ("clusters", "it holds 120 items")):
    mine = folder / original["files"][key]["name"]
    saved = mine.read_bytes()
    mine.write_bytes((other / theirs[key]["name"]).read_bytes())
    meta = json.loads(json.dumps(original))
    meta["files"][key].update(bytes=theirs[key]["bytes"], sha256=theirs[key]["sha256"])
    (folder / store.MANIFEST).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"{mine.name} is inconsistent with .*{message}"):
      engines.load_index(folder)
    mine.write_bytes(saved)
  (folder / store.MANIFEST).write_text(json.dumps(original))
  assert engines.load_index(folder).num_items == 200
  folder = ApproximateIndex.build(dense, ids).save(tmp_path / "replaced")
  meta = json.loads((folder / store.MANIFEST).read_text())
  for key, what in (("keywords", "a keyword index"), ("clusters", "a cluster index")):
    replaced = folder / meta["files"][key]["name"]
    saved = replaced.read_bytes()
    with open(replaced, "wb") as f:  # a plain array where the archive or bytes should be
      np.save(f, np.zeros((3, 2)))
    meta["files"][key].update(bytes=replaced.stat().st_size, sha256=store.sha256(replaced))
    (folder / store.MANIFEST).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"{replaced.name} is corrupt or not {what}"):
      engines.load_index(folder)
    replaced.write_bytes(saved)
    meta["files"][key].update(bytes=replaced.stat().st_size, sha256=store.sha256(replaced))
  (folder / store.MANIFEST).write_text(json.dumps(meta))
  engines.load_index(folder)  # restored
  folder = ApproximateIndex.build(dense, ids).save(tmp_path / "edited")
  original = json.loads((folder / store.MANIFEST).read_text())
  for edit, message in ((lambda m: m.pop("num_indexed"), "is damaged .KeyError"),
                        (lambda m: m["settings"].update(speed=9), "is damaged .TypeError"),
                        (lambda m: m.update(num_indexed=5000), "5000 items indexed of 200"),
                        (lambda m: m.update(vocab_size=10), "outside its vocabulary of 10"),
                        (lambda m: m["files"].update(vectors="x"), "record of file 'vectors'"),
                        (lambda m: m.pop("built_with"), "is damaged .KeyError: 'built_with'"),
                        (lambda m: m["built_with"].update(doc_cut="15"), "not a number"),
                        (lambda m: m["files"].pop("clusters"), "and no cluster index file"),
                        (lambda m: m["built_with"].update(clusters=3), "in 3$")):
    meta = json.loads(json.dumps(original))
    edit(meta)
    (folder / store.MANIFEST).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
      engines.load_index(folder)
  (tmp_path / "foreign").mkdir()
  (tmp_path / "foreign" / store.MANIFEST).write_text("[1, 2, 3]")
  with pytest.raises(ValueError, match="index.json is not an index manifest"):
    engines.load_index(tmp_path / "foreign")
  (tmp_path / "foreign" / store.MANIFEST).write_text('{"format": "faiss"}')
  with pytest.raises(store.IndexFormatError, match="describes a 'faiss' index"):
    engines.load_index(tmp_path / "foreign")
  with pytest.raises(FileNotFoundError, match="is not a saved index"):
    engines.load_index(tmp_path / "nothing")


def test_cluster_probe_finds_long_queries_top_10_and_is_left_out_for_wide_vocabularies(
    tmp_path):
  rng = np.random.default_rng(3)
  centres = _random_gallery(40, seed=2)[0]
  dense = np.repeat(centres, 25, axis=0) * rng.lognormal(0, 0.2, (1000, V)).astype(np.float32)
  ids = [f"m{i}" for i in range(1000)]
  queries = centres[:20] * rng.lognormal(0, 0.3, (20, V)).astype(np.float32)
  index = ApproximateIndex.build(dense, ids, ApproximateSettings(clusters=16, probes=4))
  assert index.probe.num_clusters == 16 and index.route(24) == "clusters"
  assert index.route(3) == "seismic"
  index.search(queries[0], 10)
  assert index.last_route == "clusters"
  # Asked as keywords but not whole words at one weight: Seismic, however many forms.
  index.search(queries[0], 10, keywords=True)
  assert index.last_route == "seismic"
  e_ids, e_scores = InvertedIndex.build(dense, ids).search(queries, 10)
  loaded = engines.load_index(index.save(tmp_path / "idx"))
  for found, scores in (index.search(queries, 10), loaded.search(queries, 10)):
    assert np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, e_ids)]) >= 0.97
    np.testing.assert_allclose(scores[:, 0], e_scores[:, 0], atol=1e-5)
  meta = json.loads((tmp_path / "idx" / store.MANIFEST).read_text())
  cluster_file = tmp_path / "idx" / meta["files"]["clusters"]["name"]
  cluster_file.write_bytes(cluster_file.read_bytes()[:-64])
  with pytest.raises(ValueError, match=cluster_file.name):
    engines.load_index(tmp_path / "idx")
  wide = ApproximateIndex.build(dense, ids, ApproximateSettings(probe_max_words=20))
  assert wide.probe is None and wide.route(24) == "seismic"
  assert "clusters" not in json.loads(
      (wide.save(tmp_path / "wide") / store.MANIFEST).read_text())["files"]


def test_one_query_is_read_as_in_a_batch():
  dense, ids = _random_gallery(300)
  index = ApproximateIndex.build(dense, ids)
  q = dense[7] * 3
  batch_ids, batch_scores = index.search(np.stack([q, dense[8]]), 5)
  for one in (q, sp.csr_array(q[None, :]), sp.csr_matrix(q[None, :])):
    found, scores = index.search(one, 5)
    np.testing.assert_array_equal(np.reshape(found, -1), batch_ids[0])
    np.testing.assert_allclose(np.reshape(scores, -1), batch_scores[0], rtol=1e-6)
  for bad, message in ((np.full(V, np.nan), "NaN or infinite"), (-q, "negative weights"),
                       (q[:-1], "vocabulary columns"),
                       (sp.csr_array(-q[None, :]), "negative weights")):
    with pytest.raises(ValueError, match=message):
      index.search(bad, 5)
  assert index.search(np.zeros(V), 3)[1].tolist() == [0, 0, 0]


def test_scores_are_exact_for_empty_motions_and_for_the_filler():
  dense, ids = _random_gallery(200)
  index = ApproximateIndex.build(dense, ids)
  # An added motion without words after one with words: the latter's score stays whole.
  index.add(np.stack([dense[7] * 2, np.zeros(V, np.float32)]), ["copy", "blank"])
  found, scores = index.search(dense[7], 2)
  assert set(found) == {"m7", "copy"} and np.allclose(scores, 1.0, atol=1e-6)
  # Too few postings kept to find k matches: the items that fill the list are scored
  # exactly as well, and the list is the exact index's.
  thin = ApproximateIndex.build(dense, ids, ApproximateSettings(n_postings=1, clusters=1))
  query = np.zeros(V, np.float32)
  query[0] = 1.0  # the commonest word
  found, scores = thin.search(query, 10)
  e_ids, e_scores = InvertedIndex.build(dense, ids).search(query, 200)
  expected = {i: sc for i, sc in zip(e_ids, e_scores)}
  assert np.allclose(scores, [expected[i] for i in found], atol=1e-6)
  assert list(scores) == sorted(scores, reverse=True)


def test_engine_choice_and_settings():
  assert engines.resolve_engine("auto", engines.AUTO_APPROXIMATE_FROM - 1) == "exact"
  assert engines.resolve_engine("auto", engines.AUTO_APPROXIMATE_FROM) == "approximate"
  with pytest.raises(ValueError, match="'faiss' is not one of exact, approximate, auto"):
    engines.resolve_engine("faiss", 10)
  with pytest.raises(ValueError, match="heap_factor must lie in"):
    ApproximateSettings(heap_factor=1.5)
  with pytest.raises(ValueError, match=r"summary_energy must lie in \[0, 1\] \(0: chosen"):
    ApproximateSettings(summary_energy=-0.1)
  # 0 (the default): the summaries keep more of a block over few words, whose lists are long.
  chosen = {few: approximate.seismic_energy(ApproximateSettings(), few) for few in (True, False)}
  assert chosen == {True: approximate.ENERGY_FEW_WORDS, False: approximate.ENERGY_MANY_WORDS}
  assert approximate.seismic_energy(ApproximateSettings(summary_energy=0.5), True) == 0.5
  with pytest.raises(ValueError, match="probes must be at least 1"):
    ApproximateSettings(probes=0)
  with pytest.raises(ValueError, match="--clusters=40 is too many for 50 motions"):
    ApproximateIndex.build(*_random_gallery(50), ApproximateSettings(clusters=40))
  dense, ids = _random_gallery(50)
  with pytest.raises(ValueError, match="prunes the exact index"):
    engines.build_index(dense, ids, "approximate", top_k_terms=8)
  one = ApproximateIndex.build(dense, ids)
  found, scores = one.search(sp.csr_array(dense[3:4]), 5)
  assert found[0][0] == "m3" and scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_the_manifest_records_the_values_the_gallery_chose(tmp_path):
  dense, ids = _random_gallery(60)
  index = ApproximateIndex.build(dense, ids, ApproximateSettings(doc_cut=7))
  meta = json.loads((index.save(tmp_path / "idx") / store.MANIFEST).read_text())
  assert meta["settings"]["n_postings"] == 0 and meta["settings"]["summary_energy"] == 0
  assert meta["built_with"] == {"n_postings": approximate.POSTINGS_FEW_WORDS,
                                "centroid_fraction": 0.1,
                                "summary_energy": approximate.ENERGY_FEW_WORDS, "doc_cut": 7,
                                "clusters": index.probe.num_clusters}
  assert index.probe.num_clusters == 1  # 0 chose it: 60 motions fill one cluster
  assert engines.load_index(tmp_path / "idx").built_with == meta["built_with"]


def test_a_rebuild_names_what_changed():
  before = {"split": "test", "contents": "a" * 64, "build": {"n_postings": 0, "clusters": 0}}
  now = {"split": "test", "contents": "b" * 64, "build": {"n_postings": 2000, "clusters": 0}}
  assert gallery_lib._changes(before, now) == [  # pylint: disable=protected-access
      "build.n_postings 0 → 2000", "contents changed"]


def test_command_says_which_engine_answered(chain, tmp_path, capsys):
  request = cli.SearchRequest(workdir=str(chain["lexcmlp"]), keywords="run,jump", split="test",
                              k=3, index=str(tmp_path / "idx"), engine="approximate")
  cli.run(request)
  out = capsys.readouterr().out
  assert "answered by the approximate engine (keyword index) in" in out
  request.keywords, request.query = None, "a person walks forward and then jumps up high"
  cli.run(request)
  assert "answered by the approximate engine (cluster probe) in" in capsys.readouterr().out
  # Too many clusters for the split is refused before the saved index is touched.
  saved = (tmp_path / "idx" / store.MANIFEST).read_bytes()
  request.seismic = ApproximateSettings(clusters=10_000)
  with pytest.raises(ValueError, match="--clusters=10000 is too many for"):
    cli.run(request)
  assert (tmp_path / "idx" / store.MANIFEST).read_bytes() == saved
  with pytest.raises(ValueError, match="is not one of exact, approximate, auto"):
    cli.run(cli.SearchRequest(workdir=str(chain["lexcmlp"]), keywords="run", engine="fast"))


class _no_encoding:  # pylint: disable=invalid-name
  """A model whose motions must not be encoded."""

  def __init__(self, model):
    self._model = model

  def __getattr__(self, name):
    if name.startswith("encode"):
      raise AssertionError(f"{name} was called")
    return getattr(self._model, name)


def test_the_command_never_replaces_an_index_it_did_not_build(chain, model, tmp_path):
  dense, ids = _random_gallery(40, nnz=8)
  library = tmp_path / "library"
  ApproximateIndex.build(np.pad(dense, ((0, 0), (0, 30522 - V))), ids).save(library)
  before = sorted(p.name for p in library.iterdir())
  with pytest.raises(ValueError, match="the search command did not build"):
    Gallery.open(chain["lexcmlp"], "test", str(library), model=model)
  assert sorted(p.name for p in library.iterdir()) == before
  # A file given as the index folder is refused before the motions are encoded.
  (tmp_path / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="notes.txt is a file, not an index folder"):
    Gallery.open(chain["lexcmlp"], "test", str(tmp_path / "notes.txt"),
                 model=_no_encoding(model))
  (library / store.MANIFEST).write_text("{damaged")
  with pytest.raises(ValueError, match="index.json is not valid JSON"):
    Gallery.open(chain["lexcmlp"], "test", str(library), model=model)


def test_an_index_the_command_wrote_in_an_older_format_is_rebuilt(chain, model, tmp_path):
  folder = tmp_path / "idx"
  Gallery.open(chain["lexcmlp"], "test", str(folder), model=model, engine="approximate")
  manifest = folder / store.MANIFEST
  meta = json.loads(manifest.read_text())
  manifest.write_text(json.dumps({**meta, "format_version": meta["format_version"] - 1}))
  gallery = Gallery.open(chain["lexcmlp"], "test", str(folder), model=model,
                         engine="approximate")
  assert json.loads(manifest.read_text())["format_version"] == meta["format_version"]
  gallery.search_keywords(["walk"], 3)
  assert gallery.answered_by == "approximate engine (keyword index)"
