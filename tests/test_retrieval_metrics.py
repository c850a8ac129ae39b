"""Retrieval metrics: hand-computed cases and an independent sort-based reference."""
import numpy as np
import pytest

from lexmo_jax.evaluation import retrieval

KEYS = [f"{d}/{m}" for d in ("t2m", "m2t")
        for m in ("R@1", "R@2", "R@3", "R@5", "R@10", "MedR")]


def reference_metrics(sims, relevant=None):
  """Straightforward per-query loop: sort, find the positions of the best correct score."""
  def ranks(s, rel):
    out = []
    for i, row in enumerate(s):
      correct = [i] if rel is None else np.flatnonzero(rel[i])
      best = max(row[j] for j in correct)
      ordered = sorted(row, reverse=True)
      positions = [p for p, v in enumerate(ordered) if v == best]
      out.append(sum(positions) / len(positions))
    return np.array(out)

  result = {}
  for name, s, rel in (("t2m", sims, relevant),
                       ("m2t", sims.T, None if relevant is None else relevant.T)):
    r = ranks(s, rel)
    for k in (1, 2, 3, 5, 10):
      result[f"{name}/R@{k}"] = 100.0 * sum(1 for x in r if x < k) / len(r)
    ordered = sorted(r)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    result[f"{name}/MedR"] = median + 1
  return result


def test_identity_is_perfect():
  metrics = retrieval.contrastive_metrics(np.eye(12))
  assert list(metrics) == KEYS
  for key in KEYS:
    assert metrics[key] == (1.0 if key.endswith("MedR") else 100.0)


def test_reversed_puts_every_true_pair_last():
  n = 5
  sims = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(np.float32)
  metrics = retrieval.contrastive_metrics(sims)
  for d in ("t2m", "m2t"):
    assert metrics[f"{d}/R@1"] == metrics[f"{d}/R@2"] == metrics[f"{d}/R@3"] == 0.0
    assert metrics[f"{d}/R@5"] == metrics[f"{d}/R@10"] == 100.0
    assert metrics[f"{d}/MedR"] == 5.0


def test_hand_computed_matrix():
  sims = np.array([[0.9, 0.1, 0.5],
                   [0.8, 0.2, 0.3],
                   [0.1, 0.7, 0.4]])
  ranks = retrieval.retrieval_ranks(sims)
  np.testing.assert_array_equal(ranks["t2m"], [0, 2, 1])
  np.testing.assert_array_equal(ranks["m2t"], [0, 1, 1])
  metrics = retrieval.contrastive_metrics(sims)
  assert metrics["t2m/R@1"] == 33.33
  assert metrics["t2m/R@2"] == 66.67
  assert metrics["t2m/R@3"] == 100.0
  assert metrics["t2m/MedR"] == 2.0
  assert metrics["m2t/R@1"] == 33.33
  assert metrics["m2t/R@2"] == 100.0
  assert metrics["m2t/MedR"] == 2.0


def test_ties_get_the_average_position():
  sims = np.array([[1.0, 1.0, 1.0, 0.0],
                   [0.0, 1.0, 1.0, 0.0],
                   [0.0, 0.0, 1.0, 0.0],
                   [0.0, 0.0, 0.0, 1.0]])
  ranks = retrieval.retrieval_ranks(sims)
  # Row 0 shares the top score with two others: positions 0, 1, 2 → 1.
  np.testing.assert_array_equal(ranks["t2m"], [1.0, 0.5, 0.0, 0.0])
  # Column 2 holds 1.0 three times: positions 0, 1, 2 → 1.
  np.testing.assert_array_equal(ranks["m2t"], [0.0, 0.5, 1.0, 0.0])
  metrics = retrieval.contrastive_metrics(sims, rounding=None)
  # A rank of 0.5 is below 1, so it counts for R@1, as in TMR.
  assert metrics["t2m/R@1"] == 75.0
  assert metrics["t2m/MedR"] == 1.25
  assert metrics["m2t/R@1"] == 75.0


def test_threshold_counts_equivalent_captions():
  sims = np.array([[0.5, 0.9, 0.1, 0.2],
                   [0.6, 0.4, 0.8, 0.1],
                   [0.1, 0.2, 0.6, 0.3],
                   [0.7, 0.1, 0.2, 0.6]])
  # Captions 0 and 1 say the same thing; 2 and 3 are unrelated to everything else.
  text_emb = np.array([[1.0, 0.0, 0.0],
                       [2.0, 0.0, 0.0],
                       [0.0, 1.0, 0.0],
                       [0.0, 0.0, 1.0]])
  plain = retrieval.retrieval_ranks(sims)
  np.testing.assert_array_equal(plain["t2m"], [1, 2, 0, 1])
  np.testing.assert_array_equal(plain["m2t"], [2, 1, 1, 0])
  thresholded = retrieval.retrieval_ranks(sims, text_emb, threshold=0.95)
  # Query 0 may take motion 1 (0.9, first); query 1 may take motion 0 (0.6, second).
  np.testing.assert_array_equal(thresholded["t2m"], [0, 1, 0, 1])
  # Motion 0 may take caption 1 (0.6, second); motion 1 may take caption 0 (0.9, first).
  np.testing.assert_array_equal(thresholded["m2t"], [1, 0, 1, 0])
  metrics = retrieval.contrastive_metrics(sims, text_emb, threshold=0.95)
  assert metrics["t2m/R@1"] == 50.0
  assert metrics["t2m/R@2"] == 100.0
  assert metrics["m2t/R@1"] == 50.0
  assert metrics["m2t/MedR"] == 1.5
  plain_metrics = retrieval.contrastive_metrics(sims)
  assert plain_metrics["t2m/R@1"] == 25.0
  assert plain_metrics["m2t/MedR"] == 2.0


