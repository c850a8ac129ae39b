"""The search command: an inverted index over a split's motions, queried by text, keywords or
a motion file; its ranking is the dense similarity ranking."""
import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from lexmo_jax.evaluate import similarity
from lexmo_jax.inference import LexicalModel, MotionFileError
from lexmo_jax.search import cli
from lexmo_jax.search.gallery import Gallery
from lexmo_jax.search.index import InvertedIndex



@pytest.fixture(scope="module")
def model(chain):
  return LexicalModel.from_workdir(chain["lexcmlp"])


@pytest.fixture(scope="module")
def gallery(chain, model, tmp_path_factory):
  index = tmp_path_factory.mktemp("index") / "train"
  return Gallery.open(chain["lexcmlp"], "train", str(index), model=model)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
  """Index folder of the command runs, shared so that only the first one builds it."""
  return str(tmp_path_factory.mktemp("cli_index") / "train")


@pytest.fixture(scope="module")
def split_vectors(gallery, model):
  """Caption and motion lexical vectors of the gallery's split, in split order."""
  pairs = list(gallery.pairs.values())
  return [p.item_id for p in pairs], model.encode_eval_batches(
      model.eval_batches(pairs, *model.normalisation()))


def test_index_search_equals_brute_force_similarity(gallery, split_vectors):
  ids, vectors = split_vectors
  assert gallery.index.ids.tolist() == ids
  dense = similarity(vectors["text"], vectors["motion"])
  n = len(ids)
  found_ids, found_scores = gallery.index.search(vectors["text"], k=n)
  for q in range(n):
    positions = [ids.index(i) for i in found_ids[q]]
    # Every returned score is that item's dense similarity, and the list is the dense
    # ranking: its scores are the dense scores sorted (equal scores may swap places).
    np.testing.assert_allclose(found_scores[q], dense[q, positions], atol=1e-5)
    np.testing.assert_allclose(found_scores[q], np.sort(dense[q])[::-1], atol=1e-5)
    gaps = np.diff(np.sort(dense[q])[::-1])
    distinct = np.concatenate([[True], gaps < -1e-4]) & np.concatenate([gaps < -1e-4, [True]])
    np.testing.assert_array_equal(np.asarray(positions)[distinct],
                                  np.argsort(-dense[q], kind="stable")[distinct])


def test_index_is_saved_reused_and_rebuilt_when_pruning_changes(chain, model, tmp_path,
                                                                monkeypatch, caplog):
  folder = tmp_path / "index"
  first = Gallery.open(chain["lexcmlp"], "test", str(folder), model=model)
  from lexmo_jax.search import store
  assert store.peek(folder)["source"]["split"] == "test" and first.engine == "exact"

  def no_build(*args, **kwargs):
    raise AssertionError("the saved index should have been loaded")
  with monkeypatch.context() as m:
    m.setattr(InvertedIndex, "build", no_build)
    again = Gallery.open(chain["lexcmlp"], "test", str(folder), model=model)
  np.testing.assert_array_equal(again.index.weight, first.index.weight)
  with caplog.at_level("INFO"):
    pruned = Gallery.open(chain["lexcmlp"], "test", str(folder), top_k_terms=8, model=model)
  assert "is out of date (top_k_terms None → 8): rebuilding it" in caplog.text
  assert pruned.index.top_k_terms == 8
  assert np.diff(pruned.index.term_ptr).sum() <= 8 * pruned.index.num_items


def test_index_is_rebuilt_when_the_split_s_contents_change(chain, model, tmp_path, monkeypatch,
                                                          caplog):
  import dataclasses
  import logging
  from lexmo_jax.search import gallery as gallery_module
  from lexmo_jax.search import store
  folder = tmp_path / "index"
  Gallery.open(chain["lexcmlp"], "test", str(folder), model=model)
  before = store.peek(folder)["source"]["contents"]
  real = gallery_module.data_lib.load_split

  def edited(config, split):  # the same path, one motion's features changed on disk
    data = real(config, split)
    first = dataclasses.replace(data.pairs[0], motion=data.pairs[0].motion + 0.5)
    return dataclasses.replace(data, pairs=[first] + list(data.pairs[1:]))
  monkeypatch.setattr(gallery_module.data_lib, "load_split", edited)
  with caplog.at_level(logging.INFO, logger="lexmo_jax.search"):
    Gallery.open(chain["lexcmlp"], "test", str(folder), model=model)
  assert "is out of date (contents changed): rebuilding it" in caplog.text
  assert store.peek(folder)["source"]["contents"] != before


