"""What the web page asks of a gallery, as plain JSON-ready dicts: search by sentence or
keywords, a motion's description and neighbours, its joints to draw, an uploaded motion.

The gallery (`lexmo_jax.search.gallery.Gallery`) loads in a background thread, so the page is
served at once and shows the loading stage (model, split, encoding batch i/n, indexing) until
it is ready. Every answer is computed under one lock: JAX and the index are not asked two
things at a time, and a failed request leaves nothing half-changed.
"""
from __future__ import annotations

import functools
import logging
import re
import threading
import time

import numpy as np

from input_pipeline import dataset_kinds
from input_pipeline.motion import features as motion_features
from lexmo_jax.inference import motion_from_npy, shorten
from lexmo_jax.search.gallery import Gallery, Hit

logger = logging.getLogger("lexmo_jax.serve")

DESCRIPTION_WORDS = 12  # words of a motion's description (its heaviest)
MAX_K = 50
MODES = ("auto", "sentence", "keywords")
DRAWN_FPS = 10.0  # frames per second sent to the page (every n-th frame of the motion)


class NotReady(RuntimeError):
  """The gallery is still loading (or failed to load); the message says which."""


def read_mode(text: str, mode: str) -> str:
  """'sentence' or 'keywords'. `auto` reads single words, alone or comma-separated ("jump",
  "run, jump"), as keywords, and anything else (a caption, commas or not) as a sentence."""
  if mode not in MODES:
    raise ValueError(f"unknown query mode {mode!r}; expected one of {', '.join(MODES)}")
  if mode != "auto":
    return mode
  parts = [p.strip() for p in text.split(",") if p.strip()]
  return "keywords" if parts and all(len(p.split()) == 1 for p in parts) else "sentence"


def _hit(hit: Hit, captions) -> dict:
  return {"rank": hit.rank, "item_id": hit.item_id, "score": round(hit.score, 4),
          "caption": hit.caption, "captions": list(captions),
          "words": [[w, round(c, 4)] for w, c in hit.words]}


def _words(pairs) -> list[list]:
  return [[w, round(float(v), 4)] for w, v in pairs]


