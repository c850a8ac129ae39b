"""The dissimilar-subset id list (TMR's nsim_test.txt, rebuilt): chosen from the split,
deterministic, of the asked size, far apart, and a file the dissimilar protocol reads."""
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, tiny_config
from input_pipeline import humanml3d
from lexmo_jax.evaluate import read_id_list, subset_indices
from lexmo_jax.evaluation import dissimilar

SIZE = 10


@pytest.fixture(scope="module")
def train_items(synthetic_root):
  """(ids, first-caption embeddings) of the synthetic train split (50 items)."""
  pairs, _ = humanml3d.load_split(synthetic_root, "train", "humanml3d")
  ids = [p.item_id for p in pairs]
  return ids, dissimilar.caption_embeddings([p.captions[0] for p in pairs])


def _stats(ids, embeddings, chosen):
  position = {item: i for i, item in enumerate(ids)}
  return dissimilar.pair_stats(embeddings[[position[i] for i in chosen]])


def _random_stats(embeddings, draws=200):
  rng = np.random.default_rng(0)
  return [dissimilar.pair_stats(embeddings[rng.choice(len(embeddings), SIZE, replace=False)])
          for _ in range(draws)]


@pytest.mark.parametrize("objective", dissimilar.OBJECTIVES)
def test_chosen_ids_are_distinct_items_of_the_split_and_deterministic(train_items, objective):
  ids, emb = train_items
  chosen = dissimilar.select_dissimilar(ids, emb, SIZE, objective)
  assert len(chosen) == SIZE == len(set(chosen))
  assert set(chosen) <= set(ids)
  assert chosen == sorted(chosen)
  assert dissimilar.select_dissimilar(ids, emb, SIZE, objective) == chosen
  shuffled = np.random.default_rng(1).permutation(len(ids))
  assert dissimilar.select_dissimilar([ids[i] for i in shuffled], emb[shuffled], SIZE,
                                      objective) == chosen
  assert len(dissimilar.select_dissimilar(ids, emb, 2, objective)) == 2
  assert sorted(dissimilar.select_dissimilar(ids, emb, len(ids), objective)) == sorted(ids)


def test_sum_objective_has_a_lower_mean_similarity_than_any_random_subset(train_items):
  # TMR's lists' character: the total is low, a near-duplicate pair may remain (as in TMR's
  # KIT-ML list), so only the mean is compared here.
  ids, emb = train_items
  chosen = _stats(ids, emb, dissimilar.select_dissimilar(ids, emb, SIZE, "sum"))
  random = _random_stats(emb)
  assert chosen.mean < min(r.mean for r in random)
  assert chosen.max <= np.median([r.max for r in random])


def test_max_objective_has_a_lower_largest_similarity_than_any_random_subset(train_items):
  ids, emb = train_items
  chosen = _stats(ids, emb, dissimilar.select_dissimilar(ids, emb, SIZE, "max"))
  random = _random_stats(emb)
  assert chosen.max < min(r.max for r in random)
  assert chosen.mean < np.median([r.mean for r in random])


@pytest.mark.parametrize("objective", dissimilar.OBJECTIVES)
def test_planted_clusters_give_one_item_each(objective):
  # Six tight clusters of five: a dissimilar subset of six takes one item of each.
  rng = np.random.default_rng(0)
  centres = np.eye(8)[:6]
  emb = np.repeat(centres, 5, axis=0) + 0.05 * rng.normal(size=(30, 8))
  ids = [f"c{i // 5}_{i % 5}" for i in range(30)]
  chosen = dissimilar.select_dissimilar(ids, emb, 6, objective)
  assert sorted(c.split("_")[0] for c in chosen) == [f"c{k}" for k in range(6)]


def test_pair_stats_match_the_full_matrix():
  emb = np.random.default_rng(0).normal(size=(40, 5))
  unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
  sims = (unit @ unit.T)[np.triu_indices(40, 1)]
  stats = dissimilar.pair_stats(emb)
  assert stats.size == 40
  np.testing.assert_allclose([stats.max, stats.mean], [sims.max(), sims.mean()], atol=1e-12)


