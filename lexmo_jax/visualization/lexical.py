"""Pictures of one lexical vector: its top-weighted words as bars or as a word cloud.

A lexical vector has one weight per vocabulary entry (word piece); its largest weights are
the words the model uses to describe the motion or text. Word pieces are shown as the
vocabulary spells them ("##ing" continues the previous piece).
"""
from __future__ import annotations

import contextlib
import pathlib
import warnings
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_CLOUD_SIZE_IN = (8.0, 4.5)
_CLOUD_DPI = 100
_FONT_MAX, _FONT_MIN = 44.0, 8.0


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
                   title: str = "") -> pathlib.Path:
  """Writes a horizontal bar chart of the top-weighted words, largest on top.

  Args:
    weights: (V,) lexical vector.
    vocab: V words, the word of each vocabulary id.
    path: output file, ending in .png.
    top: bars at most (only positive weights are drawn).
    title: text above the chart.

  Returns:
    The path written.
  """
  words = top_words(weights, vocab, top)
  path = _check_png(path)
  fig = Figure(figsize=(6.0, 1.2 + 0.28 * max(len(words), 3)), dpi=100)
  ax = fig.add_subplot()
  if words:
    labels, values = zip(*words)
    y = np.arange(len(words))[::-1]
    ax.barh(y, values, color=colormaps["viridis"](np.linspace(0.15, 0.85, len(words))))
    ax.set_yticks(y, labels)
    ax.set_xlabel("weight")
    ax.set_xlim(0, max(values) * 1.08)
    for yi, v in zip(y, values):
      ax.text(v, yi, f" {v:.2f}", va="center", fontsize=8)
  else:
    ax.text(0.5, 0.5, "no word has a positive weight", ha="center", va="center",
            transform=ax.transAxes)
    ax.set_yticks([])
  for side in ("top", "right"):
    ax.spines[side].set_visible(False)
  if title:
    ax.set_title(title)
  with _quiet_missing_glyphs():
    fig.tight_layout()
    fig.savefig(path, format="png")
  return path


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
                    title: str = "") -> pathlib.Path:
  """Writes a word cloud: font size proportional to weight, heaviest word in the middle.

  Words are placed largest first along a spiral, each at the first spot where it overlaps
  no earlier word; a word with no free spot left is shrunk, then dropped.

  Args:
    weights: (V,) lexical vector.
    vocab: V words, the word of each vocabulary id.
    path: output file, ending in .png.
    top: words at most (only positive weights are drawn).
    title: text above the cloud.

  Returns:
    The path written.
  """
  words = top_words(weights, vocab, top)
  path = _check_png(path)
  fig = Figure(figsize=_CLOUD_SIZE_IN, dpi=_CLOUD_DPI)
  canvas_px = (_CLOUD_SIZE_IN[0] * _CLOUD_DPI, _CLOUD_SIZE_IN[1] * _CLOUD_DPI)
  if title:
    fig.suptitle(title)
    canvas_px = (canvas_px[0], canvas_px[1] * 0.9)
  with _quiet_missing_glyphs():
    _lay_out_cloud(fig, words, canvas_px)
    if not words:
      fig.text(0.5, 0.5, "no word has a positive weight", ha="center", va="center")
    fig.savefig(path, format="png")
  return path


def _lay_out_cloud(fig: Figure, words: list[tuple[str, float]],
                   canvas_px: tuple[float, float]) -> None:
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
    text.set_position((cx / fig.bbox.width, cy / fig.bbox.height))
    boxes = np.vstack([boxes, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
