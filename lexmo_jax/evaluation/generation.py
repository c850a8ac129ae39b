"""Text-to-motion generation metrics with the semantics of T2M's evaluation.

The field scores a motion generator with the text–motion matching evaluator of Guo et al.
(CVPR 2022, "Generating Diverse and Natural 3D Human Motions from Text"; code:
EricGuo5513/text-to-motion, `utils/metrics.py` and `final_evaluations.py`). The evaluator maps a
caption and a motion to embeddings of the same width (512 in the field, any D here); every
metric below is a function of those embeddings only, so this module is pure numpy/scipy.

  R-precision  `r_precision(text, motion)`: in consecutive batches of 32 pairs, the share of
               captions whose own motion is among the 1, 2, 3 nearest of the batch's 32.
  FID          `fid(real, generated)`: Fréchet distance between the Gaussians fitted to the
               real and the generated motion embeddings.
  MM-Dist      `matching_score(text, motion)`: mean distance between a caption and its motion
               (T2M's "Matching Score").
  Diversity    `diversity(motion)`: mean distance between 300 random pairs of motions.
  MultiModality `multimodality(motion_nrd)`: mean distance between 10 random pairs among the
               R motions generated for the same caption.

Every distance is Euclidean, in the evaluator's embedding units. The field runs the whole
evaluation `REPEATS` = 20 times (the test set reshuffled and regenerated each time) and reports
mean ± 1.96·std/√20 (`interval`, `summarise`); `generation_table` lays the result out as the
paper's Table 4.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import linalg

# T2M's evaluation settings (final_evaluations.py): replication_times, batch_size,
# diversity_times, mm_num_times.
REPEATS = 20
R_PRECISION_BATCH = 32
R_PRECISION_TOP_K = 3
DIVERSITY_PAIRS = 300
MULTIMODALITY_PAIRS = 10
# Added to the diagonal of both covariances when their product is singular (T2M's eps).
FID_EPS = 1e-6
# Largest imaginary part on the diagonal of sqrt(Σ1·Σ2) still taken as rounding (T2M's atol).
_IMAGINARY_ATOL = 1e-3

METRIC_KEYS = ("top1", "top2", "top3", "fid", "mm_dist", "diversity", "multimodality")
TABLE_COLUMNS = ("R-Precision Top-1", "Top-2", "Top-3", "FID ↓", "MM-Dist ↓", "Diversity →",
                 "MultiModality ↑")
PUBLISHED_SUFFIX = " (published, HumanML3D)"

# The paper's Table 4 (HumanML3D): generators with their own text encoder and with the paper's
# lexical text encoder in its place. Only FID, R-precision and MM-Dist are given (no intervals,
# no Diversity or MultiModality, no real-motion row); T2M-GPT's row gives FID and Top-1 only.
PUBLISHED_TABLE4: tuple[tuple[str, dict[str, float]], ...] = (
    ("MoMask", {"fid": 0.045, "top1": 0.521, "top2": 0.713, "top3": 0.807,
                "mm_dist": 2.958}),
    ("MoMask + lexical text encoder", {"fid": 0.041, "top1": 0.532, "top2": 0.721,
                                       "top3": 0.814, "mm_dist": 2.852}),
    ("T2M-GPT", {"fid": 0.141, "top1": 0.492}),
    ("T2M-GPT + lexical text encoder", {"fid": 0.133, "top1": 0.506}),
)


def _embeddings(x, name: str, ndim: int = 2) -> np.ndarray:
  arr = np.asarray(x)
  if arr.ndim != ndim or 0 in arr.shape:
    axes = "(N, D)" if ndim == 2 else "(N, R, D)"
    raise ValueError(f"{name} must be a non-empty {axes} array of evaluator embeddings, "
                     f"got shape {arr.shape}")
  if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
    raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
  arr = arr.astype(np.float64)
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{name} holds NaN or infinite values")
  return arr


def _pairs(text_nd, motion_nd) -> tuple[np.ndarray, np.ndarray]:
  text = _embeddings(text_nd, "text_nd")
  motion = _embeddings(motion_nd, "motion_nd")
  if text.shape != motion.shape:
    raise ValueError(f"text_nd and motion_nd must pair row i with row i and share the "
                     f"embedding width, got shapes {text.shape} and {motion.shape}")
  return text, motion


def _full_batches(n: int, batch_size: int) -> int:
  if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
      or batch_size < 1:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
  if n < batch_size:
    raise ValueError(f"R-precision and MM-Dist compare each caption with the motions of its "
                     f"batch of {batch_size}; got only {n} pairs, fewer than one batch")
  return n // batch_size


def _rng(rng) -> np.random.Generator:
  return np.random.default_rng(rng)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = FID_EPS) -> float:
  """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

  d² = ||mu1 − mu2||² + Tr(sigma1 + sigma2 − 2·sqrt(sigma1·sigma2)), as T2M's
  `calculate_frechet_distance` (itself the FID code of Heusel et al.): when the matrix square
  root is not finite (a singular product) `eps` is added to both diagonals and it is taken
  again; a small imaginary part left by rounding is dropped.

  Args:
    mu1, mu2: (D,) means.
    sigma1, sigma2: (D, D) covariances.
    eps: the diagonal offset used only for a singular product.
  Returns:
    The distance, in squared embedding units (a float; may be a tiny negative from rounding).
  Raises:
    ValueError: on mismatched shapes, or if sqrt(sigma1·sigma2) has a diagonal imaginary part
      above 1e-3 (the covariances are not valid).
  """
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.ndim != 1 or mu1.shape != mu2.shape:
    raise ValueError(f"means must be (D,) vectors of the same length, got {mu1.shape} and "
                     f"{mu2.shape}")
  d = mu1.shape[0]
  if sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(f"covariances must be ({d}, {d}) to match the means, got {sigma1.shape} "
                     f"and {sigma2.shape}")
  diff = mu1 - mu2
  with warnings.catch_warnings():
    # A singular product is handled below; scipy's own warning would only repeat it.
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
  if not np.all(np.isfinite(covmean)):
    warnings.warn(f"FID: sigma1·sigma2 is singular; adding {eps} to the diagonal of both "
                  "covariances", RuntimeWarning, stacklevel=2)
    offset = np.eye(d) * eps
    covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=_IMAGINARY_ATOL):
      raise ValueError(f"FID: sqrt(sigma1·sigma2) has an imaginary component of "
                       f"{np.max(np.abs(covmean.imag)):.3g}; are both covariances valid?")
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def activation_statistics(embeddings_nd) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and unbiased covariance (D, D) of (N, D) embeddings, as T2M fits them."""
  emb = _embeddings(embeddings_nd, "embeddings_nd")
  if emb.shape[0] < 2:
    raise ValueError(f"a covariance needs at least 2 embeddings, got {emb.shape[0]}")
  return emb.mean(axis=0), np.cov(emb, rowvar=False).reshape(emb.shape[1], emb.shape[1])


