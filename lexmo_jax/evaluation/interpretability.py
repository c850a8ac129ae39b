"""Is the lexical space lexical? The measures behind `evaluate --task=interpretability`.

The method's promise (the paper's Figures 4, 5 and 8): a motion's heaviest words describe
it, a caption's heaviest words are its own words, and keywords find the motions that do
them. Measured on a split, with the ten heaviest word pieces of each vector (special
tokens excluded; fewer when fewer than ten have weight):

  motion_precision_at_10     share of a motion's heaviest words that are content words of
                             its own captions (stems; `lexmo_jax.evaluation.words`)
  stopword_share_motion      share of stop words and punctuation among a motion's heaviest
  stopword_share_text        ... and among a caption's heaviest words
  subject_share_motion/text  share of subject nouns ("person", "someone") among them
  caption_self_recall_at_10  share of a caption's content words found among its own
                             ten heaviest words
  action_recall_at_10        share of the actions a motion performs (actions.json, the
                             synthetic generator's ground truth; per clip or span) that
                             its ten heaviest words name: a word of the vocabulary with the
                             stem of a keyword for the action ("walks" for walk); per
                             action, and the share of motions with every action named
  described_action_recall_at_10
                             the same, read from the motion's description: its ten
                             heaviest words with forms of one word counted together
                             (`lexmo_jax.description`), as the search and caption commands
                             print it
  keyword_precision_at_10    for single-action keyword queries (the search command's
                             keyword path), the share of the ten best motions that perform
                             the action; judged by the synthetic generator's ground truth
                             (actions.json) where the dataset has one, else by the items'
                             captions; per keyword and averaged
  top10_mass_motion/text     share of a vector's squared norm held by its ten heaviest
                             words: how much of a cosine score the readable words explain
                             (1 = all of it; near 10/nonzero = the weights are flat)
  cosine_between_motions     mean cosine between the vectors of two different motions of
                             the split; near 1 when every motion sits on the same words
  sparsity                   mean non-zero words per motion and per caption vector; FLOPS as
                             SPLADE reports it, Σ_j P(text_j > 0)·P(motion_j > 0), the
                             expected multiplications per text–motion score.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from lexmo_jax import description
from lexmo_jax.evaluation import words as words_lib

TOP_WORDS = 10
# Single-action keywords judged by captions on data without a synthetic ground truth.
DEFAULT_KEYWORDS = ("walk", "run", "jump", "wave", "kick", "sit", "squat", "throw", "crawl",
                    "clap", "turn", "punch")


def top_tokens(vector: np.ndarray, vocab: Sequence[str], k: int = TOP_WORDS) -> list[str]:
  """The k heaviest word pieces with a positive weight, heaviest first."""
  vector = np.asarray(vector)
  if vector.size <= k:
    order = np.argsort(-vector)
  else:
    part = np.argpartition(-vector, k)[:k]
    order = part[np.argsort(-vector[part])]
  return [vocab[i] for i in order if vector[i] > 0]


def _share(tokens: Sequence[str], predicate: Callable[[str], bool]) -> float:
  return sum(map(predicate, tokens)) / len(tokens) if tokens else 0.0


@dataclasses.dataclass
class KeywordJudge:
  """Which gallery items perform the action a keyword names.

  Attributes:
    keywords: the keywords to query, in report order.
    relevant: keyword -> (N,) bool over the gallery items.
    source: how relevance was decided ('actions.json' or 'captions').
    performed: per item, the actions it performs, each as the keywords that name it
      (ground truth only; None when relevance comes from captions).
  """
  keywords: list[str]
  relevant: dict[str, np.ndarray]
  source: str
  performed: list[dict[str, tuple[str, ...]]] | None = None


def judge_by_captions(item_captions: Sequence[Sequence[str]], keywords: Sequence[str]
                      ) -> KeywordJudge:
  """An item performs a keyword's action when one of its captions uses the word (stems)."""
  stems = [{words_lib.stem(w) for c in caps for w in words_lib.caption_words(c)}
           for caps in item_captions]
  relevant = {k: np.array([words_lib.stem(k) in s for s in stems]) for k in keywords}
  return KeywordJudge(list(keywords), relevant, "captions")


def _motion_scores(motion_vectors: np.ndarray) -> np.ndarray:
  norms = np.linalg.norm(motion_vectors, axis=1, keepdims=True)
  return motion_vectors / np.maximum(norms, 1e-6)


def keyword_precision(motion_vectors: np.ndarray, query_of: Callable[[str], np.ndarray],
                      judge: KeywordJudge, k: int = TOP_WORDS) -> dict[str, float]:
  """Precision@k of each keyword's query over the gallery, cosine ranking (the index's)."""
  normalised = _motion_scores(motion_vectors)
  out = {}
  for keyword in judge.keywords:
    query = query_of(keyword)
    scores = normalised @ (query / max(np.linalg.norm(query), 1e-6))
    top = np.argsort(-scores, kind="stable")[:k]
    out[keyword] = float(np.mean(judge.relevant[keyword][top])) if top.size else 0.0
  return out