def test_text_query_prints_ranked_hits_with_their_words(chain, gallery, cli_index, capsys):
  request = cli.SearchRequest(workdir=str(chain["lexcmlp"]), query="a person runs then jumps",
                              split="train", k=3, index=cli_index)
  hits = cli.run(request)
  out = capsys.readouterr().out
  assert [h.rank for h in hits] == [1, 2, 3]
  assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
  for hit in hits:
    assert f"{hit.item_id}  score {hit.score:.4f}" in out
    assert hit.caption == gallery.pairs[hit.item_id].captions[0] and hit.caption in out
    assert 0 < len(hit.words) <= 5
    assert sum(c for _, c in hit.words) <= hit.score + 1e-5
    # Forms of one word are one entry ("jumps/jump"), each form a word of the vocabulary.
    assert all(form in gallery.model.vocab for w, _ in hit.words for form in w.split("/"))


def test_keywords_rank_by_the_motions_weights_on_those_words(gallery, split_vectors, capsys):
  ids, vectors = split_vectors
  result = gallery.search_keywords(["Walk", "jump", "zzqx"], k=len(ids))
  assert result.used == ["walk", "jump"] and result.unknown == ["zzqx"]
  # Each keyword brings its other forms (same stem): walk, walks, walking, jump, jumps...
  from lexmo_jax.search.gallery import keyword_ids
  word_ids, _, _ = keyword_ids(gallery.model.tokenizer, ["Walk", "jump"])
  forms = {gallery.model.vocab[i] for i in word_ids}
  assert {"walk", "walks", "walking", "jump", "jumps", "jumping"} <= forms
  assert set(result.forms["walk"]) | set(result.forms["jump"]) == forms  # as searched
  unit = vectors["motion"] / np.linalg.norm(vectors["motion"], axis=1, keepdims=True)
  expected = unit[:, word_ids].sum(1) / np.sqrt(len(word_ids))
  scores = np.array([h.score for h in result.hits])
  # Every motion with a weight on a form is a hit, best first; the others are none.
  np.testing.assert_allclose(scores, np.sort(expected[expected > 0])[::-1], atol=1e-5)
  for hit in result.hits:
    # Each keyword's forms contributed as one word: at most two entries, walk's and jump's.
    assert {form for w, _ in hit.words for form in w.split("/")} <= forms
    assert 1 <= len(hit.words) <= 2, hit
  with pytest.raises(ValueError, match="none of the keywords zzqx, cartwheelz is a word"):
    gallery.search_keywords(["zzqx", "cartwheelz"])
  # A word the vocabulary splits into pieces is refused with its pieces and the way to it.
  with pytest.raises(ValueError, match=r"counterclockwise is counter \+ ##cl \+ ##ock \+ ##wise\)"
                     r": search such a word in a sentence with --query"):
    gallery.search_keywords(["counterclockwise"])


def test_results_go_to_a_json_file_and_only_matches_are_hits(chain, gallery, cli_index,
                                                              tmp_path, capsys):
  out = tmp_path / "results" / "hits.json"
  request = cli.SearchRequest(workdir=str(chain["lexcmlp"]), keywords="walk,zzqx",
                              split="train", k=3, index=cli_index, json=str(out))
  hits = cli.run(request)
  printed = capsys.readouterr().out
  assert f"results written to {out}" in printed
  record = json.loads(out.read_text())
  assert record["keywords"] == ["walk"] and record["unknown"] == ["zzqx"]
  # The forms each keyword searched, printed and recorded.
  assert {"walk", "walks", "walking"} <= set(record["forms"]["walk"])
  assert "keywords: walk (" + ", ".join(record["forms"]["walk"]) + ")" in printed
  assert record["engine"] == "exact" and record["answered_by"] == "exact engine"
  assert record["gallery_size"] == len(gallery.pairs) and record["ms"] > 0
  assert record["hits"] == [
      {"rank": h.rank, "item_id": h.item_id, "score": h.score, "caption": h.caption,
       "words": [[w, c] for w, c in h.words]} for h in hits]
  # Asked for more than the gallery holds: only the motions with a form of "walk" come
  # back, and the command says how many matched.
  hits = cli.run(dataclasses.replace(request, k=10_000, json=""))
  printed = capsys.readouterr().out
  assert hits and all(h.score > 0 and h.words for h in hits)
  said = (f"only {len(hits)} of the {len(gallery.pairs)} motions share a word with the query"
          in printed)
  assert said == (len(hits) < len(gallery.pairs)), printed
  with pytest.raises(ValueError, match=f"--json {tmp_path} is a folder; give the path of a file"):
    cli.run(dataclasses.replace(request, json=str(tmp_path)))
  with pytest.raises(ValueError, match=f"{out} is a file, not a folder"):  # refused up front
    cli.run(dataclasses.replace(request, json=str(out / "hits.json")))
  with pytest.raises(ValueError, match="the query has no word with a positive weight"):
    gallery.search_vector(np.zeros(len(gallery.model.vocab), np.float32))