def fid(real_nd, generated_nd) -> float:
  """FID between real (N, D) and generated (M, D) motion embeddings (N, M ≥ 2).

  In the field both sets are the evaluator's motion embeddings of the test set's batches
  (real) and of the generator's motions for the same captions; they need not be the same size.
  """
  mu_real, sigma_real = activation_statistics(real_nd)
  mu_gen, sigma_gen = activation_statistics(generated_nd)
  if mu_real.shape != mu_gen.shape:
    raise ValueError(f"real_nd and generated_nd must share the embedding width, got "
                     f"{mu_real.shape[0]} and {mu_gen.shape[0]}")
  return frechet_distance(mu_real, sigma_real, mu_gen, sigma_gen)


def euclidean_distance_matrix(a_nd, b_md) -> np.ndarray:
  """(N, M) Euclidean distances, dist[i, j] = ||a_nd[i] − b_md[j]||.

  Expanded as ||a||² − 2a·b + ||b||², as T2M computes it; rounding can make the expansion
  slightly negative for near-identical rows (T2M then yields NaN), so it is clipped at 0.
  """
  a = _embeddings(a_nd, "a_nd")
  b = _embeddings(b_md, "b_md")
  if a.shape[1] != b.shape[1]:
    raise ValueError(f"a_nd and b_md must share the embedding width, got {a.shape[1]} and "
                     f"{b.shape[1]}")
  sq = (np.sum(a * a, axis=1, keepdims=True) - 2.0 * (a @ b.T) + np.sum(b * b, axis=1))
  return np.sqrt(np.maximum(sq, 0.0))


