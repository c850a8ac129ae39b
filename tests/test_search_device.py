"""Batched top-k on devices (`lexmo_jax.search.device_top_k`): the exact index's answers,
sharded over the eight fake CPU devices or on one."""
import jax
import numpy as np
import pytest
import scipy.sparse as sp

from lexmo_jax.search.device_top_k import DeviceGallery
from lexmo_jax.search.index import InvertedIndex


def _gallery(n=203, vocab=300, seed=1):
  return sp.random(n, vocab, density=0.04, random_state=seed, format="csr", dtype=np.float32)


@pytest.mark.parametrize("dense_max_words", [4096, 8])  # dense layout, then padded
@pytest.mark.parametrize("num_devices", [1, 8])
def test_answers_are_the_exact_index_s(dense_max_words, num_devices):
  gallery = _gallery()
  queries = sp.random(9, 300, density=0.05, random_state=2, format="csr", dtype=np.float32)
  ids = [f"m{i:03d}" for i in range(gallery.shape[0])]
  exact_ids, exact_scores = InvertedIndex.build(gallery, ids).search(queries, 10)
  device = DeviceGallery.build(gallery, ids, devices=jax.devices()[:num_devices], chunk=16,
                               dense_max_words=dense_max_words)
  assert device.layout == ("dense" if dense_max_words == 4096 else "padded")
  found, scores = device.search(queries, 10)
  np.testing.assert_array_equal(found, exact_ids)
  np.testing.assert_allclose(scores, exact_scores, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dense_max_words", [4096, 1])
def test_ties_and_unmatched_items_come_in_gallery_order(dense_max_words):
  # Items 0..9 hold word 0 alone (all tie), 10..19 word 1 alone, 20..39 nothing the query has.
  dense = np.zeros((40, 5), np.float32)
  dense[:10, 0] = 1.0
  dense[10:20, 1] = 1.0
  dense[20:, 2] = 1.0
  device = DeviceGallery.build(dense, devices=jax.devices(), chunk=3,
                               dense_max_words=dense_max_words)
  query = np.array([0.0, 1.0, 0.0, 0.0, 0.5], np.float32)
  found, scores = device.search(query, 15)
  exact, _ = InvertedIndex.build(dense, [str(i) for i in range(40)]).search(query, 15)
  assert found.tolist() == [int(i) for i in exact] == list(range(10, 20)) + list(range(5))
  assert np.all(scores[10:] == 0) and np.all(scores[:10] > 0)


def test_edge_cases_answer_as_the_exact_index_does():
  gallery = _gallery()
  ids = [f"m{i:03d}" for i in range(gallery.shape[0])]
  device = DeviceGallery.build(gallery, ids, devices=jax.devices()[:2])
  exact = InvertedIndex.build(gallery, ids)
  query = gallery[[5]]
  # k above N is capped at N; no query gives no rows.
  assert device.search(query, 500)[0].shape == exact.search(query, 500)[0].shape == (1, 203)
  found, scores = device.search(np.zeros((0, 300), np.float32), 4)
  assert found.shape == scores.shape == (0, 4)
  # A gallery without a single word: every item scores 0, in gallery order.
  blank = DeviceGallery.build(np.zeros((5, 300), np.float32), devices=jax.devices()[:2])
  found, scores = blank.search(np.ones(300, np.float32), 3)
  assert found.tolist() == [0, 1, 2] and not scores.any()


def test_bad_input_is_refused_with_the_problem_named():
  device = DeviceGallery.build(_gallery(), devices=jax.devices()[:2])
  with pytest.raises(ValueError, match="vocabulary columns"):
    device.search(np.ones((2, 301), np.float32))
  for k in (0, 6.0, True):  # a float k would also poison the compiled programs' cache
    with pytest.raises(ValueError, match="k must be a whole number"):
      device.search(np.ones(300, np.float32), k=k)
  assert device.search(np.ones(300, np.float32), k=6)[0].shape == (6,)
  with pytest.raises(ValueError, match="repeats|unique|twice"):
    DeviceGallery.build(_gallery(n=3), ids=["a", "b", "a"])
  with pytest.raises(ValueError, match="floating point"):
    DeviceGallery.build(_gallery(), dtype=np.int8)
  with pytest.raises(ValueError, match="negative weights"):
    device.search(-np.ones(300, np.float32))
  with pytest.raises(ValueError, match="empty gallery"):
    DeviceGallery.build(np.zeros((0, 300), np.float32))
  with pytest.raises(ValueError, match="ids"):
    DeviceGallery.build(_gallery(), ids=["a", "b"])
