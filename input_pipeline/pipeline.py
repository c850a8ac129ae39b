"""Batches of motion-caption pairs: deterministic training stream and padded evaluation.

A batch is a dict of arrays with static shapes:
  motion:         (B, T, F) float32, (x - mean) / std, zero after the clip's end
  motion_mask:    (B, T) bool, True on real frames
  input_ids:      (B, L) int32, [CLS] ... [SEP] then padding
  attention_mask: (B, L) int32, 1 on real tokens
  index:          (B,) int32, the item's index in the split list (-1 on eval padding)
  caption:        (B,) int32, the caption's index in the split's flat caption list (every
                  item's captions in file order, item after item: `humanml3d.all_captions`)
  valid:          (B,) bool, evaluation only: False on rows that pad the last batch
                  (they repeat item 0 so that every row is a well-formed input)
B is the local (per-process) batch size, T = max_motion_length, L = max_text_length.

Training batch k is a pure function of (seed, step k, process): items come from a
per-epoch permutation seeded by (seed, epoch); each process takes its own slice of
the global batch; crop offsets and caption choices are drawn from (seed, step,
global row). Resuming at step s therefore yields exactly the batches an
uninterrupted run yields from step s, and the global batch does not depend on
the number of processes.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from input_pipeline.humanml3d import MotionTextPair, all_captions
from input_pipeline.tokenizer import Tokenizer

logger = logging.getLogger("lexmo_jax.data")

# Separate random streams, so that changing one draw never shifts another.
_EPOCH_STREAM = 0
_ROW_STREAM = 1


def batch_spec(batch_size: int, max_motion_length: int, feature_dim: int,
               max_text_length: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
  """Shape and dtype of every entry of a training batch (the layout in the module docstring;
  evaluation batches add `valid`). The one statement of the layout: the input pipeline and
  the model's initialisation both read it."""
  b, t, f, l = batch_size, max_motion_length, feature_dim, max_text_length
  return {"motion": ((b, t, f), np.dtype(np.float32)),
          "motion_mask": ((b, t), np.dtype(bool)),
          "input_ids": ((b, l), np.dtype(np.int32)),
          "attention_mask": ((b, l), np.dtype(np.int32)),
          "index": ((b,), np.dtype(np.int32)),
          "caption": ((b,), np.dtype(np.int32))}


def _check_statistics(mean: np.ndarray, std: np.ndarray,
                      width: int) -> tuple[np.ndarray, np.ndarray]:
  mean = np.asarray(mean, np.float32)
  std = np.asarray(std, np.float32)
  if mean.shape != (width,) or std.shape != (width,):
    raise ValueError(f"mean {mean.shape} and std {std.shape} must both be ({width},), the "
                     "feature width of the motions")
  if np.any(std <= 0) or not np.all(np.isfinite(std)) or not np.all(np.isfinite(mean)):
    raise ValueError("std must be finite and positive and mean finite")
  return mean, std


