"""Generation metrics: independent references, hand-computed cases and Table 4's layout."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from lexmo_jax.evaluation import generation


def reference_fid(x, y):
  """The Fréchet formula written out: Gaussians fitted with np.cov, sqrtm of the product."""
  mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
  cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  root = np.real(scipy.linalg.sqrtm(cov_x @ cov_y))
  return float(np.sum((mu_x - mu_y) ** 2) + np.trace(cov_x) + np.trace(cov_y)
               - 2 * np.trace(root))


def reference_r_precision(text, motion, batch_size, top_k):
  """Per-caption loop: sort the batch's motions by distance, find the caption's own."""
  hits = [0] * top_k
  kept = len(text) // batch_size * batch_size
  for start in range(0, kept, batch_size):
    for i in range(batch_size):
      t = text[start + i]
      dists = [(math.dist(t, motion[start + j]), j) for j in range(batch_size)]
      position = [j for _, j in sorted(dists)].index(i)
      for k in range(top_k):
        if position <= k:
          hits[k] += 1
  return np.array(hits) / kept


@pytest.fixture
def embeddings():
  rng = np.random.default_rng(0)
  real = rng.normal(size=(400, 16))
  generated = 0.8 * rng.normal(size=(350, 16)) + 0.3
  return real, generated


# --- FID ----------------------------------------------------------------------------------------

def test_fid_matches_the_frechet_formula(embeddings):
  real, generated = embeddings
  got = generation.fid(real, generated)
  assert got == pytest.approx(reference_fid(real, generated), rel=1e-9)
  assert got > 1.0


def test_fid_of_a_set_with_itself_is_zero(embeddings):
  real, _ = embeddings
  assert abs(generation.fid(real, real)) < 1e-8


def test_fid_of_a_mean_shift_is_the_squared_shift(embeddings):
  real, _ = embeddings
  delta = np.linspace(-1.0, 2.0, real.shape[1])
  assert generation.fid(real, real + delta) == pytest.approx(np.sum(delta ** 2), rel=1e-7)
  assert generation.fid(real, real + 2 * delta) > generation.fid(real, real + delta)


def test_frechet_distance_of_diagonal_gaussians():
  # Commuting covariances: d² = ||Δμ||² + Σ (√a − √b)².
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
  mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
  got = generation.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
  assert got == pytest.approx(5.0 + 1.0 + 1.0, rel=1e-12)


def test_frechet_distance_retries_a_singular_product_with_an_offset(monkeypatch):
  sigma1, sigma2 = np.diag([1.0, 2.0]), np.diag([3.0, 0.5])
  calls = []
  real_sqrtm = scipy.linalg.sqrtm

  def flaky_sqrtm(matrix):
    calls.append(matrix)
    return np.full_like(matrix, np.inf) if len(calls) == 1 else real_sqrtm(matrix)

  monkeypatch.setattr(generation.linalg, "sqrtm", flaky_sqrtm)
  with pytest.warns(RuntimeWarning, match="singular"):
    got = generation.frechet_distance(np.zeros(2), sigma1, np.zeros(2), sigma2, eps=1e-3)
  offset = 1e-3 * np.eye(2)
  np.testing.assert_allclose(calls[1], (sigma1 + offset) @ (sigma2 + offset))
  expected = 4.0 + 2.5 - 2 * (math.sqrt(1.001 * 3.001) + math.sqrt(2.001 * 0.501))
  assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_rejects_a_large_imaginary_part(monkeypatch):
  monkeypatch.setattr(generation.linalg, "sqrtm", lambda m: m + 0.5j * np.eye(len(m)))
  with pytest.raises(ValueError, match="imaginary"):
    generation.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))


def test_fid_errors():
  with pytest.raises(ValueError, match="embedding width"):
    generation.fid(np.ones((5, 3)), np.ones((5, 4)))
  with pytest.raises(ValueError, match="at least 2"):
    generation.fid(np.ones((1, 3)), np.ones((5, 3)))
  with pytest.raises(ValueError, match="NaN"):
    generation.fid(np.full((5, 3), np.nan), np.ones((5, 3)))


# --- Distances, R-precision, MM-Dist --------------------------------------------------------------

def test_euclidean_distance_matrix_matches_a_loop(embeddings):
  real, generated = embeddings
  a, b = real[:7], generated[:5]
  got = generation.euclidean_distance_matrix(a, b)
  expected = np.array([[math.dist(x, y) for y in b] for x in a])
  assert got.shape == (7, 5)
  np.testing.assert_allclose(got, expected, rtol=1e-10)
  # Identical rows: zero, never NaN from a rounded-negative square.
  same = generation.euclidean_distance_matrix(a, a)
  assert np.all(np.isfinite(same)) and np.all(np.diagonal(same) < 1e-6)


def test_r_precision_matches_a_brute_force_loop():
  rng = np.random.default_rng(1)
  motion = rng.normal(size=(100, 16))  # three batches of 32, four rows dropped
  text = motion + rng.normal(scale=1.5, size=motion.shape)
  got = generation.r_precision(text, motion)
  expected = reference_r_precision(text, motion, 32, 3)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
  assert got.shape == (3,) and 0 < got[0] < got[2] < 1


def test_r_precision_of_perfect_embeddings_is_one():
  motion = np.random.default_rng(2).normal(size=(64, 8))
  np.testing.assert_array_equal(generation.r_precision(motion.copy(), motion), [1.0, 1.0, 1.0])


def test_r_precision_of_known_ranks_drops_the_incomplete_batch():
  # Batch 1 (1-D): motions at 0, 1, 2, 3; the captions put their own motion at ranks 0, 2, 2, 3.
  motion = np.array([0.0, 1.0, 2.0, 3.0,        # batch 1
                     10.0, 20.0, 30.0, 40.0,    # batch 2: every caption on its own motion
                     0.0, 1.0, 2.0])[:, None]   # incomplete batch, dropped
  text = np.array([0.0, 2.9, -1.0, 0.2,
                   10.0, 20.0, 30.0, 40.0,
                   9.0, 9.0, 9.0])[:, None]
  got = generation.r_precision(text, motion, batch_size=4, top_k=4)
  np.testing.assert_allclose(got, [5 / 8, 5 / 8, 7 / 8, 8 / 8])
  np.testing.assert_allclose(got, reference_r_precision(text, motion, 4, 4))


def test_r_precision_errors():
  x = np.zeros((31, 4))
  with pytest.raises(ValueError, match="only 31 pairs"):
    generation.r_precision(x, x)
  with pytest.raises(ValueError, match="only 31 pairs"):
    generation.matching_score(x, x)
  with pytest.raises(ValueError, match="shapes"):
    generation.r_precision(np.zeros((32, 4)), np.zeros((32, 5)))
  with pytest.raises(ValueError, match="top_k"):
    generation.r_precision(np.zeros((32, 4)), np.zeros((32, 4)), top_k=33)


def test_matching_score_by_hand():
  text = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
  motion = np.array([[3.0, 4.0], [1.0, 2.0], [0.0, 0.0]])
  # Distances 5 and 1; the third pair is an incomplete batch of 2, dropped.
  assert generation.matching_score(text, motion, batch_size=2) == pytest.approx(3.0)


def test_matching_score_is_the_mean_batch_trace(embeddings):
  real, generated = embeddings
  text, motion = real[:70], generated[:70]
  traces = [np.trace(generation.euclidean_distance_matrix(text[s:s + 32], motion[s:s + 32]))
            for s in (0, 32)]
  assert generation.matching_score(text, motion) == pytest.approx(sum(traces) / 64, rel=1e-9)


# --- Diversity and MultiModality ----------------------------------------------------------------

def test_diversity_matches_a_loop_with_the_same_draws(embeddings):
  _, generated = embeddings
  draws = np.random.default_rng(7)
  first = draws.choice(len(generated), 300, replace=False)
  second = draws.choice(len(generated), 300, replace=False)
  expected = sum(math.dist(generated[i], generated[j]) for i, j in zip(first, second)) / 300
  assert generation.diversity(generated, rng=np.random.default_rng(7)) == pytest.approx(expected)
  assert generation.diversity(generated, rng=7) == pytest.approx(expected)


def test_diversity_needs_enough_motions():
  with pytest.raises(ValueError, match="only 299 motion"):
    generation.diversity(np.zeros((299, 4)), rng=0)
  assert generation.diversity(np.zeros((300, 4)), rng=0) == 0.0


def test_multimodality_matches_a_loop_with_the_same_draws():
  emb = np.random.default_rng(3).normal(size=(6, 30, 8))
  draws = np.random.default_rng(11)
  first = draws.choice(30, 10, replace=False)
  second = draws.choice(30, 10, replace=False)
  per_text = [sum(math.dist(emb[n, i], emb[n, j]) for i, j in zip(first, second)) / 10
              for n in range(6)]
  expected = sum(per_text) / 6
  assert generation.multimodality(emb, rng=np.random.default_rng(11)) == pytest.approx(expected)


def test_multimodality_needs_enough_repeats():
  with pytest.raises(ValueError, match="only 9 per caption"):
    generation.multimodality(np.zeros((4, 9, 3)), rng=0)
  with pytest.raises(ValueError, match=r"\(N, R, D\)"):
    generation.multimodality(np.zeros((4, 9)), rng=0)


# --- Repeats and the table --------------------------------------------------------------------

def test_interval_by_hand():
  mean, half = generation.interval([1.0, 2.0, 3.0, 4.0])
  assert mean == pytest.approx(2.5)
  assert half == pytest.approx(1.96 * math.sqrt(1.25) / 2)  # population std √1.25
  with pytest.raises(ValueError, match="non-empty"):
    generation.interval([])


def test_summarise_and_one_repeat(embeddings):
  real, generated = embeddings
  text = generated + np.random.default_rng(4).normal(scale=0.5, size=generated.shape)
  mm = np.random.default_rng(5).normal(size=(3, 30, 16))
  one = generation.repeat_metrics(text, generated, real, mm, rng=9)
  assert set(one) == set(generation.METRIC_KEYS)
  kept = len(generated) // 32 * 32
  np.testing.assert_allclose([one["top1"], one["top2"], one["top3"]],
                             generation.r_precision(text, generated))
  assert one["fid"] == pytest.approx(generation.fid(real, generated[:kept]))
  draws = np.random.default_rng(9)
  assert one["diversity"] == pytest.approx(generation.diversity(generated[:kept], rng=draws))
  assert one["multimodality"] == pytest.approx(generation.multimodality(mm, rng=draws))

  summary = generation.summarise({"fid": [0.1, 0.3], "top1": [0.5, 0.5]})
  assert summary["fid"] == pytest.approx((0.2, 1.96 * 0.1 / math.sqrt(2)))
  assert summary["top1"] == pytest.approx((0.5, 0.0))
  with pytest.raises(ValueError, match="'fid'"):
    generation.summarise({"fid": []})


def test_generation_table_has_the_rows_and_the_published_rows():
  measured = {"top1": (0.5321, 0.0031), "top2": (0.7, 0.002), "top3": (0.8, 0.001),
              "fid": (0.041, 0.002), "mm_dist": 2.852, "diversity": (9.5, 0.08)}
  table = generation.generation_table([("ours", measured)])
  lines = table.strip().splitlines()
  assert lines[0] == ("| Method | R-Precision Top-1 | Top-2 | Top-3 | FID ↓ | MM-Dist ↓ | "
                      "Diversity → | MultiModality ↑ |")
  assert lines[2] == ("| ours | 0.532 ± 0.003 | 0.700 ± 0.002 | 0.800 ± 0.001 | "
                      "0.041 ± 0.002 | 2.852 | 9.500 ± 0.080 | – |")
  published = {line.split(" | ")[0][2:]: line for line in lines[3:]}
  assert published.keys() == {
      "MoMask (published, HumanML3D)", "MoMask + lexical text encoder (published, HumanML3D)",
      "T2M-GPT (published, HumanML3D)",
      "T2M-GPT + lexical text encoder (published, HumanML3D)"}
  # The paper's Table 4: FID, top-1, top-2, top-3, MM-Dist.
  assert published["MoMask (published, HumanML3D)"] == (
      "| MoMask (published, HumanML3D) | 0.521 | 0.713 | 0.807 | 0.045 | 2.958 | – | – |")
  assert "| 0.532 | 0.721 | 0.814 | 0.041 | 2.852 |" in (
      published["MoMask + lexical text encoder (published, HumanML3D)"])
  assert "| 0.492 | – | – | 0.141 | – |" in published["T2M-GPT (published, HumanML3D)"]
  assert "| 0.506 | – | – | 0.133 | – |" in (
      published["T2M-GPT + lexical text encoder (published, HumanML3D)"])
  assert "published" not in generation.generation_table([("ours", measured)], published=False)
  with pytest.raises(ValueError, match="unknown metric"):
    generation.generation_table([("ours", {"FID": 0.1})])
