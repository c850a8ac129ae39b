"""Exact batched top-k on accelerators: a batch of queries scored against every item of the
gallery by one compiled JAX program, the items sharded over the devices.

This is the batch-job path (ranking a whole test split against a large library, finding
near-duplicates, re-ranking a candidate pool on a GPU or TPU host), not the interactive one:
one query at a time, the approximate engine (`lexmo_jax.search.engines`) answers in about a
millisecond on the CPU.

Layouts, chosen by how many words the gallery uses:
  dense   (N, D) weights over the D words the gallery uses, when D ≤ `dense_max_words`: a
          matrix product per chunk of items (a trained model writes its motions with a few
          hundred words; the demo's with about 200).
  padded  (N, P) word ids and weights, P the most words of any item (the ELL format of sparse
          linear algebra): each item's score gathered from the dense query, for galleries
          over a wide vocabulary (random Zipf vectors use all 30,522 word pieces).
The devices are those of one host (a GPU host's GPUs, a TPU VM's chips, fake CPU devices in
the tests). Each device scans its share of the items in chunks of `chunk`, keeping a running top-k, so
the (Q, N) score matrix never exists whole: a step holds (Q, chunk) scores, and in the padded
layout also the (Q, chunk, P) weights it gathers from the queries (4·Q·chunk·P bytes: 655 MB
for 100 queries, the default 16384 items and P = 100; lower `chunk` for bigger batches). The devices' k
best are then gathered and the k best of those kept. Ties go to the earlier item
(`jax.lax.top_k` keeps the lower index first), the exact index's rule.

Scores are the exact index's up to float32 rounding: sums taken in another order can differ
in the last bit, so two items within a rounding step of each other may swap places.
`dtype=jnp.bfloat16` halves the gallery's memory, but its weights keep 8 bits of mantissa,
which reorders near-ties (on random vectors, the top-10's order changed in 12 of 20 queries
and its set in a few): keep float32 where the exact order matters.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lexmo_jax.search.index import _as_csr, _check_ids, _check_unique, _normalise_rows

AXIS = "items"


@dataclasses.dataclass
class DeviceGallery:
  """A gallery's L2-normalised lexical vectors on a 1-D mesh of devices.

  Attributes:
    num_items: N, the real items (the arrays are padded to a multiple of devices × chunk).
    vocab_size: V.
    layout: 'dense' or 'padded'.
    words: (D,) the vocabulary ids of the dense layout's columns; None for 'padded'.
    ids: (N,) item ids, or None (positions are returned).
  """
  num_items: int
  vocab_size: int
  layout: str
  words: np.ndarray | None
  ids: np.ndarray | None
  mesh: Mesh
  chunk: int
  normalise: bool
  _weights: jax.Array  # (N_pad, D) dense, or (N_pad, P) padded
  _word_ids: jax.Array | None  # (N_pad, P) int32, padded layout only

  @classmethod
  def build(cls, vectors, ids=None, devices=None, chunk: int = 16384,
            dtype=jnp.float32, dense_max_words: int = 4096,
            normalise: bool = True) -> DeviceGallery:
    """Places (N, V) non-negative vectors (dense or scipy.sparse) on `devices` (default:
    every device of the default backend). `chunk`: items each device scores per step.

    Raises:
      ValueError: an empty gallery, NaN/negative weights, ids that do not match or repeat,
        chunk < 1, a dtype that is not floating point.
    """
    csr = _as_csr(vectors, "gallery vectors")
    if csr.shape[0] == 0:
      raise ValueError("cannot place an empty gallery on devices")
    if not _is_int(chunk) or chunk < 1:
      raise ValueError(f"chunk must be a whole number of items, at least 1, got {chunk!r}")
    if not jnp.issubdtype(dtype, jnp.floating):
      raise ValueError(f"dtype must be floating point (float32, bfloat16), got {dtype}")
    if ids is not None:
      ids = _check_ids(ids, csr.shape[0], "gallery vectors")
      _check_unique(ids)
    csr = _normalise_rows(csr) if normalise else csr
    csr.sort_indices()
    devices = list(devices) if devices is not None else jax.devices()
    mesh = Mesh(np.asarray(devices), (AXIS,))
    n = csr.shape[0]
    used = np.unique(csr.indices)
    dense_layout = used.size <= dense_max_words
    # Each device holds a whole number of chunks; small galleries get one small chunk each.
    chunk = int(min(chunk, -(-n // len(devices))))
    n_pad = -(-n // (len(devices) * chunk)) * len(devices) * chunk
    rows = np.repeat(np.arange(n), np.diff(csr.indptr))
    sharding = NamedSharding(mesh, P(AXIS))
    if dense_layout:
      if used.size == 0:  # no item has a word: one column of zeros
        used = np.zeros(1, np.int64)
      column = np.full(csr.shape[1], -1, np.int64)
      column[used] = np.arange(used.size)
      dense = np.zeros((n_pad, used.size), np.float32)
      dense[rows, column[csr.indices]] = csr.data
      return cls(n, csr.shape[1], "dense", used, ids, mesh, chunk, normalise,
                 _place(dense.astype(dtype), sharding), None)
    width = int(np.diff(csr.indptr).max())  # > 0: more than dense_max_words ≥ 0 words used
    slot = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], np.diff(csr.indptr))
    weights = np.zeros((n_pad, width), np.float32)
    word_ids = np.zeros((n_pad, width), np.int32)
    weights[rows, slot] = csr.data
    word_ids[rows, slot] = csr.indices
    return cls(n, csr.shape[1], "padded", None, ids, mesh, chunk, normalise,
               _place(weights.astype(dtype), sharding), _place(word_ids, sharding))

  @property
  def num_devices(self) -> int:
    return self.mesh.devices.size

  def memory_bytes(self) -> int:
    """Bytes the gallery takes on the devices, padding included."""
    return sum(a.nbytes for a in (self._weights, self._word_ids) if a is not None)

  def search(self, query_vectors, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k best items of each query (k capped at N, as in the exact index): ids or
    positions (Q, k) and scores (Q, k) float32; (k,) each for one (V,) query. Items that
    share no word with a query score 0 and come in gallery order, as in the exact index.

    Raises:
      ValueError: k not a whole number ≥ 1, a vocabulary width other than the gallery's,
        bad weights.
    """
    if not _is_int(k) or k < 1:
      raise ValueError(f"k must be a whole number, at least 1, got {k!r}")
    k = int(min(k, self.num_items))
    arr = query_vectors if sp.issparse(query_vectors) else np.asarray(query_vectors)
    single = arr.ndim == 1
    queries = _as_csr(arr[None, :] if single else arr, "query vectors")
    if queries.shape[1] != self.vocab_size:
      raise ValueError(f"query vectors have {queries.shape[1]} vocabulary columns, the "
                       f"gallery {self.vocab_size}")
    if queries.shape[0] == 0:
      empty = np.zeros((0, k), np.int64) if self.ids is None else np.zeros((0, k), self.ids.dtype)
      return empty, np.zeros((0, k), np.float32)
    queries = _normalise_rows(queries) if self.normalise else queries
    dense_q = queries.toarray()
    if self.layout == "dense":
      dense_q = dense_q[:, self.words]
    scores, positions = _ranker(self.mesh, self.layout, self.chunk, self.num_items, k)(
        jnp.asarray(dense_q), self._weights, self._word_ids)
    scores, positions = np.asarray(scores), np.asarray(positions)
    found = positions if self.ids is None else self.ids[positions]
    return (found[0], scores[0]) if single else (found, scores)