class Explorer:
  """One workdir's split as a browsable gallery.

  Args:
    workdir: a LexMMM or LexCMLP workdir.
    split: the split whose motions form the gallery.
    index: the index folder ('' = the search command's default, DIR/index/<split>).
    engine: 'exact', 'approximate' or 'auto' (`lexmo_jax.search.engines`).
  """

  def __init__(self, workdir: str, split: str = "test", index: str = "", engine: str = "auto"):
    self.workdir, self.split, self.index, self.engine = workdir, split, index, engine
    self._gallery: Gallery | None = None
    self._stage = "starting"
    self.stages: list[str] = []  # every stage reported while loading, in order
    self._error: str | None = None
    self._started = time.monotonic()
    self._ready_s: float | None = None
    self._lock = threading.Lock()
    self._joints = functools.lru_cache(maxsize=512)(self._joints_uncached)

  # Loading -----------------------------------------------------------------------------
  def start(self) -> threading.Thread:
    """Loads the gallery in a daemon thread; `status()` follows it."""
    thread = threading.Thread(target=self.load, name="gallery-loader", daemon=True)
    thread.start()
    return thread

  def load(self) -> None:
    try:
      gallery = Gallery.open(self.workdir, self.split, self.index, engine=self.engine,
                             progress=self._progress)
    except Exception as e:  # pylint: disable=broad-except  (shown on the page, kept in the log)
      self._error = "; ".join(l.strip() for l in str(e).splitlines() if l.strip()) or repr(e)
      logger.error("the gallery could not be opened: %s", self._error)
      return
    self._stage = "compiling the encoders"  # so that the first query is answered at once
    gallery.model.encode_texts(["a person walks"], batch_size=1)
    gallery.model.encode_motions([next(iter(gallery.pairs.values())).motion], batch_size=1)
    try:  # builds the word-form index that keyword queries use
      gallery.search_keywords(["walk"], 1)
    except ValueError:
      pass
    self._gallery = gallery
    self._ready_s = time.monotonic() - self._started
    self._stage = "ready"
    logger.info("serving %d motions of split %r (%s engine), ready after %.1f s",
                gallery.index.num_items, self.split, gallery.engine, self._ready_s)

  def _progress(self, text: str) -> None:
    self._stage = text
    self.stages.append(text)
    if "batch" not in text:
      logger.info("%s", text)

  def status(self) -> dict:
    """What the page shows in its header: loading stage or the gallery's facts."""
    out = {"ready": self._gallery is not None, "stage": self._stage, "error": self._error,
           "workdir": self.workdir, "split": self.split,
           "elapsed_s": round(time.monotonic() - self._started, 1)}
    g = self._gallery
    if g is not None:
      out.update(items=g.index.num_items, engine=g.engine, phase=g.model.phase,
                 step=g.model.step, kind=g.model.kind, ready_s=round(self._ready_s, 1))
    return out

  def gallery(self) -> Gallery:
    if self._gallery is None:
      if self._error:
        raise NotReady(f"the gallery could not be opened: {self._error}")
      raise NotReady(f"the gallery is still loading ({self._stage}); try again in a moment")
    return self._gallery

  # Answers -----------------------------------------------------------------------------
  def search(self, text: str, mode: str = "auto", k: int = 10) -> dict:
    """Motions for a sentence or comma-separated keywords.

    Returns {mode, query, read_as (sentence: the query's heaviest words), used/unknown
    (keywords), note, hits, engine, answered_by (the engine and, for the approximate one, which
    of its indexes), search_ms, total_ms}.
    Raises:
      ValueError: empty text, no known word, a bad mode or k.
    """
    started = time.perf_counter()
    text = (text or "").strip()
    if not text:
      raise ValueError("the query is empty: type a sentence (\"a person runs and then "
                       "jumps\") or comma-separated keywords (run, jump)")
    k = _check_k(k)
    mode = read_mode(text, mode)
    g = self.gallery()
    out = {"mode": mode, "query": text, "note": ""}
    with self._lock:
      if mode == "keywords":
        result = g.search_keywords(text.replace(",", " ").split(), k)
        hits = result.hits
        out.update(used=result.used, unknown=result.unknown)
      else:
        tokenizer = g.model.tokenizer
        if not tokenizer.known_words(text):
          raise ValueError(f"\"{shorten(text)}\" holds no word of the vocabulary (only "
                           "unknown word pieces or punctuation)")
        notes = []
        pieces = [w for w in dict.fromkeys(re.findall(r"[a-z]+", text.lower()))
                  if tokenizer.token_to_id(w) is None]
        if pieces:
          notes.append(f"not in the vocabulary as whole words, read as word pieces: "
                       f"{', '.join(pieces)}")
        kept, cut = tokenizer.cut_off(text, g.model.config.data.max_text_length)
        if cut:
          notes.append(f"only the first {kept} word pieces were read (the model's text "
                       f"limit); ignored: \"{shorten(cut)}\"")
        out["note"] = "; ".join(notes)
        read_as, hits = g.search_text(text, k)
        out["read_as"] = _words(read_as)
      out["hits"] = [_hit(h, g.pairs[h.item_id].captions) for h in hits]
      out.update(engine=g.engine, answered_by=g.answered_by,
                 search_ms=round(g.last_search_ms, 2))
    out["total_ms"] = round((time.perf_counter() - started) * 1e3, 1)
    return out

  def motion(self, item_id: str, k: int = 6) -> dict:
    """A gallery motion: captions, description (heaviest words), nearest motions.

    Raises:
      KeyError: no such motion in the gallery.
    """
    g = self.gallery()
    if item_id not in g.pairs:
      raise KeyError(f"no motion {item_id!r} in split {self.split!r}")
    k = _check_k(k)
    with self._lock:
      vector = np.zeros(g.index.vocab_size, np.float32)
      for term, weight in g.index.item_vector(item_id).items():
        vector[term] = weight
      description = g.model.description(vector, DESCRIPTION_WORDS)
      near = [h for h in g.search_vector(vector, k + 1) if h.item_id != item_id][:k]
    for rank, hit in enumerate(near, start=1):
      hit.rank = rank
    pair = g.pairs[item_id]
    return {"item_id": item_id, "captions": list(pair.captions),
            "frames": int(pair.motion.shape[0]), "description": _words(description),
            "neighbours": [_hit(h, g.pairs[h.item_id].captions) for h in near]}

  def joints(self, item_id: str) -> dict:
    """A gallery motion's joint positions to draw (`draw_data`)."""
    g = self.gallery()
    if item_id not in g.pairs:
      raise KeyError(f"no motion {item_id!r} in split {self.split!r}")
    return self._joints(item_id)

  def _joints_uncached(self, item_id: str) -> dict:
    g = self.gallery()
    return draw_data(g.pairs[item_id].motion, g.model.kind)

  def upload(self, data: bytes, filename: str, k: int = 10) -> dict:
    """An uploaded .npy motion (features or joint positions): its description, the closest
    gallery motions, and its joints to draw.

    Raises:
      MotionFileError: not a .npy motion of the gallery's dataset kind (the command line's
        message).
    """
    started = time.perf_counter()
    g = self.gallery()
    k = _check_k(k)
    features = motion_from_npy(data, filename or "upload.npy", g.model.kind)
    with self._lock:
      description, hits = g.describe(features, k, DESCRIPTION_WORDS,
                                     name=f"motion file {filename}")
    return {"filename": filename, "frames": int(features.shape[0]),
            "description": _words(description),
            "hits": [_hit(h, g.pairs[h.item_id].captions) for h in hits],
            "joints": draw_data(features, g.model.kind), "engine": g.engine,
            "answered_by": g.answered_by, "search_ms": round(g.last_search_ms, 2),
            "total_ms": round((time.perf_counter() - started) * 1e3, 1)}


def _check_k(k) -> int:
  try:
    k = int(k)
  except (TypeError, ValueError):
    raise ValueError(f"k must be a whole number of motions, got {k!r}") from None
  if not 1 <= k <= MAX_K:
    raise ValueError(f"k must lie between 1 and {MAX_K}, got {k}")
  return k


def draw_data(features: np.ndarray, kind: str) -> dict:
  """What the page needs to animate a motion: {fps, frames (T', J, 3) positions in metres
  rounded to mm, y up; chains: joint index lists; sides: 'left'/'right'/'centre' per chain}.

  Frames are taken every n-th so that about DRAWN_FPS reach the page (fps says the rate).
  """
  body = dataset_kinds.get_kind(kind)
  joints = motion_features.features_to_joints(features, body.num_joints)
  stride = max(1, int(round(body.fps / DRAWN_FPS)))
  left, right = set(body.left_joints), set(body.right_joints)
  sides = []
  for chain in body.kinematic_chains:
    limb = set(chain[1:])
    sides.append("left" if limb & left and not limb & right else
                 "right" if limb & right and not limb & left else "centre")
  return {"fps": body.fps / stride, "frames": np.round(joints[::stride].astype(np.float64), 3).tolist(),
          "chains": [list(c) for c in body.kinematic_chains], "sides": sides}