class _Motions:
  """The clips of a split in memory, and the cutting of batch rows out of them."""

  def __init__(self, pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
               max_motion_length: int, crop_multiple: int):
    if not pairs:
      raise ValueError("no motion-caption pairs were given")
    width = pairs[0].motion.shape[-1]
    for p in pairs:
      if p.motion.ndim != 2 or p.motion.shape[1] != width:
        raise ValueError(f"item {p.item_id}: motion shape {p.motion.shape}, expected (T, {width})")
      if not p.captions:
        raise ValueError(f"item {p.item_id} has no caption")
    if crop_multiple < 1 or max_motion_length % crop_multiple:
      raise ValueError(f"max_motion_length {max_motion_length} must be a multiple of "
                       f"crop_multiple {crop_multiple}")
    self.clips = [p.motion for p in pairs]
    self.lengths = np.array([len(m) for m in self.clips], np.int64)
    short = np.flatnonzero(self.lengths < crop_multiple)
    if short.size:
      raise ValueError(f"item {pairs[short[0]].item_id} has {self.lengths[short[0]]} frames, "
                       f"fewer than crop_multiple {crop_multiple}")
    self.mean, self.std = _check_statistics(mean, std, width)
    self.max_length = max_motion_length
    self.crop_multiple = crop_multiple
    self.width = width
    # Frames kept per item: as many as fit, rounded down to whole crop units.
    self.kept = np.minimum(self.lengths, max_motion_length) // crop_multiple * crop_multiple

  def rows(self, indices: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cuts clips[i][offset:offset + kept[i]] into padded, normalised rows.

    Args:
      indices: (B,) item indices.
      offsets: (B,) first frame of each crop.

    Returns:
      motion (B, T, F) float32 and motion_mask (B, T) bool.
    """
    motion = np.zeros((len(indices), self.max_length, self.width), np.float32)
    mask = np.zeros((len(indices), self.max_length), bool)
    # Normalising row by row touches only real frames; the padding stays zero.
    for row, (i, offset) in enumerate(zip(indices, offsets)):
      kept = self.kept[i]
      frames = motion[row, :kept]
      np.subtract(self.clips[i][offset:offset + kept], self.mean, out=frames)
      np.divide(frames, self.std, out=frames)
      mask[row, :kept] = True
    return motion, mask


class TrainData:
  """The deterministic training stream of one process; batch(k) is batch k.

  Attributes:
    num_items: N, items in the split.
    local_batch_size: global_batch_size // process_count.
    steps_per_epoch: steps after which every item has been drawn (at least once).
  """

  def __init__(self, pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
               tokenizer: Tokenizer, *, global_batch_size: int, max_motion_length: int,
               max_text_length: int, seed: int, process_index: int = 0,
               process_count: int = 1, crop_multiple: int = 1):
    if global_batch_size < 1 or global_batch_size % process_count:
      raise ValueError(f"global_batch_size {global_batch_size} must be a positive multiple "
                       f"of process_count {process_count}")
    if not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    if seed < 0:
      raise ValueError(f"seed must be non-negative, got {seed}")
    self._motions = _Motions(pairs, mean, std, max_motion_length, crop_multiple)
    self.num_items = len(pairs)
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.process_index = process_index
    self.seed = seed
    # A split smaller than the batch is drawn several times per epoch.
    self._repeats = math.ceil(global_batch_size / self.num_items)
    self.steps_per_epoch = self._repeats * self.num_items // global_batch_size
    counts = np.array([len(p.captions) for p in pairs], np.int64)
    self._caption_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    self._caption_count = counts
    before = tokenizer.num_truncated
    tokens = tokenizer.encode(all_captions(pairs), max_text_length)
    if tokenizer.num_truncated > before:
      logger.warning("%d of %d captions were cut to max_text_length=%d tokens",
                     tokenizer.num_truncated - before, int(counts.sum()), max_text_length)
    self._input_ids = tokens["input_ids"]
    self._attention_mask = tokens["attention_mask"]
    self._orders: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def _epoch_order(self, epoch: int) -> np.ndarray:
    with self._lock:
      order = self._orders.get(epoch)
      if order is None:
        rng = np.random.default_rng([self.seed, _EPOCH_STREAM, epoch])
        order = np.concatenate([rng.permutation(self.num_items) for _ in range(self._repeats)])
        if len(self._orders) >= 4:
          self._orders.pop(min(self._orders))
        self._orders[epoch] = order
      return order

  def global_indices(self, step: int) -> np.ndarray:
    """(global_batch_size,) item indices of step's global batch, all processes."""
    epoch, position = divmod(step, self.steps_per_epoch)
    size = self.global_batch_size
    return self._epoch_order(epoch)[position * size:(position + 1) * size]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of global batch `step` (see the module docstring)."""
    if step < 0:
      raise ValueError(f"step must be non-negative, got {step}")
    rows = slice(self.process_index * self.local_batch_size,
                 (self.process_index + 1) * self.local_batch_size)
    indices = self.global_indices(step)[rows]
    rng = np.random.default_rng([self.seed, _ROW_STREAM, step])
    crop_u, caption_u = rng.random((2, self.global_batch_size))[:, rows]
    motions = self._motions
    spare = motions.lengths[indices] - motions.kept[indices]
    offsets = np.minimum((crop_u * (spare + 1)).astype(np.int64), spare)
    counts = self._caption_count[indices]
    choice = np.minimum((caption_u * counts).astype(np.int64), counts - 1)
    captions = self._caption_start[indices] + choice
    motion, motion_mask = motions.rows(indices, offsets)
    return {
        "motion": motion,
        "motion_mask": motion_mask,
        "input_ids": self._input_ids[captions],
        "attention_mask": self._attention_mask[captions],
        "index": indices.astype(np.int32),
        "caption": captions.astype(np.int32),
    }

  def element_spec(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every batch entry."""
    return batch_spec(self.local_batch_size, self._motions.max_length, self._motions.width,
                      self._input_ids.shape[1])

  def dataset(self, start_step: int = 0):
    """The tf.data stream of batches start_step, start_step + 1, ... (endless)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    _hide_accelerators_from_tf(tf)
    spec = self.element_spec()
    keys = list(spec)

    def make(step):
      batch = self.batch(int(step))
      return tuple(batch[k] for k in keys)

    def to_dict(*values):
      out = {}
      for key, value in zip(keys, values):
        value.set_shape(spec[key][0])
        out[key] = value
      return out

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    batches = steps.map(
        lambda s: tf.numpy_function(make, [s], [tf.as_dtype(spec[k][1]) for k in keys]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.map(to_dict).prefetch(tf.data.AUTOTUNE)


def _hide_accelerators_from_tf(tf) -> None:
  # tf.data runs on the host; TF must not reserve memory on the GPUs JAX uses.
  try:
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")
  except (RuntimeError, ValueError):
    pass


def make_train_iterator(pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
                        tokenizer: Tokenizer, *, global_batch_size: int,
                        max_motion_length: int, max_text_length: int, seed: int,
                        start_step: int = 0, process_index: int = 0, process_count: int = 1,
                        crop_multiple: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Endless iterator of this process's training batches from step start_step on.

  Args:
    pairs: the split's items (see humanml3d.load_split).
    mean, std: (F,) normalisation statistics.
    tokenizer: captions are tokenised once, here.
    global_batch_size: rows over all processes; each process yields
      global_batch_size // process_count rows.
    max_motion_length: T; longer clips are randomly cropped.
    max_text_length: L.
    seed: the stream's seed.
    start_step: the first step yielded (resume).
    process_index, process_count: this process and how many share the batch.
    crop_multiple: kept frames are rounded down to a multiple of this (patch size).

  Returns:
    An iterator of numpy batches (see the module docstring).
  """
  data = TrainData(pairs, mean, std, tokenizer, global_batch_size=global_batch_size,
                   max_motion_length=max_motion_length, max_text_length=max_text_length,
                   seed=seed, process_index=process_index, process_count=process_count,
                   crop_multiple=crop_multiple)
  return data.dataset(start_step).as_numpy_iterator()


class EvalBatches:
  """Every item once, in order, in batches of equal size; iterable many times.

  The last global batch is filled with rows that have valid=False and index=-1
  (their content repeats item 0), so that every process runs len(self) batches.
  """

  def __init__(self, pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
               tokenizer: Tokenizer, *, batch_size: int, max_motion_length: int,
               max_text_length: int, caption_index: int = 0, process_index: int = 0,
               process_count: int = 1, crop: str = "centre", crop_multiple: int = 1):
    if batch_size < 1 or batch_size % process_count:
      raise ValueError(f"batch_size {batch_size} must be a positive multiple of "
                       f"process_count {process_count}")
    if not 0 <= process_index < process_count:
      raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    if crop not in ("centre", "start"):
      raise ValueError(f"crop must be 'centre' or 'start', got {crop!r}")
    if caption_index < 0:
      raise ValueError(f"caption_index must be non-negative, got {caption_index}")
    self._motions = _Motions(pairs, mean, std, max_motion_length, crop_multiple)
    self.num_items = len(pairs)
    self.batch_size = batch_size
    self.local_batch_size = batch_size // process_count
    self.process_index = process_index
    spare = self._motions.lengths - self._motions.kept
    self._offsets = spare // 2 if crop == "centre" else np.zeros_like(spare)
    # An item with fewer captions than caption_index + 1 uses its last one.
    chosen = np.array([min(caption_index, len(p.captions) - 1) for p in pairs], np.int64)
    starts = np.concatenate([[0], np.cumsum([len(p.captions) for p in pairs])[:-1]])
    self._caption = (starts + chosen).astype(np.int32)
    captions = [p.captions[c] for p, c in zip(pairs, chosen)]
    tokens = tokenizer.encode(captions, max_text_length)
    self._input_ids = tokens["input_ids"]
    self._attention_mask = tokens["attention_mask"]

  def __len__(self) -> int:
    return math.ceil(self.num_items / self.batch_size)

  def batch(self, k: int) -> dict[str, np.ndarray]:
    """This process's rows of evaluation batch k."""
    if not 0 <= k < len(self):
      raise IndexError(f"evaluation batch {k} not in [0, {len(self)})")
    start = k * self.batch_size + self.process_index * self.local_batch_size
    indices = np.arange(start, start + self.local_batch_size)
    valid = indices < self.num_items
    # Padding rows repeat item 0, so that no encoder sees an empty sequence (an
    # all-masked softmax is NaN, and NaN * 0 would leak into masked sums).
    safe = np.where(valid, indices, 0)
    motion, motion_mask = self._motions.rows(safe, self._offsets[safe])
    return {
        "motion": motion,
        "motion_mask": motion_mask,
        "input_ids": self._input_ids[safe],
        "attention_mask": self._attention_mask[safe],
        "index": np.where(valid, indices, -1).astype(np.int32),
        "caption": self._caption[safe],
        "valid": valid,
    }

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    for k in range(len(self)):
      yield self.batch(k)


def make_eval_batches(pairs: Sequence[MotionTextPair], mean: np.ndarray, std: np.ndarray,
                      tokenizer: Tokenizer, *, batch_size: int, max_motion_length: int,
                      max_text_length: int, caption_index: int = 0, process_index: int = 0,
                      process_count: int = 1, crop: str = "centre",
                      crop_multiple: int = 1) -> EvalBatches:
  """Evaluation batches: each item once with its caption_index-th caption.

  batch_size is global; clips longer than max_motion_length keep their centre
  (crop='centre') or their first frames (crop='start').
  """
  return EvalBatches(pairs, mean, std, tokenizer, batch_size=batch_size,
                     max_motion_length=max_motion_length, max_text_length=max_text_length,
                     caption_index=caption_index, process_index=process_index,
                     process_count=process_count, crop=crop, crop_multiple=crop_multiple)


def to_global_batch(local_batch: Mapping[str, np.ndarray], sharding: Any) -> dict[str, Any]:
  """Assembles every process's local batch into global jax.Arrays.

  Args:
    local_batch: this process's rows, (B_local, ...) per key.
    sharding: one jax.sharding.Sharding splitting the batch axis, used for every
      key, or a dict key -> Sharding.

  Returns:
    key -> jax.Array of shape (B_local * process_count, ...).
  """
  import jax  # pylint: disable=g-import-not-at-top
  out = {}
  for key, value in local_batch.items():
    if isinstance(sharding, Mapping):
      if key not in sharding:
        raise KeyError(f"no sharding given for batch entry {key!r}")
      key_sharding = sharding[key]
    else:
      key_sharding = sharding
    out[key] = jax.make_array_from_process_local_data(key_sharding, np.asarray(value))
  return out