def test_impossible_selections_are_refused():
  emb = np.eye(4)
  ids = ["a", "b", "c", "d"]
  with pytest.raises(ValueError, match="at least 2"):
    dissimilar.select_dissimilar(ids, emb, 1)
  with pytest.raises(ValueError, match="larger than the split's 4 items"):
    dissimilar.select_dissimilar(ids, emb, 5)
  with pytest.raises(ValueError, match="repeat"):
    dissimilar.select_dissimilar(["a", "b", "a", "d"], emb, 2)
  with pytest.raises(ValueError, match="3 item ids for 4 embedding rows"):
    dissimilar.select_dissimilar(ids[:3], emb, 2)
  with pytest.raises(ValueError, match="unknown objective"):
    dissimilar.select_dissimilar(ids, emb, 2, "min")
  with pytest.raises(ValueError, match="NaN"):
    dissimilar.select_dissimilar(ids, np.full((4, 3), np.nan), 2)


def _command(*args):
  return subprocess.run(
      [sys.executable, "-m", "lexmo_jax.evaluation.dissimilar", *args], cwd=ROOT,
      capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_command_writes_a_list_the_dissimilar_protocol_reads(synthetic_root, train_items,
                                                             tmp_path):
  out = tmp_path / "lists" / "nsim_train.txt"
  proc = _command(f"--data={synthetic_root}", "--split=train", f"--size={SIZE}", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  ids, _ = train_items
  clips = dissimilar.one_per_clip(humanml3d.load_split(synthetic_root, "train", "humanml3d")[0])
  clip_emb = dissimilar.caption_embeddings([p.captions[0] for p in clips])
  written = out.read_text().splitlines()
  # One id per line, sorted, chosen among one item per source clip.
  assert written == dissimilar.select_dissimilar([p.item_id for p in clips], clip_emb, SIZE)
  assert read_id_list(out) == written
  assert len(subset_indices(ids, written, str(out))) == SIZE
  assert f"dissimilar subset of {SIZE} items" in proc.stdout
  assert f"whole split ({len(clips)})" in proc.stdout and "random subset" in proc.stdout
  assert not list(out.parent.glob(".*.tmp"))  # written through a temporary file


def test_command_reads_the_split_of_a_workdir_as_evaluate_does(synthetic_root, tmp_path):
  from lexmo_jax.inference import load_config  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(tiny_config("lexcmlp", synthetic_root).to_json())
  out = tmp_path / "ids.txt"
  proc = _command(f"--workdir={workdir}", "--size=4", "--objective=max", f"--out={out}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  item_ids = [p.item_id for p in data_lib.load_split(load_config(workdir), "test").pairs]
  assert len(subset_indices(item_ids, read_id_list(out), str(out))) == 4
  assert "objective max" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--data={missing}", "--out={out}"], "dataset folder {missing} does not exist"),
    (["--data={root}", "--size=11", "--out={out}"],
     "--size 11 is larger than the 4 source clips of split 'test'"),
    (["--data={root}", "--size=1", "--out={out}"], "--size must be at least 2"),
    (["--data={root}", "--workdir={root}", "--out={out}"], "give exactly one of --data"),
    (["--data={root}"], "--out FILE is required"),
    (["--data={root}", "--out={out}", "--sentence-encoder={missing}"],
     "sentence encoder folder {missing} does not exist"),
    (["--data={root}", "--out={out}", "--kind=kit"], "--kind"),
])
def test_bad_input_exits_2_with_one_line(synthetic_root, tmp_path, args, message):
  names = {"root": synthetic_root, "missing": tmp_path / "nowhere", "out": tmp_path / "o.txt"}
  proc = _command(*(a.format(**names) for a in args))
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
  assert message.format(**names) in lines[0]
  assert not (tmp_path / "o.txt").exists()


def test_one_item_per_source_clip_is_a_candidate():
  from input_pipeline.humanml3d import MotionTextPair
  from lexmo_jax.evaluation.dissimilar import one_per_clip
  pair = lambda item, motion: MotionTextPair(item_id=item, motion_id=motion,
                                             motion=np.zeros((2, 263), np.float32),
                                             captions=("x",))
  pairs = [pair("000093", "000093"), pair("000093#1.2#4.2", "000093"),
           pair("M000093", "M000093"), pair("M000094#0.0#2.0", "M000094"),
           pair("M000094", "M000094")]
  assert [p.item_id for p in one_per_clip(pairs)] == ["000093", "M000094"]