def flops(text_vectors: np.ndarray, motion_vectors: np.ndarray) -> float:
  """SPLADE's FLOPS: Σ_j P(text_j > 0)·P(motion_j > 0) over the split."""
  return float(np.sum(np.mean(text_vectors > 0, 0) * np.mean(motion_vectors > 0, 0)))


def top_mass(vectors: np.ndarray, k: int = TOP_WORDS) -> float:
  """Mean share of each vector's squared L2 norm held by its k heaviest coordinates."""
  sq = np.square(np.asarray(vectors, np.float32))
  top = -np.sort(-sq, axis=1)[:, :k].sum(1)
  total = sq.sum(1)
  keep = total > 0
  return float(np.mean(top[keep] / total[keep])) if keep.any() else 0.0


def mean_cosine_between(vectors: np.ndarray, max_items: int = 1000) -> float:
  """Mean cosine over pairs of different vectors (the first `max_items`)."""
  x = np.asarray(vectors, np.float32)[:max_items]
  if len(x) < 2:
    return 0.0
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  sims = x @ x.T
  n = len(x)
  return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


def action_recall(motion_vectors: np.ndarray, vocab: Sequence[str],
                  query_of: Callable[[str], np.ndarray],
                  performed: Sequence[dict[str, tuple[str, ...]]], k: int = TOP_WORDS,
                  read: Callable[[np.ndarray, Sequence[str], int], Iterable[str]] = top_tokens,
                  prefix: str = "") -> dict:
  """Whether a motion's k heaviest words name each action it performs.

  Args:
    motion_vectors: (N, V) lexical vectors.
    vocab: the V word pieces.
    query_of: keyword -> (V,) keyword query; its non-zero words are the keyword's forms.
    performed: per motion, action -> the keywords that name it.
    k: how many words are read.
    read: (vector, vocab, k) -> the word pieces read: the k heaviest coordinates
      (`top_tokens`), or the forms of the description's k words
      (`description.described_pieces`).
    prefix: put before each key ("described_").

  Returns:
    {"action_recall_at_10", "motions_with_every_action_named", "action_recall_per_action"},
    each key after `prefix`.
  """
  forms: dict[str, set[str]] = {}
  named, every, per_action = [], [], {}
  for vector, actions in zip(np.asarray(motion_vectors), performed):
    if not actions:
      continue
    tokens = set(read(vector, vocab, k))
    hits = []
    for action, keywords in sorted(actions.items()):
      for keyword in keywords:
        if keyword not in forms:
          forms[keyword] = {vocab[j] for j in np.flatnonzero(query_of(keyword))}
      hit = any(forms[keyword] & tokens for keyword in keywords)
      hits.append(hit)
      per_action.setdefault(action, []).append(hit)
    named += hits
    every.append(all(hits))
  if not named:
    return {}
  return {f"{prefix}action_recall_at_10": float(np.mean(named)),
          f"{prefix}motions_with_every_action_named": float(np.mean(every)),
          f"{prefix}action_recall_per_action": {
              a: float(np.mean(v)) for a, v in sorted(per_action.items())}}


