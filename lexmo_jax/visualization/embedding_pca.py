"""A 2-D PCA map of embeddings (lexical vectors of motions or texts), coloured by label."""
from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

_MAX_LEGEND_ENTRIES = 30


def pca_2d(features) -> tuple[np.ndarray, np.ndarray]:
  """Projects features on their first two principal components (SVD of centred data).

  Args:
    features: (N, D) with N ≥ 2.

  Returns:
    coords: (N, 2) projections; a missing component (rank < 2) is all zeros.
    explained: (2,) fraction of the total variance along each component.
  """
  x = np.asarray(features, dtype=np.float64)
  if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
    raise ValueError(f"features must be (N, D) with N ≥ 2 points, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("features hold NaN or infinite values")
  centred = x - x.mean(axis=0)
  u, s, _ = np.linalg.svd(centred, full_matrices=False)
  coords = np.zeros((x.shape[0], 2))
  k = min(2, s.shape[0])
  coords[:, :k] = u[:, :k] * s[:k]
  # SVD signs are arbitrary; fixing them makes the picture reproducible across runs.
  flip = np.sign(coords[np.argmax(np.abs(coords), axis=0), [0, 1]])
  coords *= np.where(flip == 0, 1.0, flip)
  total = float(np.sum(s ** 2))
  explained = np.zeros(2)
  if total > 0:
    explained[:k] = s[:k] ** 2 / total
  return coords, explained


def plot_pca(features, labels: Sequence[str], path, title: str = "") -> pathlib.Path:
  """Writes a scatter of the 2-D PCA of the features, one colour per label, with a legend.

  Args:
    features: (N, D) embeddings, N ≥ 2.
    labels: N labels (e.g. the action of each clip); colours follow first appearance.
    path: output file, ending in .png.
    title: text above the plot.

  Returns:
    The path written.
  """
  coords, explained = pca_2d(features)
  labels = [str(label) for label in labels]
  if len(labels) != coords.shape[0]:
    raise ValueError(f"got {len(labels)} labels for {coords.shape[0]} feature rows")
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"{path} must end in .png")
  path.parent.mkdir(parents=True, exist_ok=True)

  names = list(dict.fromkeys(labels))
  cmap = colormaps["tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "turbo"]
  colors = [cmap(i) if len(names) <= 20 else cmap(i / max(len(names) - 1, 1))
            for i in range(len(names))]
  label_idx = np.array([names.index(label) for label in labels])
  fig = Figure(figsize=(7.5, 5.5), dpi=100)
  ax = fig.add_subplot()
  for i, name in enumerate(names):
    pts = coords[label_idx == i]
    ax.scatter(pts[:, 0], pts[:, 1], s=18, color=colors[i], alpha=0.8, edgecolors="none",
               label=name if i < _MAX_LEGEND_ENTRIES else None)
  ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of variance)")
  ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of variance)")
  ax.grid(alpha=0.3)
  shown = min(len(names), _MAX_LEGEND_ENTRIES)
  legend_title = None if shown == len(names) else f"first {shown} of {len(names)} labels"
  ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
            title=legend_title, ncol=1 if shown <= 15 else 2)
  if title:
    ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, format="png")
  return path
