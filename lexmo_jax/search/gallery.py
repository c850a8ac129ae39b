"""A searchable gallery: a split's motions as lexical vectors in an inverted index.

  gallery = Gallery.open("runs/demo/lexcmlp", split="test")
  hits = gallery.search_text("a person runs and then jumps", k=5)
  hits = gallery.search_keywords(["run", "jump"], k=5).hits
  words, hits = gallery.describe(features, k=5)

Every hit carries its caption and the words that contributed most to its score. The index
(`lexmo_jax.search.engines`: exact, or approximate for large galleries) is saved beside the
workdir (DIR/index/<split>) with a note in its manifest of the checkpoint, split, engine and
pruning it came from, and rebuilt when one of them changes.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import pathlib
import time
from collections.abc import Sequence

import numpy as np

from lexmo_jax import description
from lexmo_jax.evaluation import words as words_lib
from lexmo_jax.inference import LexicalModel
from lexmo_jax.search import approximate, engines, store
from lexmo_jax.search.keyword_index import words_of_terms
from lexmo_jax.train import data as data_lib

logger = logging.getLogger("lexmo_jax.search")

CONTRIBUTING_WORDS = 5


@dataclasses.dataclass
class Hit:
  """One retrieved gallery item.

  Attributes:
    rank: 1-based position in the result list.
    item_id: the split's item id (motion id, or '<id>#<start>#<end>' for a caption span).
    score: cosine similarity of the (pruned) lexical vectors.
    caption: the item's first caption.
    words: (word, contribution) pairs adding most to the score, largest first; forms of one
      word are one word ("walks/walking", their contributions added; `lexmo_jax.description`).
  """
  rank: int
  item_id: str
  score: float
  caption: str
  words: list[tuple[str, float]]


@dataclasses.dataclass
class KeywordResult:
  """A keyword search: the keywords used, those not in the vocabulary, the vocabulary words
  each used keyword searched (`keyword_forms`), and the hits."""
  used: list[str]
  unknown: list[str]
  hits: list[Hit]
  forms: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _source_record(model: LexicalModel, split: str, top_k_terms: int | None,
                   engine: str, pairs: list) -> dict:
  return {"workdir_step": int(model.step), "phase": model.phase, "split": split,
          "data_root": str(model.config.data.root), "contents": contents_digest(pairs),
          "top_k_terms": top_k_terms, "engine": engine}


def contents_digest(pairs: list) -> str:
  """SHA-256 of a split's items (ids, captions, motion features): an index built from other
  contents under the same path (data regenerated, files edited) is rebuilt, not reused."""
  digest = hashlib.sha256()
  for pair in pairs:
    motion = np.ascontiguousarray(pair.motion, np.float32)
    digest.update(f"{pair.item_id}\0{motion.shape}\0{'|'.join(pair.captions)}\0".encode())
    digest.update(motion.tobytes())
  return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _stem_index(tokenizer) -> dict[str, list[int]]:
  """stem -> ids of the whole words of the vocabulary with that stem (built once per tokenizer)."""
  index: dict[str, list[int]] = {}
  mask = tokenizer.word_mask
  for i, token in enumerate(tokenizer.vocab):
    if mask[i] and token.isalpha() and not token.startswith("##"):
      index.setdefault(words_lib.stem(token), []).append(i)
  return index


def keyword_words(tokenizer) -> np.ndarray:
  """(V,) the word of each vocabulary entry as keyword searches read it: the whole words with
  one stem share one, every other entry is its own (`keyword_index.words_of_terms`)."""
  return words_of_terms(_stem_index(tokenizer), tokenizer.vocab_size)


def keyword_forms(tokenizer, keyword: str) -> list[str]:
  """The vocabulary words a keyword searches ("run" → run, runs, running): its own word and
  the whole words with its stem."""
  ids, _, _ = keyword_ids(tokenizer, [keyword])
  return [tokenizer.vocab[i] for i in ids]


def keyword_ids(tokenizer, keywords: Sequence[str]) -> tuple[list[int], list[str], list[str]]:
  """Vocabulary ids of keywords: each keyword's word and its other forms (same stem).

  "run" searches for run, runs and running; "jumped" for jump, jumps, jumping...

  Returns:
    ids, the keywords they belong to, and the keywords that are no word of the vocabulary
    (nor share a stem with one; special tokens carry no weight and count as unknown).
  """
  special = set(tokenizer.special_ids.tolist())
  index = _stem_index(tokenizer)
  ids, used, unknown = [], [], []
  for word in keywords:
    key = word.strip().lower()
    if not key:
      continue
    token_id = tokenizer.token_to_id(key)
    forms = [] if token_id is None or token_id in special else [token_id]
    forms += index.get(words_lib.stem(key), []) if key.isalpha() else []
    forms = [i for i in dict.fromkeys(forms) if i not in ids]
    if not forms and (token_id is None or token_id in special):
      unknown.append(word.strip())
    elif key not in used:
      ids.extend(forms)
      used.append(key)
  return ids, used, unknown


def keyword_query(tokenizer, keywords: Sequence[str]) -> np.ndarray:
  """(V,) query of keywords: weight 1 on every form of every keyword."""
  return _ones_on(check_keywords(tokenizer, keywords)[0], tokenizer.vocab_size)


def _ones_on(ids: Sequence[int], vocab_size: int) -> np.ndarray:
  query = np.zeros(vocab_size, np.float32)
  query[ids] = 1.0
  return query


def check_keywords(tokenizer, keywords: Sequence[str]) -> tuple[list[int], list[str],
                                                                list[str]]:
  """`keyword_ids`, refusing a list in which no keyword is a word of the vocabulary."""
  ids, used, unknown = keyword_ids(tokenizer, keywords)
  if not ids:
    given = ", ".join(w.strip() for w in keywords if w.strip())
    if not given:
      raise ValueError("no keyword given; pass e.g. --keywords run,jump")
    hint = ("; separate keywords with commas (--keywords run,jump)"
            if any(" " in w.strip() for w in keywords) else "")
    split = [f"{w.strip()} is {' + '.join(tokenizer.tokenize(w.strip().lower()))}"
             for w in keywords if w.strip() and " " not in w.strip()
             and len(tokenizer.tokenize(w.strip().lower())) > 1]
    if split:
      hint += (f"; the vocabulary splits words into pieces ({'; '.join(split)}): search "
               "such a word in a sentence with --query")
    raise ValueError(f"none of the keywords {given} is a word of the vocabulary "
                     f"({tokenizer.source}); try single lowercase words such as walk, run, "
                     f"jump{hint}")
  return ids, used, unknown


def _changes(before: dict, now: dict, within: str = "") -> list[str]:
  """What differs between two source records, one entry each ('build.n_postings 0 → 2000'),
  records within a record compared field by field."""
  changes = []
  for key in sorted(set(before) | set(now)):
    old, new = before.get(key), now.get(key)
    if old == new:
      continue
    if isinstance(old, dict) and isinstance(new, dict):
      changes += _changes(old, new, f"{within}{key}.")
    elif any(isinstance(v, (dict, list)) or (isinstance(v, str) and len(v) > 24)
             for v in (old, new)):  # records, digests and paths: named, not shown
      changes.append(f"{within}{key} changed")
    else:
      changes.append(f"{within}{key} {old!r} → {new!r}")
  return changes


class Gallery:
  """The motions of one split, indexed by their lexical vectors."""

  def __init__(self, model: LexicalModel, index, pairs: list, split: str, workdir: str = ""):
    self.model = model
    self.workdir = workdir
    self.index = index
    self.split = split
    self.pairs = {p.item_id: p for p in pairs}
    self.last_search_ms = 0.0  # how long the engine took to answer the last search

  @property
  def engine(self) -> str:
    """'exact' or 'approximate': which engine answers."""
    return engines.engine_of(self.index)

  @property
  def answered_by(self) -> str:
    """Which engine answered the last search, and for the approximate one which of its
    indexes ('approximate engine (cluster probe)')."""
    route = getattr(self.index, "last_route", "")
    names = {"seismic": "Seismic", "clusters": "cluster probe", "keywords": "keyword index"}
    return f"{self.engine} engine" + (f" ({names[route]})" if route in names else "")

  @classmethod
  def open(cls, workdir: str | pathlib.Path, split: str = "test", index_path: str = "",
           top_k_terms: int | None = None, model: LexicalModel | None = None,
           engine: str = "auto", settings=None, progress=None) -> Gallery:
    """Loads the workdir's model and the split, and loads or builds the index.

    Args:
      workdir: a LexMMM or LexCMLP workdir.
      split: the dataset split whose motions form the gallery.
      index_path: where the index is saved ('' = DIR/index/<split>, or
        DIR/index/<split>-approximate for the approximate engine).
      top_k_terms: keep each motion's k heaviest words (None: all, exact search).
      model: an already loaded model of `workdir`, to skip loading it again.
      engine: 'exact', 'approximate' or 'auto' (by gallery size; `engines`).
      settings: the approximate engine's `ApproximateSettings` (None: its defaults).
      progress: called with one line of text at each stage of loading and indexing, and
        after each batch of motions encoded (a served page shows it).
    """
    say = progress or (lambda text: None)
    if top_k_terms is not None and top_k_terms < 1:
      raise ValueError(f"--top-k-terms must be a positive number of words (0 keeps all), got "
                       f"{top_k_terms}")
    engines.resolve_engine(engine, 0)  # an unknown name fails before anything loads
    if engine == "approximate" and top_k_terms is not None:
      raise ValueError("--top-k-terms prunes the exact index; the approximate engine prunes "
                       "by its own n_postings")
    if model is None:
      say(f"loading the model of {workdir}")
      model = LexicalModel.from_workdir(workdir)
    say(f"reading split {split!r}")
    split_data = data_lib.load_split(model.config, split)
    chosen = engines.resolve_engine(engine, len(split_data.pairs))
    if chosen == "approximate" and settings is not None:  # before an index is replaced
      approximate.check_clusters(settings, len(split_data.pairs))
    folder = pathlib.Path(index_path) if index_path else pathlib.Path(workdir) / "index" / (
        split if chosen == "exact" else f"{split}-{chosen}")
    if folder.exists() and not folder.is_dir():  # refused before minutes of encoding
      raise ValueError(f"{folder} is a file, not an index folder: give a folder path")
    source = _source_record(model, split, top_k_terms, chosen, split_data.pairs)
    if chosen == "approximate":  # the build's knobs; the search's apply to a loaded index too
      settings = settings or approximate.ApproximateSettings()
      source["build"] = {k: v for k, v in dataclasses.asdict(settings).items()
                         if k in approximate.BUILD_SETTINGS}
    index = cls._load_if_current(folder, source, model, split_data.pairs)
    if index is not None and chosen == "approximate":
      index = approximate.with_settings(index, **{
          k: v for k, v in dataclasses.asdict(settings).items()
          if k not in approximate.BUILD_SETTINGS})
    if index is None:
      batches = model.eval_batches(split_data.pairs, split_data.mean, split_data.std)
      say(f"encoding {len(split_data.pairs)} motions")
      vectors = model.encode_eval_batches(batches, lambda done, total: say(
          f"encoding {len(split_data.pairs)} motions: batch {done}/{total}"))["motion"]
      say(f"indexing {len(split_data.pairs)} motions ({chosen} engine)")
      index = engines.build_index(vectors, [p.item_id for p in split_data.pairs], chosen,
                                  top_k_terms, settings, keyword_words(model.tokenizer))
      index.save(folder, source=source)
      logger.info("indexed %d motions of split %r (%s engine, %d postings) in %s",
                  index.num_items, split, chosen, index.num_postings, folder)
    if isinstance(index, approximate.ApproximateIndex):
      index.warm_up()
    return cls(model, index, split_data.pairs, split, str(workdir))

  @staticmethod
  def _load_if_current(folder: pathlib.Path, source: dict, model: LexicalModel, pairs: list):
    meta = store.peek(folder)
    if meta is None:
      return None
    if "files" not in meta:  # the folder layout before checksummed manifests
      logger.info("the index in %s was written by an older version: rebuilding it", folder)
      return None
    theirs = meta.get("source")
    if not isinstance(theirs, dict) or "workdir_step" not in theirs:
      raise ValueError(f"{folder} holds an index that the search command did not build for a "
                       "workdir's split (its manifest has no source record), and it would be "
                       "replaced: pass another --index, or delete it")
    if theirs != source:
      logger.info("the index in %s is out of date (%s): rebuilding it", folder,
                  "; ".join(_changes(theirs, source)))
      return None
    try:
      index = engines.load_index(folder)
    except store.IndexFormatError as e:  # written by this command, in an older format
      logger.info("rebuilding the index in %s: %s", folder, e)
      return None
    if index.vocab_size != model.tokenizer.vocab_size:
      raise ValueError(f"the index in {folder} has a vocabulary of {index.vocab_size} words, "
                       f"the model {model.tokenizer.vocab_size}")
    known = {p.item_id for p in pairs}
    strangers = [i for i in index.ids.tolist() if i not in known]
    if strangers:
      raise ValueError(f"the index in {folder} holds {len(strangers)} ids that are not items of "
                       f"the split (first: {strangers[0]}); delete it or pass another --index")
    return index

  def caption(self, item_id: str) -> str:
    pair = self.pairs.get(item_id)
    return pair.captions[0] if pair is not None else ""

  def search_vector(self, query: np.ndarray, k: int = 10, keywords: bool = False
                    ) -> list[Hit]:
    """The k best motions for a (V,) lexical query vector (`keywords`: a keyword query).

    Only motions that share a word with the query are hits: fewer than k come back when
    fewer score above 0.
    """
    if not np.any(np.asarray(query) > 0):
      raise ValueError("the query has no word with a positive weight, so it matches nothing")
    started = time.perf_counter()
    ids, scores = self.index.search(query, k, keywords=keywords)
    self.last_search_ms = (time.perf_counter() - started) * 1e3
    vocab = self.model.vocab
    hits = []
    for rank, (item_id, score) in enumerate(zip(ids.tolist(), scores.tolist()), start=1):
      if score <= 0:  # no word in common (scores come best first): the rest match nothing
        break
      # Every shared word's share of the score, read as words (forms of a word added).
      shares = np.zeros(len(vocab), np.float32)
      for term, share in self.index.term_contributions(query, item_id, len(vocab)):
        shares[term] = share
      words = description.describe(shares, vocab, CONTRIBUTING_WORDS)
      hits.append(Hit(rank, item_id, float(score), self.caption(item_id), words))
    return hits

  def search_text(self, query: str, k: int = 10) -> tuple[list[tuple[str, float]], list[Hit]]:
    """Motions for a caption-like query. Returns (the query's top words, hits)."""
    if not query or not query.strip():
      raise ValueError("the query is empty; give a caption such as "
                       "--query \"a person runs and then jumps\"")
    vector = self.model.encode_texts([query.strip()], batch_size=1)[0]
    return self.model.description(vector), self.search_vector(vector, k)

  def search_keywords(self, keywords: Sequence[str], k: int = 10) -> KeywordResult:
    """Motions ranked by their (normalised) weights on the keywords' words and word forms."""
    ids, used, unknown = check_keywords(self.model.tokenizer, keywords)
    query = _ones_on(ids, self.model.tokenizer.vocab_size)  # `keyword_query`, checked once
    forms = {word: keyword_forms(self.model.tokenizer, word) for word in used}
    return KeywordResult(used, unknown, self.search_vector(query, k, keywords=True), forms)

  def describe(self, features: np.ndarray, k: int = 10, top_words: int = 10,
               name: str = "the motion") -> tuple[list[tuple[str, float]], list[Hit]]:
    """A raw (T, F) motion's top words, and the gallery motions closest to it.

    Raises:
      ValueError: naming `name`, when its lexical vector holds no word (features of another
        kind or scale encode to nothing).
    """
    vector = self.model.encode_motions([features], batch_size=1)[0]
    if not np.any(vector > 0):
      raise ValueError(f"{name}: its lexical vector has no word with a positive weight, so it "
                       f"matches nothing (its values, up to {float(np.abs(features).max()):.3g}"
                       f", may not be {self.model.kind} features)")
    return self.model.description(vector, top_words), self.search_vector(vector, k)

  def motion_vector(self, item_id: str) -> np.ndarray:
    """(V,) unpruned lexical vector of a gallery item, encoded again from its features."""
    return self.model.encode_motions([self.pairs[item_id].motion], batch_size=1)[0]