def measure(*, vocab: Sequence[str], tokenize: Callable[[str], list[str]],
            motion_vectors: np.ndarray, motion_captions: Sequence[Sequence[str]],
            caption_vectors: np.ndarray, captions: Sequence[str],
            keyword_query: Callable[[str], np.ndarray] | None = None,
            judge: KeywordJudge | None = None, k: int = TOP_WORDS) -> dict:
  """Every interpretability measure of one split.

  Args:
    vocab: V word pieces, the word of each lexical coordinate.
    tokenize: the word-piece tokenizer (a word's pieces, for matching split words).
    motion_vectors: (N, V) lexical vectors of the split's motions.
    motion_captions: N tuples, the captions of each motion.
    caption_vectors: (M, V) lexical vectors of captions.
    captions: the M captions.
    keyword_query: keyword -> (V,) query vector, as the search command builds it.
    judge: which motions perform each keyword's action.
    k: how many heaviest words are read (10).

  Returns:
    A JSON-ready dict (see the module docstring), with per-item examples left out.
  """
  motion_vectors = np.asarray(motion_vectors, np.float32)
  caption_vectors = np.asarray(caption_vectors, np.float32)
  if len(motion_vectors) != len(motion_captions) or len(caption_vectors) != len(captions):
    raise ValueError("each vector needs its captions: got "
                     f"{len(motion_vectors)} motion vectors for {len(motion_captions)} caption "
                     f"sets and {len(caption_vectors)} caption vectors for {len(captions)}")
  if not len(motion_vectors) or not len(caption_vectors):
    raise ValueError("interpretability needs at least one motion and one caption")

  precision, m_stop, m_subject, m_empty = [], [], [], 0
  top_counts: Counter = Counter()
  for vector, caps in zip(motion_vectors, motion_captions):
    tokens = top_tokens(vector, vocab, k)
    m_empty += not tokens
    top_counts.update(tokens)
    own = words_lib.CaptionWords(caps, tokenize)
    precision.append(_share(tokens, own.matches))
    m_stop.append(_share(tokens, words_lib.is_stop_or_punctuation))
    m_subject.append(_share(tokens, lambda t: words_lib.kind(t) == "subject"))

  recall, t_stop, t_subject = [], [], []
  for vector, caption in zip(caption_vectors, captions):
    tokens = top_tokens(vector, vocab, k)
    t_stop.append(_share(tokens, words_lib.is_stop_or_punctuation))
    t_subject.append(_share(tokens, lambda t: words_lib.kind(t) == "subject"))
    own = words_lib.CaptionWords([caption], tokenize)
    if len(own):
      recall.append(own.covered_by(tokens) / len(own))

  result = {
      "motion_precision_at_10": float(np.mean(precision)),
      "stopword_share_motion": float(np.mean(m_stop)),
      "stopword_share_text": float(np.mean(t_stop)),
      "subject_share_motion": float(np.mean(m_subject)),
      "subject_share_text": float(np.mean(t_subject)),
      "caption_self_recall_at_10": float(np.mean(recall)) if recall else 0.0,
      "motions": int(len(motion_vectors)),
      "captions": int(len(caption_vectors)),
      "motions_without_words": int(m_empty),
      "top10_mass_motion": top_mass(motion_vectors, k),
      "top10_mass_text": top_mass(caption_vectors, k),
      "cosine_between_motions": mean_cosine_between(motion_vectors),
      "nonzero_words_motion": float(np.mean(np.sum(motion_vectors > 0, 1))),
      "nonzero_words_text": float(np.mean(np.sum(caption_vectors > 0, 1))),
      "flops": flops(caption_vectors, motion_vectors),
      "most_frequent_top_words_motion": [
          [w, int(c)] for w, c in top_counts.most_common(20)],
  }
  if keyword_query is not None and judge is not None and judge.keywords:
    per_keyword = keyword_precision(motion_vectors, keyword_query, judge, k)
    result["keyword_precision_at_10"] = float(np.mean(list(per_keyword.values())))
    result["keyword_precision_per_keyword"] = per_keyword
    result["keyword_judged_by"] = judge.source
  if keyword_query is not None and judge is not None and judge.performed is not None:
    result.update(action_recall(motion_vectors, vocab, keyword_query, judge.performed, k))
    result.update(action_recall(motion_vectors, vocab, keyword_query, judge.performed, k,
                                read=description.described_pieces, prefix="described_"))
  return result


def high_importance_words(motion_vectors: np.ndarray, vocab: Sequence[str],
                          k: int = TOP_WORDS) -> Counter:
  """How many motions have each word among their k heaviest (the paper's Figure 5)."""
  counts: Counter = Counter()
  for vector in np.asarray(motion_vectors):
    counts.update(top_tokens(vector, vocab, k))
  return counts


def format_table(result: dict) -> str:
  """The measures as printed by the evaluate command."""
  rows = [
      ("motion_precision_at_10", "share of a motion's 10 heaviest words that its captions use"),
      ("stopword_share_motion", "stop words and punctuation among a motion's 10 heaviest"),
      ("stopword_share_text", "stop words and punctuation among a caption's 10 heaviest"),
      ("subject_share_motion", "subject nouns (person, someone...) among a motion's 10"),
      ("subject_share_text", "subject nouns among a caption's 10 heaviest"),
      ("caption_self_recall_at_10", "share of a caption's content words among its 10 heaviest"),
      ("action_recall_at_10", "share of a motion's actions (actions.json) named in its 10"),
      ("motions_with_every_action_named", "motions whose 10 heaviest words name every action"),
      ("described_action_recall_at_10", "... named in its description (10 words, forms added)"),
      ("described_motions_with_every_action_named", "motions whose description names every action"),
      ("keyword_precision_at_10", "single-action keyword queries: correct motions in the top 10"),
      ("top10_mass_motion", "share of a motion vector's squared norm in its 10 heaviest"),
      ("top10_mass_text", "share of a caption vector's squared norm in its 10 heaviest"),
      ("cosine_between_motions", "mean cosine between two different motions"),
      ("nonzero_words_motion", "non-zero words per motion vector"),
      ("nonzero_words_text", "non-zero words per caption vector"),
      ("flops", "FLOPS: expected multiplications per text-motion score"),
  ]
  lines = ["| measure | value | what it is |", "|---|---|---|"]
  for key, what in rows:
    if key in result:
      lines.append(f"| {key} | {result[key]:.3f} | {what} |")
  per = result.get("keyword_precision_per_keyword")
  if per:
    lines.append("keyword precision@10 (judged by " + result.get("keyword_judged_by", "?") + "): "
                 + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
  per = result.get("action_recall_per_action")
  if per:
    lines.append("actions named among a motion's 10 heaviest words: "
                 + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
  per = result.get("described_action_recall_per_action")
  if per:
    lines.append("actions named in a motion's description: "
                 + ", ".join(f"{k} {v:.2f}" for k, v in per.items()))
  return "\n".join(lines)
