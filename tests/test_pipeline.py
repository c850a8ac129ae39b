"""Tests of the training stream and evaluation batches."""
import itertools

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from input_pipeline import pipeline
from input_pipeline import tokenizer as tokenizer_lib
from input_pipeline.humanml3d import MotionTextPair

F = 263
T = 48
L = 12
WORDS = ["walks", "runs", "jumps", "waves", "kicks", "turns", "sits", "squats", "throws"]


def _pairs(n: int = 21, seed: int = 0) -> list[MotionTextPair]:
  rng = np.random.default_rng(seed)
  pairs = []
  for i in range(n):
    frames = int(rng.integers(20, 90))  # some shorter than T, some longer
    motion = rng.normal(size=(frames, F)).astype(np.float32) * 2 + 1
    captions = tuple(f"a person {WORDS[(i + k) % len(WORDS)]} {k}" for k in range(1 + i % 3))
    pairs.append(MotionTextPair(f"{i:06d}", f"{i:06d}", motion, captions))
  return pairs


@pytest.fixture(scope="module")
def tok():
  return tokenizer_lib.load_tokenizer()


@pytest.fixture(scope="module")
def data():
  pairs = _pairs()
  rng = np.random.default_rng(1)
  mean = rng.normal(size=F).astype(np.float32)
  std = rng.uniform(0.5, 2.0, size=F).astype(np.float32)
  return pairs, mean, std


def _train(data, tok, **kwargs):
  pairs, mean, std = data
  args = dict(global_batch_size=8, max_motion_length=T, max_text_length=L, seed=3)
  args.update(kwargs)
  return pipeline.TrainData(pairs, mean, std, tok, **args)


