"""A 2-D PCA map of embeddings (lexical vectors or pooled states of motions or texts),
coloured by a categorical label.

Labels get qualitative colours (PALETTE: tab10's, then tab20's light ones, greys left out
for OTHER); beyond MAX_COLOURS labels the rarest are grouped into OTHER, drawn light grey, so
every colour on the map is named in the legend with its count.
"""
from __future__ import annotations

import collections
import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from lexmo_jax.visualization.lexical import wrap

MAX_COLOURS = 20  # legend entries at most, OTHER included
OTHER = "other"
OTHER_COLOUR = "#b3b3b3"
# tab10 and tab20's lighter shades without their greys (grey is OTHER's), each completed
# with a dark tab20b shade: 20 colours, the most frequent labels the most saturated.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#393b79",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
    "#9edae5", "#7b4173",
)
_SIZE_IN = (9.0, 6.0)


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


def label_groups(labels: Sequence[str], max_colours: int = MAX_COLOURS
                 ) -> tuple[list[str], list[str], int]:
  """Which labels get a colour of their own, and which are grouped into OTHER.

  Args:
    labels: N labels.
    max_colours: legend entries at most, OTHER included.

  Returns:
    names: the labels drawn in their own colour, most frequent first (ties: first
      appearance); OTHER is never among them.
    grouped: the N labels as drawn: a label of names, or OTHER.
    rarer: how many distinct labels (OTHER itself not counted) were grouped into OTHER.
  """
  if not 2 <= max_colours <= len(PALETTE):
    raise ValueError(f"max_colours must lie between 2 and {len(PALETTE)}, got {max_colours}")
  counts = collections.Counter(labels)
  first = {label: i for i, label in reversed(list(enumerate(labels)))}
  ranked = sorted((n for n in counts if n != OTHER), key=lambda n: (-counts[n], first[n]))
  room = max_colours if len(ranked) + (OTHER in counts) <= max_colours else max_colours - 1
  names = ranked[:room]
  kept = set(names)
  grouped = [label if label in kept else OTHER for label in labels]
  return names, grouped, len(ranked) - len(names)


def plot_pca(features, labels: Sequence[str], path, title: str = "",
             subject: str = "the embeddings", label_name: str = "label", source: str = "",
             max_colours: int = MAX_COLOURS) -> pathlib.Path:
  """Writes a scatter of the 2-D PCA of the features, one colour per label, with a legend.

  The legend names every colour drawn with its number of points ("walk (31)"); the axes
  say which principal component and its share of the variance; the title says what was
  projected.

  Args:
    features: (N, D) embeddings, N ≥ 2.
    labels: N categorical labels (e.g. the action of each clip). The most frequent
      max_colours get distinct colours of PALETTE (max_colours − 1 when some must be
      grouped); the rest, and a label named OTHER, are drawn light grey as OTHER.
    path: output file, ending in .png.
    title: text above the plot, wrapped to its width; default "PCA of <subject>, coloured
      by <label_name>".
    subject: what the features are, for the default title.
    label_name: what the labels are, for the legend's heading.
    source: where the features come from (workdir, step), written under the plot.
    max_colours: legend entries at most, OTHER included (2..len(PALETTE)).

  Returns:
    The path written: 900 x 600 pixels.
  """
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"{path} must end in .png")
  fig = pca_figure(features, labels, title, subject, label_name, source, max_colours)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, format="png")
  return path


def pca_figure(features, labels: Sequence[str], title: str = "",
               subject: str = "the embeddings", label_name: str = "label", source: str = "",
               max_colours: int = MAX_COLOURS) -> Figure:
  """The figure `plot_pca` saves (same arguments): one scatter per legend entry, OTHER's
  grey one first (when there is one), then the named labels', most frequent first."""
  coords, explained = pca_2d(features)
  labels = [str(label) for label in labels]
  if len(labels) != coords.shape[0]:
    raise ValueError(f"got {len(labels)} labels for {coords.shape[0]} feature rows")
  names, grouped, rarer = label_groups(labels, max_colours)

  colours = dict(zip(names, PALETTE))
  counts = collections.Counter(grouped)
  fig = Figure(figsize=_SIZE_IN, dpi=100)
  ax = fig.add_subplot()
  grouped = np.array(grouped, dtype=object)
  if counts[OTHER]:
    # Grey first, under the coloured points.
    pts = coords[grouped == OTHER]
    what = f"{counts[OTHER]}, {rarer} rarer labels" if rarer else f"{counts[OTHER]}"
    ax.scatter(pts[:, 0], pts[:, 1], s=14, color=OTHER_COLOUR, alpha=0.7, edgecolors="none",
               label=f"{OTHER} ({what})", zorder=2)
  for name in names:
    pts = coords[grouped == name]
    ax.scatter(pts[:, 0], pts[:, 1], s=20, color=colours[name], alpha=0.85,
               edgecolors="none", label=f"{name} ({counts[name]})", zorder=3)
  ax.set_xlabel(f"principal component 1 ({100 * explained[0]:.1f}% of the variance)")
  ax.set_ylabel(f"principal component 2 ({100 * explained[1]:.1f}% of the variance)")
  ax.grid(alpha=0.3, zorder=0)
  handles, texts = ax.get_legend_handles_labels()
  if counts[OTHER]:
    # The grey group closes the list, under the named colours.
    handles, texts = handles[1:] + handles[:1], texts[1:] + texts[:1]
  ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
            frameon=False, title=f"{label_name} (points)", title_fontsize=9,
            alignment="left", markerscale=1.5)
  title = title or f"PCA of {subject}, coloured by {label_name}"
  ax.set_title(wrap(title, _SIZE_IN[0] - 2.8, 12))
  if source:
    fig.supxlabel(wrap(f"source: {source}", _SIZE_IN[0] - 0.3, 8), x=0.02, ha="left",
                  fontsize=8, color="#555555")
  fig.tight_layout()
  return fig