def r_precision(text_nd, motion_nd, batch_size: int = R_PRECISION_BATCH,
                top_k: int = R_PRECISION_TOP_K) -> np.ndarray:
  """R-precision of paired caption and motion embeddings, T2M's protocol.

  Rows are taken in consecutive batches of `batch_size` (the last incomplete batch is dropped,
  as T2M's loaders do with drop_last=True; shuffle beforehand for a new draw of batches). In
  each batch every caption ranks the batch's motions by increasing distance; entry k−1 of the
  result is the fraction of kept captions whose own motion is among the first k (so the
  values are cumulative and non-decreasing). Equal distances keep the batch order.

  Args:
    text_nd: (N, D) caption embeddings; row i describes motion i.
    motion_nd: (N, D) motion embeddings.
    batch_size: motions each caption is compared with (32 in the field).
    top_k: how many ranks to report (3 in the field), 1 ≤ top_k ≤ batch_size.
  Returns:
    (top_k,) float64 fractions in [0, 1].
  Raises:
    ValueError: on mismatched or non-finite embeddings, fewer than batch_size pairs, or an
      invalid top_k.
  """
  text, motion = _pairs(text_nd, motion_nd)
  batches = _full_batches(text.shape[0], batch_size)
  if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) \
      or not 1 <= top_k <= batch_size:
    raise ValueError(f"top_k must be an integer between 1 and batch_size={batch_size}, "
                     f"got {top_k!r}")
  hits = np.zeros(top_k, dtype=np.int64)
  own = np.arange(batch_size)
  for start in range(0, batches * batch_size, batch_size):
    dist = euclidean_distance_matrix(text[start:start + batch_size],
                                     motion[start:start + batch_size])
    order = np.argsort(dist, axis=1, kind="stable")
    rank = np.argmax(order == own[:, None], axis=1)
    hits += np.count_nonzero(rank[:, None] < np.arange(1, top_k + 1), axis=0)
  return hits / float(batches * batch_size)


def matching_score(text_nd, motion_nd, batch_size: int = R_PRECISION_BATCH) -> float:
  """MM-Dist (T2M's "Matching Score"): mean distance between each caption and its motion.

  Over the same rows as `r_precision` (whole batches of `batch_size`; the rest dropped), as
  T2M sums the traces of the batches' distance matrices. Shapes and errors as `r_precision`.
  """
  text, motion = _pairs(text_nd, motion_nd)
  kept = _full_batches(text.shape[0], batch_size) * batch_size
  return float(np.linalg.norm(text[:kept] - motion[:kept], axis=1).mean())


def diversity(embeddings_nd, pairs: int = DIVERSITY_PAIRS,
              rng: np.random.Generator | int | None = None) -> float:
  """Diversity: mean distance between `pairs` random pairs of (N, D) motion embeddings.

  As T2M: two index sets of size `pairs` are drawn from the N rows, each without replacement
  (`rng.choice(N, pairs, replace=False)`, first then second), and row first[i] is paired with
  row second[i]. `rng` is a Generator, a seed, or None for fresh entropy.

  Raises:
    ValueError: if N < pairs (T2M asserts N > pairs; N == pairs is allowed here, since the
      draw without replacement is then still possible) or pairs < 1.
  """
  emb = _embeddings(embeddings_nd, "embeddings_nd")
  n = emb.shape[0]
  if pairs < 1:
    raise ValueError(f"pairs must be at least 1, got {pairs}")
  if n < pairs:
    raise ValueError(f"diversity draws {pairs} motions without replacement, twice, but there "
                     f"are only {n} motion embeddings")
  gen = _rng(rng)
  first = gen.choice(n, pairs, replace=False)
  second = gen.choice(n, pairs, replace=False)
  return float(np.linalg.norm(emb[first] - emb[second], axis=1).mean())


def multimodality(embeddings_nrd, pairs: int = MULTIMODALITY_PAIRS,
                  rng: np.random.Generator | int | None = None) -> float:
  """MultiModality: how much the R motions generated for one caption differ.

  As T2M: two index sets of size `pairs` are drawn from the R repeats, each without
  replacement, once for all captions (the same pairs of repeats for every caption); the
  result is the mean over captions and pairs of the distance between the paired motions.
  T2M draws 10 pairs among 30 repeats of 100 captions.

  Args:
    embeddings_nrd: (N, R, D) motion embeddings, R generations for each of N captions.
    pairs: pairs per caption.
    rng: a Generator, a seed, or None for fresh entropy.
  Raises:
    ValueError: if R < pairs (T2M asserts R > pairs) or pairs < 1.
  """
  emb = _embeddings(embeddings_nrd, "embeddings_nrd", ndim=3)
  repeats = emb.shape[1]
  if pairs < 1:
    raise ValueError(f"pairs must be at least 1, got {pairs}")
  if repeats < pairs:
    raise ValueError(f"multimodality draws {pairs} of each caption's generations without "
                     f"replacement, twice, but there are only {repeats} per caption")
  gen = _rng(rng)
  first = gen.choice(repeats, pairs, replace=False)
  second = gen.choice(repeats, pairs, replace=False)
  return float(np.linalg.norm(emb[:, first] - emb[:, second], axis=2).mean())


