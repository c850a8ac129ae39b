"""Pictures of one lexical vector: its top-weighted words as bars or as a word cloud.

A lexical vector has one weight per vocabulary entry (word piece); its largest weights are
the words the model uses to describe the motion or text. Word pieces are shown as the
vocabulary spells them ("##ing" continues the previous piece), or, for a bar chart with
`forms_together`, read as the description reads them (`lexmo_jax.description`). Every chart
labels its axes; titles wrap onto more lines instead of being cut, and an optional source
(the workdir and training step the vector comes from) is written in small grey type at the
bottom.
"""
from __future__ import annotations

import contextlib
import pathlib
import textwrap
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lexmo_jax import description

_CLOUD_SIZE_IN = (8.0, 4.5)
_CLOUD_DPI = 100
_FONT_MAX, _FONT_MIN = 44.0, 8.0
_CHAR_WIDTH = 0.55  # mean width of a character of the default font, in font sizes
_SOURCE_PT = 8
_SOURCE_COLOUR = "#555555"
WEIGHT_LABEL = "weight in the lexical vector"
WORD_LABEL = "word"


def wrap(text: str, width_in: float, fontsize: float) -> str:
  """text broken at spaces into lines that fit width_in inches at fontsize points."""
  chars = max(int(width_in * 72 / (_CHAR_WIDTH * fontsize)), 10)
  return "\n".join(textwrap.wrap(" ".join(str(text).split()), chars))


def _add_source(fig: Figure, source: str) -> None:
  """Writes "source: ..." small and grey along the figure's bottom edge (a figure x label,
  so that tight_layout makes room for it)."""
  if source:
    fig.supxlabel(wrap(f"source: {source}", fig.get_figwidth() - 0.3, _SOURCE_PT),
                  x=0.02, ha="left", fontsize=_SOURCE_PT, color=_SOURCE_COLOUR)


@contextlib.contextmanager
def _quiet_missing_glyphs():
  # The word-piece vocabulary holds scripts the default font lacks; such a word is drawn
  # with boxes, and one warning per glyph and draw would bury everything else.
  with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
    yield


def _check_weights(weights, vocab: Sequence[str]) -> np.ndarray:
  weights = np.asarray(weights, dtype=np.float64)
  if weights.ndim != 1:
    raise ValueError(f"weights must be one lexical vector of shape (V,), got shape "
                     f"{weights.shape}")
  if len(vocab) != weights.shape[0]:
    raise ValueError(f"vocab has {len(vocab)} entries but weights has V={weights.shape[0]}")
  if not np.all(np.isfinite(weights)):
    raise ValueError("weights hold NaN or infinite values")
  return weights


def _open_frame(ax) -> None:
  """Bar charts keep only their left and bottom axes."""
  for side in ("top", "right"):
    ax.spines[side].set_visible(False)


def _say_empty(ax, message: str) -> None:
  ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
  ax.set_yticks([])


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
  with _quiet_missing_glyphs():
    fig.tight_layout()
    fig.savefig(path, format="png")
  return path


def _check_png(path) -> pathlib.Path:
  path = pathlib.Path(path)
  if path.suffix.lower() != ".png":
    raise ValueError(f"{path} must end in .png")
  path.parent.mkdir(parents=True, exist_ok=True)
  return path


def top_words(weights, vocab: Sequence[str], top: int) -> list[tuple[str, float]]:
  """The `top` largest positive weights as (word, weight), largest first.

  Args:
    weights: (V,) lexical vector.
    vocab: V words, the word of each vocabulary id.
    top: how many words at most.
  """
  weights = _check_weights(weights, vocab)
  if top < 1:
    raise ValueError(f"top must be at least 1, got {top}")
  order = np.argsort(-weights, kind="stable")[:top]
  return [(str(vocab[i]), float(weights[i])) for i in order if weights[i] > 0]


def plot_top_words(weights, vocab: Sequence[str], path, top: int = 20,
                   title: str = "", source: str = "", forms_together: bool = False
                   ) -> pathlib.Path:
  """Writes a horizontal bar chart of the top-weighted words, largest on top.

  Args:
    weights: (V,) lexical vector.
    vocab: V words, the word of each vocabulary id.
    path: output file, ending in .png.
    top: bars at most (only positive weights are drawn).
    title: text above the chart, wrapped to its width.
    source: where the vector comes from (e.g. "runs/demo/lexcmlp, lexcmlp step 400"),
      written under the chart.
    forms_together: draw the vector's description (`lexmo_jax.description`: forms of one
      word added, "walks/walking") instead of its coordinates one by one.

  Returns:
    The path written.
  """
  path = _check_png(path)
  return _save(top_words_figure(weights, vocab, top, title, source, forms_together), path)


