"""How informative each vocabulary entry is about the motion a caption describes.

Three measures over the training captions, each (V,) ≥ 0 with special tokens at 0:
  idf        inverse document frequency;
  agreement  how much more often a word comes back in another caption of the same motion
             than in captions at large (pointwise mutual information, clipped at 0);
  a content-word gate from the captions' own part-of-speech tags (HumanML3D's caption
             files carry spaCy's universal tags): entries the corpus tags as function words
             (determiners, adpositions, pronouns, conjunctions, auxiliaries, particles,
             numerals) and punctuation weigh 0.

The phases read the result as `word_weights`: LexMLM and LexMMM mask informative words
first, LexMLM's self-prediction and LexMMM's bag-of-words term count words by it.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

# Universal POS tags of content words (spaCy, as HumanML3D tagged its captions).
CONTENT_POS = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def idf_word_weights(input_ids: np.ndarray, attention_mask: np.ndarray, vocab_size: int,
                     special_ids: np.ndarray) -> np.ndarray:
  """Inverse document frequency of every token over a caption corpus. Returns (V,) float32.

  idf = log((1 + N) / (1 + df)) + 1, so unseen tokens get the largest weight and a token in
  every caption weight 1. Special tokens get weight 0 (never masked).
  """
  n = input_ids.shape[0]
  df = np.zeros(vocab_size, np.int64)
  for ids, mask in zip(input_ids, attention_mask):
    df[np.unique(ids[mask.astype(bool)])] += 1
  idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
  idf[np.asarray(special_ids)] = 0.0
  return idf.astype(np.float32)


def agreement_word_weights(input_ids: np.ndarray, attention_mask: np.ndarray,
                           group_ids: np.ndarray, vocab_size: int, special_ids: np.ndarray,
                           smoothing: float = 1.0) -> np.ndarray:
  """How much a token's use depends on the motion it describes. Returns (V,) float32 ≥ 0.

  A motion's captions are written independently (HumanML3D: three annotators). A word that
  describes the motion ("claps", "counterclockwise") comes back in the other captions of the
  same motion far more often than in captions at large; one that does not ("a", "the",
  "person", "someone": each annotator picks their own) comes back at its base rate. The
  weight is that pointwise mutual information, clipped at zero:

    w = max(0, log(P(token in c' | token in c, c ≠ c' captions of one motion) / P(token)))

  with the conditional shrunk toward the base rate by `smoothing` pseudo-pairs, so a token
  seen in few pairs gets little weight. IDF cannot tell "someone" from "walks" (both are
  in a few percent of captions); this can. Special tokens and unseen tokens get 0.

  Args:
    input_ids, attention_mask: (N, L) tokenised captions.
    group_ids: (N,) the motion each caption describes.
    vocab_size: V.
    special_ids: tokens that are never words.
    smoothing: pseudo-pairs at the base rate.
  """
  n = input_ids.shape[0]
  valid = attention_mask.reshape(-1).astype(bool)
  rows = np.repeat(np.arange(n), input_ids.shape[1])[valid]
  cols = input_ids.reshape(-1)[valid].astype(np.int64)
  present = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, vocab_size))
  present.data[:] = 1.0  # a token counts once per caption
  _, group = np.unique(np.asarray(group_ids), return_inverse=True)
  member = sp.csr_array((np.ones(n), (group, np.arange(n))), shape=(group.max() + 1, n))
  counts = (member @ present).tocsc()  # (motions, V): captions of the motion using the token
  sizes = np.bincount(group).astype(np.float64)
  base = np.asarray(present.sum(axis=0)).reshape(-1) / max(n, 1)
  with_pairs = np.asarray(counts.T @ (sizes - 1.0)).reshape(-1)
  squared = counts.copy()
  squared.data = squared.data * (squared.data - 1.0)
  both = np.asarray(squared.sum(axis=0)).reshape(-1)
  conditional = (both + smoothing * base) / (with_pairs + smoothing)
  seen = base > 0
  weights = np.zeros(vocab_size, np.float64)
  weights[seen] = np.maximum(0.0, np.log(conditional[seen] / base[seen]))
  weights[np.asarray(special_ids)] = 0.0
  return weights.astype(np.float32)


def pos_counts(tagged_captions: Iterable[tuple[str, str]]) -> dict[str, Counter]:
  """word -> Counter of its POS tags, from (caption, 'word/POS ...') pairs.

  Tags are spaCy lemmas ("kick/VERB" for "kicks"); where a caption's words and its tags line
  up one to one, the surface word is counted as well as the lemma.
  """
  counts: dict[str, Counter] = {}
  for caption, tags in tagged_captions:
    pairs = [t.rsplit("/", 1) for t in tags.split() if "/" in t]
    pairs = [(lemma.lower(), pos) for lemma, pos in pairs if lemma and pos]
    words = _WORD.findall(caption.lower())
    for lemma, pos in pairs:
      counts.setdefault(lemma, Counter())[pos] += 1
    if len(words) == len(pairs):
      for word, (lemma, pos) in zip(words, pairs):
        if word != lemma:
          counts.setdefault(word, Counter())[pos] += 1
  return counts


def content_gate(vocab: Sequence[str], counts: Mapping[str, Counter],
                 content_pos: Sequence[str] = CONTENT_POS) -> np.ndarray:
  """(V,) float32: 0 for punctuation and for entries tagged mostly as function words.

  Entries the tags never mention (word pieces, unseen words) keep 1: the gate only removes
  what the corpus itself says is a function word.
  """
  content = set(content_pos)
  gate = np.ones(len(vocab), np.float32)
  for i, token in enumerate(vocab):
    if token and not any(ch.isalnum() for ch in token):
      gate[i] = 0.0
      continue
    tags = counts.get(token.lower())
    if tags:
      pos, _ = tags.most_common(1)[0]
      if pos not in content:
        gate[i] = 0.0
  return gate