def _assert_batches_equal(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _caption_ids(tok, pairs):
  return [tok.encode(list(p.captions), L)["input_ids"] for p in pairs]


def test_batch_shapes_and_dtypes(data, tok):
  batch = _train(data, tok).batch(0)
  assert batch["motion"].shape == (8, T, F) and batch["motion"].dtype == np.float32
  assert batch["motion_mask"].shape == (8, T) and batch["motion_mask"].dtype == bool
  assert batch["input_ids"].shape == (8, L) and batch["input_ids"].dtype == np.int32
  assert batch["attention_mask"].shape == (8, L) and batch["attention_mask"].dtype == np.int32
  assert batch["index"].shape == (8,) and batch["index"].dtype == np.int32


def test_rows_are_normalised_crops_with_masks(data, tok):
  pairs, mean, std = data
  train = _train(data, tok)
  captions = _caption_ids(tok, pairs)
  for step in range(6):
    batch = train.batch(step)
    for row, i in enumerate(batch["index"]):
      clip = pairs[i].motion
      kept = min(len(clip), T)
      mask = batch["motion_mask"][row]
      assert mask[:kept].all() and not mask[kept:].any()
      assert not batch["motion"][row, kept:].any()
      rows = batch["motion"][row, :kept]
      offsets = [o for o in range(len(clip) - kept + 1)
                 if np.allclose(rows, (clip[o:o + kept] - mean) / std, atol=1e-5)]
      assert len(offsets) == 1
      assert any((batch["input_ids"][row] == c).all() for c in captions[i])
      assert batch["attention_mask"][row].sum() == (batch["input_ids"][row] != 0).sum()


def test_determinism_and_seed(data, tok):
  a, b = _train(data, tok), _train(data, tok)
  for step in (0, 1, 7, 30):
    _assert_batches_equal(a.batch(step), b.batch(step))
  other = _train(data, tok, seed=4)
  assert not all(np.array_equal(a.batch(s)["index"], other.batch(s)["index"]) for s in range(3))


def test_epochs_draw_every_item_once(data, tok):
  train = _train(data, tok)
  n = train.num_items
  assert train.steps_per_epoch == n // 8
  for epoch in range(3):
    steps = range(epoch * train.steps_per_epoch, (epoch + 1) * train.steps_per_epoch)
    drawn = np.concatenate([train.global_indices(s) for s in steps])
    assert len(np.unique(drawn)) == len(drawn) == train.steps_per_epoch * 8
  orders = [np.concatenate([train.global_indices(e * train.steps_per_epoch + s)
                            for s in range(train.steps_per_epoch)]) for e in range(2)]
  assert not np.array_equal(orders[0], orders[1])


def test_random_crops_and_captions_vary(data, tok):
  pairs, _, _ = data
  train = _train(data, tok)
  long_item = next(i for i, p in enumerate(pairs) if len(p.motion) > T + 10)
  many_captions = next(i for i, p in enumerate(pairs) if len(p.captions) == 3)
  crops, captions = set(), set()
  for step in range(200):
    batch = train.batch(step)
    for row, i in enumerate(batch["index"]):
      if i == long_item:
        crops.add(batch["motion"][row, 0, :4].tobytes())
      if i == many_captions:
        captions.add(batch["input_ids"][row].tobytes())
  assert len(crops) > 3 and len(captions) == 3


def test_process_shares_are_disjoint_and_cover_the_global_batch(data, tok):
  single = _train(data, tok)
  shares = [_train(data, tok, process_index=p, process_count=4) for p in range(4)]
  assert all(s.local_batch_size == 2 for s in shares)
  for step in (0, 3, 11):
    parts = [s.batch(step) for s in shares]
    indices = np.concatenate([p["index"] for p in parts])
    assert len(np.unique(indices)) == len(indices)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # The global batch does not depend on the number of processes.
    _assert_batches_equal(joined, single.batch(step))


def test_tf_data_stream_and_resume(data, tok):
  pairs, mean, std = data
  args = dict(global_batch_size=8, max_motion_length=T, max_text_length=L, seed=3)
  full = list(itertools.islice(pipeline.make_train_iterator(pairs, mean, std, tok, **args), 7))
  resumed = list(itertools.islice(
      pipeline.make_train_iterator(pairs, mean, std, tok, start_step=4, **args), 3))
  train = _train(data, tok)
  for step, batch in enumerate(full):
    _assert_batches_equal(batch, train.batch(step))
  for batch, expected in zip(resumed, full[4:]):
    _assert_batches_equal(batch, expected)


def test_split_smaller_than_batch(data, tok):
  pairs, mean, std = data
  small = pipeline.TrainData(pairs[:5], mean, std, tok, global_batch_size=8,
                             max_motion_length=T, max_text_length=L, seed=0)
  assert small.steps_per_epoch == 1
  for step in range(3):
    indices = small.batch(step)["index"]
    assert len(indices) == 8 and set(indices) == set(range(5))


def test_crop_multiple(data, tok):
  pairs, _, _ = data
  batch = _train(data, tok, crop_multiple=8).batch(0)
  for row, i in enumerate(batch["index"]):
    assert batch["motion_mask"][row].sum() == min(len(pairs[i].motion), T) // 8 * 8
  with pytest.raises(ValueError, match="multiple of crop_multiple"):
    _train(data, tok, crop_multiple=5)


def test_bad_arguments(data, tok):
  pairs, mean, std = data
  with pytest.raises(ValueError, match="multiple of process_count"):
    _train(data, tok, process_count=3)
  with pytest.raises(ValueError, match=r"\(263,\)"):
    pipeline.TrainData(pairs, mean[:10], std, tok, global_batch_size=8, max_motion_length=T,
                       max_text_length=L, seed=0)
  with pytest.raises(ValueError, match="no motion-caption pairs"):
    pipeline.TrainData([], mean, std, tok, global_batch_size=8, max_motion_length=T,
                       max_text_length=L, seed=0)


def test_eval_batches_cover_items_in_order(data, tok):
  pairs, mean, std = data
  batches = pipeline.make_eval_batches(pairs, mean, std, tok, batch_size=8,
                                       max_motion_length=T, max_text_length=L)
  assert len(batches) == 3
  out = list(batches)
  valid = np.concatenate([b["valid"] for b in out])
  index = np.concatenate([b["index"] for b in out])
  assert valid.sum() == len(pairs) and not valid[len(pairs):].any()
  np.testing.assert_array_equal(index[:len(pairs)], np.arange(len(pairs)))
  assert (index[len(pairs):] == -1).all()
  first = tok.encode([p.captions[0] for p in pairs], L)["input_ids"]
  ids = np.concatenate([b["input_ids"] for b in out])
  np.testing.assert_array_equal(ids[:len(pairs)], first)
  motion = np.concatenate([b["motion"] for b in out])
  mask = np.concatenate([b["motion_mask"] for b in out])
  for i, p in enumerate(pairs):
    kept = min(len(p.motion), T)
    start = (len(p.motion) - kept) // 2
    np.testing.assert_allclose(motion[i, :kept], (p.motion[start:start + kept] - mean) / std,
                               atol=1e-5)
    assert mask[i].sum() == kept and not motion[i, kept:].any()
  # Padding rows hold well-formed inputs (item 0) so that no encoder sees an empty row.
  assert mask[len(pairs):].any(axis=1).all()
  # Iterating again gives the same batches.
  _assert_batches_equal(next(iter(batches)), out[0])


def test_eval_batches_per_process_and_options(data, tok):
  pairs, mean, std = data
  args = dict(batch_size=8, max_motion_length=T, max_text_length=L)
  single = list(pipeline.make_eval_batches(pairs, mean, std, tok, **args))
  shares = [list(pipeline.make_eval_batches(pairs, mean, std, tok, process_index=p,
                                            process_count=2, **args)) for p in range(2)]
  assert len(shares[0]) == len(shares[1]) == len(single)
  for k, batch in enumerate(single):
    joined = {key: np.concatenate([shares[0][k][key], shares[1][k][key]]) for key in batch}
    _assert_batches_equal(joined, batch)
  second = list(pipeline.make_eval_batches(pairs, mean, std, tok, caption_index=1, **args))
  expected = tok.encode([p.captions[min(1, len(p.captions) - 1)] for p in pairs], L)
  ids = np.concatenate([b["input_ids"] for b in second])[:len(pairs)]
  np.testing.assert_array_equal(ids, expected["input_ids"])
  start = list(pipeline.make_eval_batches(pairs, mean, std, tok, crop="start", **args))
  motion = np.concatenate([b["motion"] for b in start])
  for i, p in enumerate(pairs):
    kept = min(len(p.motion), T)
    np.testing.assert_allclose(motion[i, :kept], (p.motion[:kept] - mean) / std, atol=1e-5)


def test_to_global_batch(data, tok):
  devices = np.array(jax.devices())
  assert len(devices) == 8
  mesh = Mesh(devices.reshape(4, 2), ("data", "fsdp"))
  sharding = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
  local = _train(data, tok).batch(0)
  global_batch = pipeline.to_global_batch(local, sharding)
  for key, value in local.items():
    assert global_batch[key].shape == value.shape
    assert global_batch[key].sharding == sharding
    np.testing.assert_array_equal(np.asarray(global_batch[key]), value)
  replicated = NamedSharding(mesh, PartitionSpec())
  per_key = {k: sharding for k in local}
  per_key["index"] = replicated
  global_batch = pipeline.to_global_batch(local, per_key)
  assert global_batch["index"].sharding == replicated
  with pytest.raises(KeyError, match="motion_mask"):
    pipeline.to_global_batch(local, {"motion": sharding})