def test_threshold_is_strict_on_cosine():
  sims = np.array([[0.1, 0.9], [0.9, 0.1]])
  # cos(45°) ≈ 0.7071; threshold 0.85 maps to 0.7 (counted), 0.86 to 0.72 (not counted).
  text_emb = np.array([[1.0, 0.0], [1.0, 1.0]])
  loose = retrieval.contrastive_metrics(sims, text_emb, threshold=0.85)
  strict = retrieval.contrastive_metrics(sims, text_emb, threshold=0.86)
  assert loose["t2m/R@1"] == 100.0
  assert strict["t2m/R@1"] == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_reference_on_random_matrix(seed):
  rng = np.random.default_rng(seed)
  n = 60
  # Coarse quantisation makes many ties, which the reference resolves by sorting.
  sims = np.round(rng.normal(size=(n, n)) + 1.5 * np.eye(n), 1).astype(np.float32)
  got = retrieval.contrastive_metrics(sims, rounding=None)
  want = reference_metrics(sims)
  for key in KEYS:
    assert got[key] == pytest.approx(want[key], abs=1e-9), key

  text_emb = rng.normal(size=(n, 4))
  unit = text_emb / np.linalg.norm(text_emb, axis=1, keepdims=True)
  relevant = unit @ unit.T > 2 * 0.8 - 1
  np.fill_diagonal(relevant, True)
  got = retrieval.contrastive_metrics(sims, text_emb, threshold=0.8, rounding=None)
  want = reference_metrics(sims, relevant)
  for key in KEYS:
    assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_rounding():
  rng = np.random.default_rng(3)
  sims = rng.normal(size=(7, 7))
  raw = retrieval.contrastive_metrics(sims, rounding=None)
  rounded = retrieval.contrastive_metrics(sims)
  assert any(raw[k] != round(raw[k], 2) for k in KEYS)
  for key in KEYS:
    assert rounded[key] == round(raw[key], 2)


def test_small_batch_reproduces_manual_loop():
  rng = np.random.default_rng(4)
  n = 100
  sims = rng.normal(size=(n, n)) + 2.0 * np.eye(n)
  state = np.random.get_state()
  got = retrieval.small_batch_metrics(sims)
  after = np.random.get_state()
  assert state[0] == after[0] and np.array_equal(state[1], after[1])

  np.random.seed(0)
  idx = np.arange(n)
  np.random.shuffle(idx)
  batches = [idx[32 * i:32 * (i + 1)] for i in range(n // 32)]
  assert len(batches) == 3
  per_batch = [reference_metrics(sims[np.ix_(b, b)]) for b in batches]
  for key in KEYS:
    assert got[key] == round(float(np.mean([m[key] for m in per_batch])), 2), key


def test_small_batch_needs_a_full_batch():
  with pytest.raises(ValueError, match="at least one full batch"):
    retrieval.small_batch_metrics(np.eye(31))


def test_format_table_layout():
  table = retrieval.format_table({
      "All": retrieval.contrastive_metrics(np.eye(4)),
      "Small batches": retrieval.contrastive_metrics(np.abs(np.subtract.outer(
          np.arange(4), np.arange(4))).astype(float)),
  })
  lines = table.splitlines()
  assert len(lines) == 4
  header = [c.strip() for c in lines[0].strip("|").split("|")]
  assert header == ["protocol"] + [k.replace("/", " ") for k in KEYS]
  assert lines[2].startswith("| All | 100.00 | 100.00 | 100.00 | 100.00 | 100.00 | 1.00 |")
  assert lines[3].startswith("| Small batches | 0.00 | 0.00 | 0.00 | 100.00 | 100.00 | 4.00 |")
  with pytest.raises(KeyError, match="lack t2m/R@1"):
    retrieval.format_table({"broken": {"t2m/MedR": 1.0}})


def test_bad_input_is_named():
  with pytest.raises(ValueError, match="square"):
    retrieval.contrastive_metrics(np.zeros((3, 4)))
  with pytest.raises(ValueError, match="NaN"):
    retrieval.contrastive_metrics(np.full((2, 2), np.nan))
  with pytest.raises(ValueError, match="both text_emb and threshold"):
    retrieval.contrastive_metrics(np.eye(3), threshold=0.9)
  with pytest.raises(ValueError, match="text_emb must be"):
    retrieval.contrastive_metrics(np.eye(3), np.ones((2, 4)), threshold=0.9)
