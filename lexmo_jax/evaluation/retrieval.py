"""Text↔motion retrieval metrics with the semantics of TMR's evaluation.

A similarity matrix has text queries as rows and motions as columns, with each true pair on
the diagonal. Text→motion (t2m) ranks the columns of each row; motion→text (m2t) ranks the
rows of each column. Ranks are 0-based positions in the list sorted by decreasing similarity;
R@k is the percentage of queries whose rank is below k and MedR is the median rank plus one.

The protocols of the published tables:
  "All"             `contrastive_metrics(sims)` on the whole test set.
  "All with threshold"  `contrastive_metrics(sims, text_emb, threshold)`: items whose caption
                    is close to the query's caption also count as correct.
  "Small batches"   `small_batch_metrics(sims)`: the average over random batches of 32
                    (the protocol of Guo et al., as re-run by TMR).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

RECALL_AT = (1, 2, 3, 5, 10)
METRIC_NAMES = tuple(f"R@{k}" for k in RECALL_AT) + ("MedR",)
DIRECTIONS = ("t2m", "m2t")
# Bounds the (rows × N) comparison block built while ranking, so a 20k×20k matrix stays cheap.
_ROW_BLOCK_ELEMENTS = 1 << 24


def _check_square(sims: np.ndarray, name: str = "sims") -> np.ndarray:
  sims = np.asarray(sims)
  if sims.ndim != 2 or sims.shape[0] != sims.shape[1] or sims.shape[0] == 0:
    raise ValueError(f"{name} must be a non-empty square (N, N) matrix with true pairs on "
                     f"the diagonal, got shape {sims.shape}")
  if not np.issubdtype(sims.dtype, np.number) or np.issubdtype(sims.dtype, np.complexfloating):
    raise ValueError(f"{name} must hold real numbers, got dtype {sims.dtype}")
  if not np.all(np.isfinite(sims)):
    raise ValueError(f"{name} holds NaN or infinite similarities; ranks would be undefined")
  return sims


def _relevance(text_emb, threshold: float | None, n: int) -> np.ndarray | None:
  """Which items count as correct for each query. Returns (N, N) bool or None."""
  if text_emb is None and threshold is None:
    return None
  if text_emb is None or threshold is None:
    raise ValueError("the threshold protocol needs both text_emb and threshold")
  emb = np.asarray(text_emb, dtype=np.float64)
  if emb.ndim != 2 or emb.shape[0] != n:
    raise ValueError(f"text_emb must be (N, D) with N={n} rows, one per caption, "
                     f"got shape {emb.shape}")
  if not np.all(np.isfinite(emb)):
    raise ValueError("text_emb holds NaN or infinite values")
  norms = np.linalg.norm(emb, axis=1, keepdims=True)
  if np.any(norms == 0):
    raise ValueError("text_emb has an all-zero row; its cosine similarity is undefined")
  unit = emb / norms
  # TMR maps the threshold from [0, 1] to the cosine range [-1, 1].
  relevant = (unit @ unit.T) > 2 * threshold - 1
  # A true pair is always correct, even if rounding puts its self-similarity below 1.
  np.fill_diagonal(relevant, True)
  return relevant


def _ranks(sims: np.ndarray, relevant: np.ndarray | None) -> np.ndarray:
  """0-based rank of the best correct item of each row, ties averaged. Returns (N,) float64.

  The best correct item is the one with the highest similarity among the relevant ones
  (only the diagonal without a relevance mask). Items with exactly its score share the
  positions they would occupy, and the rank is the mean of those positions, as in TMR.
  """
  n = sims.shape[0]
  if relevant is None:
    target = np.diagonal(sims).copy()
  else:
    target = np.where(relevant, sims, -np.inf).max(axis=1)
  ranks = np.empty(n, dtype=np.float64)
  block = max(1, _ROW_BLOCK_ELEMENTS // n)
  for start in range(0, n, block):
    rows = sims[start:start + block]
    t = target[start:start + block, None]
    above = np.count_nonzero(rows > t, axis=1)
    equal = np.count_nonzero(rows == t, axis=1)
    ranks[start:start + block] = above + (equal - 1) / 2
  return ranks


def _ranks_to_metrics(ranks: np.ndarray, rounding: int | None) -> dict[str, float]:
  n = ranks.shape[0]
  metrics = {f"R@{k}": 100.0 * float(np.count_nonzero(ranks < k)) / n for k in RECALL_AT}
  metrics["MedR"] = float(np.median(ranks) + 1)
  if rounding is not None:
    metrics = {key: round(value, rounding) for key, value in metrics.items()}
  return metrics


def retrieval_ranks(sims, text_emb=None, threshold: float | None = None
                    ) -> dict[str, np.ndarray]:
  """0-based ranks of every query, per direction.

  Args:
    sims: (N, N) similarities, rows text queries, columns motions, true pairs on the diagonal.
    text_emb: optional (N, D) caption embeddings for the threshold protocol.
    threshold: in [0, 1]; captions with cosine similarity above 2·threshold−1 are equivalent.

  Returns:
    {"t2m": (N,) ranks, "m2t": (N,) ranks}, tied positions averaged (so ranks may end in .5).
  """
  sims = _check_square(sims)
  relevant = _relevance(text_emb, threshold, sims.shape[0])
  relevant_t = None if relevant is None else relevant.T
  return {"t2m": _ranks(sims, relevant), "m2t": _ranks(sims.T, relevant_t)}


def contrastive_metrics(sims, text_emb=None, threshold: float | None = None,
                        rounding: int | None = 2) -> dict[str, float]:
  """Recall at 1/2/3/5/10 (in %) and median rank for both directions.

  Args:
    sims: (N, N) similarities, rows text queries, columns motions, true pairs on the diagonal.
    text_emb: optional (N, D) caption embeddings; with `threshold`, every item whose caption
      has cosine similarity above 2·threshold−1 with the query's caption counts as correct.
    threshold: in [0, 1], TMR's "all with threshold" protocol (TMR reports 0.95).
    rounding: decimals kept, or None for unrounded values.

  Returns:
    {"t2m/R@1", ..., "t2m/R@10", "t2m/MedR", "m2t/R@1", ..., "m2t/MedR"} → float.
  """
  ranks = retrieval_ranks(sims, text_emb, threshold)
  return {f"{direction}/{key}": value
          for direction in DIRECTIONS
          for key, value in _ranks_to_metrics(ranks[direction], rounding).items()}


def small_batch_metrics(sims, batch_size: int = 32, seed: int = 0) -> dict[str, float]:
  """The metrics averaged over random batches, then rounded to 2 decimals.

  The permutation is the one `np.random.seed(seed); np.random.shuffle(np.arange(N))` gives,
  as in TMR's retrieval script; the ⌊N / batch_size⌋ full batches are kept and the rest is
  dropped. The global NumPy random state is left untouched.

  Args:
    sims: (N, N) similarities over the whole test set, in the order of its sorted ids.
    batch_size: items per batch (32 in the published tables).
    seed: seed of the shuffle.

  Returns:
    The same keys as `contrastive_metrics`.
  """
  sims = _check_square(sims)
  n = sims.shape[0]
  if batch_size < 1 or n < batch_size:
    raise ValueError(f"small-batch protocol needs at least one full batch: N={n}, "
                     f"batch_size={batch_size}")
  order = np.arange(n)
  np.random.RandomState(seed).shuffle(order)
  per_batch = []
  for i in range(n // batch_size):
    idx = order[i * batch_size:(i + 1) * batch_size]
    per_batch.append(contrastive_metrics(sims[np.ix_(idx, idx)], rounding=None))
  return {key: round(float(np.mean([m[key] for m in per_batch])), 2) for key in per_batch[0]}


def format_table(results: Mapping[str, Mapping[str, float]], first_column: str = "protocol"
                 ) -> str:
  """A Markdown table in the layout of TMR's tables: one row per protocol (or per method).

  Args:
    results: protocol name (or method) → metrics dict as returned by `contrastive_metrics`.
    first_column: the first column's title.

  Returns:
    The table: the protocol, then R@1 R@2 R@3 R@5 R@10 MedR for t2m, then the same for m2t.
  """
  header = [first_column] + [f"{d} {m}" for d in DIRECTIONS for m in METRIC_NAMES]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
  for protocol, metrics in results.items():
    missing = [f"{d}/{m}" for d in DIRECTIONS for m in METRIC_NAMES
               if f"{d}/{m}" not in metrics]
    if missing:
      raise KeyError(f"metrics of protocol {protocol!r} lack {', '.join(missing)}")
    cells = [f"{float(metrics[f'{d}/{m}']):.2f}" for d in DIRECTIONS for m in METRIC_NAMES]
    lines.append("| " + " | ".join([str(protocol)] + cells) + " |")
  return "\n".join(lines)