def _is_int(value) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _place(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """The array on the mesh, each device sent only its own rows."""
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _best_of(scores_a, items_a, scores_b, items_b, k):
  """The k best of two (Q, ·) candidate lists, the first list winning ties."""
  scores = jnp.concatenate([scores_a, scores_b], axis=1)
  items = jnp.concatenate([items_a, items_b], axis=1)
  best, at = jax.lax.top_k(scores, k)
  return best, jnp.take_along_axis(items, at, axis=1)


@functools.lru_cache(maxsize=32)
def _ranker(mesh: Mesh, layout: str, chunk: int, num_items: int, k: int):
  """The compiled search: (queries (Q, D or V), weights, word ids) → (scores, positions)."""

  def shard(queries, weights, word_ids):
    local = weights.shape[0]
    first = jax.lax.axis_index(AXIS) * local
    q = queries.shape[0]

    def step(carry, start):
      block = jax.lax.dynamic_slice_in_dim(weights, start, chunk).astype(jnp.float32)
      if layout == "dense":
        scores = jnp.dot(queries, block.T, precision=jax.lax.Precision.HIGHEST)
      else:
        words = jax.lax.dynamic_slice_in_dim(word_ids, start, chunk)
        scores = jnp.einsum("qcp,cp->qc", queries[:, words], block,
                            precision=jax.lax.Precision.HIGHEST)
      items = first + start + jnp.arange(chunk)
      scores = jnp.where(items[None, :] < num_items, scores, -jnp.inf)
      top, at = jax.lax.top_k(scores, min(k, chunk))
      return _best_of(*carry, top, items[at], k), None

    init = (jnp.full((q, k), -jnp.inf, jnp.float32), jnp.zeros((q, k), jnp.int32))
    (best, items), _ = jax.lax.scan(step, init, jnp.arange(0, local, chunk))
    # Devices in mesh order hold items in gallery order, so concatenating their lists in that
    # order keeps ties with the earlier item.
    best = jax.lax.all_gather(best, AXIS, axis=1, tiled=True)
    items = jax.lax.all_gather(items, AXIS, axis=1, tiled=True)
    best, at = jax.lax.top_k(best, k)
    return best, jnp.take_along_axis(items, at, axis=1)

  word_spec = None if layout == "dense" else P(AXIS)
  mapped = jax.shard_map(shard, mesh=mesh, in_specs=(P(), P(AXIS), word_spec),
                         out_specs=(P(), P()), check_vma=False)
  return jax.jit(mapped)