def interval(values) -> tuple[float, float]:
  """(mean, half-width) of the 95% interval over repeats: mean ± 1.96·std/√n.

  std is the population standard deviation (np.std, ddof=0), as T2M's
  `get_metric_statistics`. values: (n,) one number per repeat.
  """
  arr = np.asarray(values, dtype=np.float64)
  if arr.ndim != 1 or arr.size == 0:
    raise ValueError(f"values must be a non-empty (n,) sequence, one per repeat, got shape "
                     f"{arr.shape}")
  return float(arr.mean()), float(1.96 * arr.std() / np.sqrt(arr.size))


def summarise(per_repeat: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
  """{metric: [value per repeat]} → {metric: (mean, half-width)}, see `interval`."""
  out = {}
  for key, values in per_repeat.items():
    try:
      out[key] = interval(values)
    except ValueError as e:
      raise ValueError(f"metric {key!r}: {e}") from None
  return out


def repeat_metrics(text_nd, motion_nd, real_motion_nd, mm_nrd=None, *,
                   rng: np.random.Generator | int | None = None,
                   batch_size: int = R_PRECISION_BATCH,
                   diversity_pairs: int = DIVERSITY_PAIRS,
                   multimodality_pairs: int = MULTIMODALITY_PAIRS) -> dict[str, float]:
  """One repeat of T2M's evaluation, keyed as METRIC_KEYS.

  Args:
    text_nd: (N, D) caption embeddings of the (shuffled) test batches.
    motion_nd: (N, D) embeddings of the motions scored for those captions (generated ones, or
      the real ones for the "Real motion" row).
    real_motion_nd: (M, D) embeddings of the real test motions, FID's reference.
    mm_nrd: optional (N', R, D) embeddings of R generations per caption; without it
      "multimodality" is left out.
    rng: one Generator (or seed) for Diversity's draw, then MultiModality's.
  Returns:
    {"top1", "top2", "top3", "fid", "mm_dist", "diversity"[, "multimodality"]: float}.
    As T2M, FID and Diversity use the rows that R-precision keeps (whole batches only).
  """
  text, motion = _pairs(text_nd, motion_nd)
  kept = _full_batches(text.shape[0], batch_size) * batch_size
  gen = _rng(rng)
  top = r_precision(text, motion, batch_size=batch_size, top_k=R_PRECISION_TOP_K)
  out = {"top1": float(top[0]), "top2": float(top[1]), "top3": float(top[2]),
         "fid": fid(real_motion_nd, motion[:kept]),
         "mm_dist": matching_score(text, motion, batch_size=batch_size),
         "diversity": diversity(motion[:kept], diversity_pairs, rng=gen)}
  if mm_nrd is not None:
    out["multimodality"] = multimodality(mm_nrd, multimodality_pairs, rng=gen)
  return out


def _cell(value) -> str:
  if value is None:
    return "–"
  if isinstance(value, (tuple, list)):
    mean, half = value
    return f"{mean:.3f} ± {half:.3f}"
  return f"{float(value):.3f}"


def generation_table(rows: Sequence[tuple[str, Mapping[str, tuple[float, float] | float]]],
                     published: bool = True) -> str:
  """A markdown table in the layout of the paper's Table 4.

  Args:
    rows: (method name, {metric key: (mean, half-width) or a bare number}) in print order;
      keys from METRIC_KEYS, a missing key prints "–".
    published: append the rows of PUBLISHED_TABLE4, their names ending in
      PUBLISHED_SUFFIX.
  Returns:
    The table, one line per row, ending in a newline.
  Raises:
    ValueError: on a metric key outside METRIC_KEYS (most likely a typo).
  """
  all_rows = list(rows)
  if published:
    all_rows += [(name + PUBLISHED_SUFFIX, metrics) for name, metrics in PUBLISHED_TABLE4]
  lines = ["| Method | " + " | ".join(TABLE_COLUMNS) + " |",
           "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
  for name, metrics in all_rows:
    unknown = sorted(set(metrics) - set(METRIC_KEYS))
    if unknown:
      raise ValueError(f"row {name!r} has unknown metric keys {unknown}; expected some of "
                       f"{list(METRIC_KEYS)}")
    cells = [_cell(metrics.get(key)) for key in METRIC_KEYS]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"