def top_words_figure(weights, vocab: Sequence[str], top: int = 20, title: str = "",
                     source: str = "", forms_together: bool = False) -> Figure:
  """The figure `plot_top_words` saves: one horizontal bar per word, heaviest on top (its
  y tick labels are the words, its bar widths their weights; x axis WEIGHT_LABEL, y axis
  WORD_LABEL)."""
  words = top_words(weights, vocab, top)
  if forms_together:
    words = description.describe(_check_weights(weights, vocab), vocab, top)
  # The title sits over the axes, right of the words: as wide as the longest word leaves.
  label_in = 0.45 + _CHAR_WIDTH * 10 / 72 * max((len(w) for w, _ in words), default=0)
  title = wrap(title, max(2.5, min(4.6, 6.0 - label_in - 0.45)), 12) if title else ""
  extra = 0.22 * title.count("\n") + (0.3 if source else 0.0)
  fig = Figure(figsize=(6.0, 1.4 + extra + 0.28 * max(len(words), 3)), dpi=100)
  ax = fig.add_subplot()
  if words:
    labels, values = zip(*words)
    y = np.arange(len(words))[::-1]
    ax.barh(y, values, color=colormaps["viridis"](np.linspace(0.15, 0.85, len(words))))
    ax.set_yticks(y, labels)
    ax.set_xlabel(WEIGHT_LABEL + (" (forms of a word added)" if forms_together else ""))
    ax.set_ylabel(WORD_LABEL)
    ax.set_xlim(0, max(values) * 1.08)
    for yi, v in zip(y, values):
      ax.text(v, yi, f" {v:.2f}", va="center", fontsize=8)
  else:
    _say_empty(ax, "no word has a positive weight")
  _open_frame(ax)
  if title:
    ax.set_title(title)
  _add_source(fig, source)
  return fig


def _place(width: float, height: float, boxes: np.ndarray, canvas: tuple[float, float]
           ) -> tuple[float, float] | None:
  """The first free centre on an outward spiral from the middle, or None if none fits.

  Boxes are (x0, y0, x1, y1) in pixels; the canvas is (W, H) pixels.
  """
  cw, ch = canvas
  aspect = ch / cw
  for step in range(4000):
    angle = 0.35 * step
    radius = 1.5 * angle
    cx = cw / 2 + radius * np.cos(angle)
    cy = ch / 2 + aspect * radius * np.sin(angle)
    x0, y0, x1, y1 = cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2
    if x0 < 0 or y0 < 0 or x1 > cw or y1 > ch:
      if radius > max(cw, ch):
        return None
      continue
    if boxes.size == 0 or not np.any((x0 < boxes[:, 2]) & (boxes[:, 0] < x1)
                                     & (y0 < boxes[:, 3]) & (boxes[:, 1] < y1)):
      return cx, cy
  return None


def plot_word_cloud(weights, vocab: Sequence[str], path, top: int = 50,
                    title: str = "", source: str = "") -> pathlib.Path:
  """Writes a word cloud: font size proportional to weight, heaviest word in the middle.

  Words are placed largest first along a spiral, each at the first spot where it overlaps
  no earlier word; a word with no free spot left is shrunk, then dropped.

  Args:
    weights: (V,) lexical vector.
    vocab: V words, the word of each vocabulary id.
    path: output file, ending in .png.
    top: words at most (only positive weights are drawn).
    title: text above the cloud, wrapped to its width.
    source: where the vector comes from, written under the cloud.

  Returns:
    The path written: 800 x 450 pixels.
  """
  words = top_words(weights, vocab, top)
  path = _check_png(path)
  fig = Figure(figsize=_CLOUD_SIZE_IN, dpi=_CLOUD_DPI)
  # The words fill the band between the source line at the bottom and the title on top.
  bottom_px = top_px = 0.0
  if title:
    title = wrap(title, _CLOUD_SIZE_IN[0] - 0.4, 12)
    fig.suptitle(title, fontsize=12, y=0.985, va="top")
    top_px = (title.count("\n") + 1) * 1.25 * 12 / 72 * _CLOUD_DPI + 16
  if source:
    source = wrap(f"source: {source}", _CLOUD_SIZE_IN[0] - 0.3, _SOURCE_PT)
    fig.text(0.02, 0.01, source, ha="left", va="bottom", fontsize=_SOURCE_PT,
             color=_SOURCE_COLOUR)
    bottom_px = (source.count("\n") + 1) * 1.25 * _SOURCE_PT / 72 * _CLOUD_DPI + 8
  canvas_px = (_CLOUD_SIZE_IN[0] * _CLOUD_DPI,
               _CLOUD_SIZE_IN[1] * _CLOUD_DPI - top_px - bottom_px)
  with _quiet_missing_glyphs():
    _lay_out_cloud(fig, words, canvas_px, bottom_px)
    if not words:
      fig.text(0.5, 0.5, "no word has a positive weight", ha="center", va="center")
    fig.savefig(path, format="png")
  return path