def test_describe_finds_the_motion_itself_and_renders_hits(chain, gallery, cli_index, tmp_path,
                                                           capsys):
  # The shortest whole clip keeps the GIF quick to draw.
  item_id = min((i for i in gallery.pairs if "#" not in i),
                key=lambda i: len(gallery.pairs[i].motion))
  path = tmp_path / "clip.npy"
  np.save(path, gallery.pairs[item_id].motion)
  request = cli.SearchRequest(workdir=str(chain["lexcmlp"]), describe=str(path), split="train",
                              k=1, index=cli_index,
                              render=str(tmp_path / "render"))
  hits = cli.run(request)
  assert hits[0].item_id == item_id and hits[0].score == pytest.approx(1.0, abs=1e-4)
  out = capsys.readouterr().out
  assert f"{path} ({len(gallery.pairs[item_id].motion)} frames) is described by:" in out
  gif = tmp_path / "render" / f"01_{item_id}.gif"
  with Image.open(gif) as image:
    assert image.n_frames == -(-len(gallery.pairs[item_id].motion) // cli.GIF_STRIDE)
  for name in (f"01_{item_id}_words.png", "described.gif", "described_words.png"):
    assert (tmp_path / "render" / name).stat().st_size > 0


def test_a_query_past_the_text_limit_is_cut_with_a_warning(chain, gallery, cli_index, capsys):
  limit = gallery.model.config.data.max_text_length
  query = " ".join(["walks"] * (limit - 2)) + " and then sits down on a chair"
  cli.run(cli.SearchRequest(workdir=str(chain["lexcmlp"]), query=query, split="train", k=1,
                            index=cli_index))
  err = capsys.readouterr().err
  assert (f"warning: --query was cut to its first {limit - 2} word pieces" in err
          and "ignored: \"and then sits down on a chair\"" in err), err


def test_bad_inputs_are_refused_by_name(chain, gallery, tmp_path, monkeypatch):
  workdir = str(chain["lexcmlp"])
  with pytest.raises(ValueError, match="the query is empty"):
    cli.run(cli.SearchRequest(workdir=workdir, query="   "))
  with pytest.raises(ValueError, match="exactly one of --query, --keywords, --describe"):
    cli.run(cli.SearchRequest(workdir=workdir, query="run", keywords="run"))
  narrow = tmp_path / "narrow.npy"
  np.save(narrow, np.zeros((50, 251), np.float32))
  with pytest.raises(MotionFileError, match=f"{narrow} has shape \\(50, 251\\).*\\(T, 263\\)"):
    cli.run(cli.SearchRequest(workdir=workdir, describe=str(narrow)))
  text = tmp_path / "text.npy"
  text.write_text("not an array")
  with pytest.raises(MotionFileError, match=f"{text} is not a .npy array file"):
    cli.run(cli.SearchRequest(workdir=workdir, describe=str(text)))
  with pytest.raises(ValueError, match=r"--query \"\?\? !! ﾀﾀﾀ\" holds no word of the vocab"):
    cli.run(cli.SearchRequest(workdir=workdir, query="?? !! ﾀﾀﾀ"))
  with pytest.raises(ValueError, match="top-k-terms must be a positive"):
    Gallery.open(workdir, "test", str(tmp_path / "i"), top_k_terms=0, model=gallery.model)
  silent = next(iter(gallery.pairs.values())).motion
  with monkeypatch.context() as m:  # a motion whose vector holds no word is named
    m.setattr(gallery.model, "encode_motions",
              lambda motions, batch_size: np.zeros((1, gallery.index.vocab_size), np.float32))
    with pytest.raises(ValueError, match="clip.npy: its lexical vector has no word"):
      gallery.describe(silent, name="clip.npy")


@pytest.mark.parametrize("args, message", [
    (["--keywords=zzqx,qqxz"], "error: none of the keywords zzqx, qqxz is a word of the "
                               "vocabulary"),
    (["--query= "], "error: the query is empty"),
    (["--keywords=zzqx qqxz"], "error: none of the keywords zzqx qqxz is a word of the "
                               "vocabulary (.+); try single lowercase words such as walk, run, "
                               r"jump; separate keywords with commas \(--keywords run,jump\)$"),
    (["--keywords=run", "--seismic-query-cut=0"],
     "error: --seismic-query-cut must be at least 1, got 0$"),
    # A bad knob of the approximate engine is refused when another engine is asked for too.
    (["--keywords=run", "--engine=exact", "--seismic-heap-factor=2"],
     r"error: --seismic-heap-factor must lie in \(0, 1\], got 2.0$"),
])
def test_command_exits_2_with_one_line(chain, args, message):
  result = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.search", f"--workdir={chain['lexcmlp']}", *args],
      cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and re.match(message, lines[0]), result.stderr


@pytest.mark.parametrize("module, flag", [("lexmo_jax.search", "--probes"),
                                          ("lexmo_jax.serve", "--port")])
def test_help_lists_the_command_s_own_flags(module, flag):
  result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                          env=dict(os.environ), capture_output=True, text=True, timeout=300)
  assert f"  {flag}:" in result.stdout, result.stdout[-2000:]
  # absl's --help prints the usage and exits with status 1; nothing else may go wrong.
  assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
  assert "--engine: <exact|approximate|auto>" in result.stdout