def _lay_out_cloud(fig: Figure, words: list[tuple[str, float]],
                   canvas_px: tuple[float, float], bottom_px: float = 0.0) -> None:
  """Places the words in a (W, H) pixel band of the figure starting bottom_px up."""
  # Measuring text needs a real renderer, which a bare Figure's canvas does not offer.
  renderer = FigureCanvasAgg(fig).get_renderer()
  boxes = np.zeros((0, 4))
  cmap = colormaps["plasma"]
  heaviest = words[0][1] if words else 1.0
  for rank, (word, weight) in enumerate(words):
    size = max(_FONT_MAX * weight / heaviest, _FONT_MIN)
    color = cmap(0.8 * rank / max(len(words) - 1, 1))
    text = fig.text(0.5, 0.5, word, fontsize=size, color=color, ha="center", va="center")
    spot = None
    while spot is None and size >= _FONT_MIN:
      text.set_fontsize(size)
      extent = text.get_window_extent(renderer)
      # A gap that grows with the font keeps neighbouring words from reading as one.
      w, h = extent.width + 0.3 * extent.height, 1.1 * extent.height
      spot = _place(w, h, boxes, canvas_px)
      if spot is None:
        size *= 0.8
    if spot is None:
      text.remove()
      continue
    cx, cy = spot
    text.set_position((cx / fig.bbox.width, (cy + bottom_px) / fig.bbox.height))
    boxes = np.vstack([boxes, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])


def plot_word_distribution(counts: Sequence[tuple[str, int]], total: int, path,
                           title: str = "", is_content=None, source: str = "") -> pathlib.Path:
  """Bar chart of how many items have each word among their heaviest (the paper's Figure 5).

  Args:
    counts: (word, number of items) pairs, most frequent first.
    total: the number of items, for the share axis.
    path: output file, ending in .png.
    title: text above the chart, wrapped to its width.
    is_content: word -> bool; content words are drawn dark, other words (stop words,
      punctuation, subject nouns, word pieces) light grey. None draws all alike.
    source: where the vectors come from, written under the chart.
  """
  path = _check_png(path)
  counts = list(counts)
  title = wrap(title, 6.6, 10) if title else ""
  extra = 0.2 * title.count("\n") + (0.3 if source else 0.0)
  fig = Figure(figsize=(7.0, 1.4 + extra + 0.26 * max(len(counts), 3)), dpi=100)
  ax = fig.add_subplot()
  if counts:
    labels, values = zip(*counts)
    shares = np.asarray(values, np.float64) / max(total, 1)
    y = np.arange(len(counts))[::-1]
    colours = ["#2b6f8f" if is_content is None or is_content(w) else "#c8c8c8" for w in labels]
    ax.barh(y, shares, color=colours)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"share of the {total} items with the word among their 10 heaviest")
    ax.set_ylabel(WORD_LABEL)
    ax.set_xlim(0, min(1.0, shares.max() * 1.15))
  else:
    _say_empty(ax, "no item has a word with a positive weight")
  _open_frame(ax)
  if title:
    ax.set_title(title, fontsize=10)
  _add_source(fig, source)
  return _save(fig, path)


def plot_words_side_by_side(panels: Sequence[tuple[str, Sequence[tuple[str, float]]]], path,
                            title: str = "", highlight=None, source: str = "") -> pathlib.Path:
  """Several vectors' heaviest words as bar charts in one row (the paper's Figure 4).

  Args:
    panels: (panel title, [(word, weight), ...] heaviest first) per panel.
    path: output file, ending in .png.
    title: text above the panels, wrapped to their width.
    highlight: word -> bool; highlighted words (e.g. the caption's own content words)
      are drawn dark, the others light.
    source: where the vectors come from, written under the panels.
  """
  path = _check_png(path)
  rows = max([len(words) for _, words in panels] + [3])
  width_in = 3.4 * max(len(panels), 1)
  title = wrap(title, min(width_in - 0.4, 8.0), 9) if title else ""
  panel_width_in = width_in / max(len(panels), 1)
  names = [wrap(name, panel_width_in - 0.6, 9) for name, _ in panels]
  extra = (0.16 * (title.count("\n") + max([n.count("\n") for n in names] + [0]))
           + (0.3 if source else 0.0))
  fig = Figure(figsize=(width_in, 1.6 + extra + 0.27 * rows), dpi=100)
  for n, ((_, words), name) in enumerate(zip(panels, names)):
    ax = fig.add_subplot(1, max(len(panels), 1), n + 1)
    if words:
      labels, values = zip(*words)
      y = np.arange(len(words))[::-1]
      colours = ["#b5542d" if highlight is None or highlight(w) else "#d9d9d9" for w in labels]
      ax.barh(y, values, color=colours)
      ax.set_yticks(y, labels)
      ax.set_xlim(0, max(values) * 1.1)
    else:
      _say_empty(ax, "no positive weight")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel(WEIGHT_LABEL, fontsize=8)
    if n == 0:
      ax.set_ylabel(WORD_LABEL, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    _open_frame(ax)
  if title:
    fig.suptitle(title, fontsize=9)
  _add_source(fig, source)
  return _save(fig, path)
