"""A lexical vector read as words: the description of a motion or caption.

Every coordinate of a lexical vector is a word piece of the text encoder's vocabulary
(BERT's WordPiece for the default model), and a word often holds several: "walks",
"walking" and "walk" are three coordinates, "forward" and "forwards" two. Ranking the
coordinates one by one splits a word's weight across its forms, so a motion that walks can
end up described by ten other words, each on one form, while its walking is spread over
three. A description therefore reads forms of one word as one word:

  * whole-word pieces with the same Snowball stem (`evaluation.words.stem`) are one word,
    whose weight is the sum of its forms' weights: the same forms a keyword search for the
    word puts in its query (`search.gallery.keyword_ids`), so a word heavy in the
    description is one that finds the motion;
  * the word is shown by its forms present in the vector, shortest first, then in
    alphabetical order ("walk/walks/walking"; "walks/walking" where "walk" has no weight),
    so the reader sees which coordinates were added and one word is spelled alike
    throughout;
  * every other coordinate stays, under its own name: stop words, punctuation, numbers and
    continuation pieces ("##s" of "hop ##s", "##ock" of "counterclockwise", which the
    vocabulary splits into counter + ##cl + ##ock + ##wise). A piece cannot be put back on
    its word from a bag of weights, and leaving it out would hide what the vector says.

The raw coordinates stay available (`LexicalModel.top_words`, and the pictures of
`lexmo_jax.visualization`, which draw the representation itself).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lexmo_jax.evaluation import words as words_lib

DESCRIPTION_WORDS = 10


def word_of(token: str) -> str:
  """The word a vocabulary entry belongs to: its stem for an alphabetic whole word, the
  entry itself for anything else (a continuation piece such as "##s", punctuation, a
  number)."""
  if token.isalpha():
    return "stem:" + words_lib.stem(token)
  return "piece:" + token


def describe(vector, vocab: Sequence[str], k: int = DESCRIPTION_WORDS
             ) -> list[tuple[str, float]]:
  """The k heaviest words of a lexical vector, forms of one word counted together.

  Args:
    vector: (V,) lexical vector (non-negative weights).
    vocab: the V vocabulary entries, the word piece of each coordinate.
    k: how many words at most (fewer when fewer have a positive weight).

  Returns:
    [(forms, weight)], heaviest first: `forms` the word's pieces joined by "/", shortest
    first ("clap/clapping"), `weight` the sum of their weights. Equal weights keep the
    order of their heaviest form's vocabulary id.

  Raises:
    ValueError: a vector whose length is not the vocabulary's, or k < 1.
  """
  vector = np.asarray(vector, np.float32).reshape(-1)
  return [("/".join(sorted((vocab[i] for i in ids), key=lambda form: (len(form), form))),
           weight) for ids, weight in _heaviest_words(vector, vocab, k)]


def described_pieces(vector, vocab: Sequence[str], k: int = DESCRIPTION_WORDS) -> set[str]:
  """Every word piece among the forms of `describe`'s k words."""
  vector = np.asarray(vector, np.float32).reshape(-1)
  return {vocab[i] for ids, _ in _heaviest_words(vector, vocab, k) for i in ids}


def _heaviest_words(vector: np.ndarray, vocab: Sequence[str], k: int
                    ) -> list[tuple[list[int], float]]:
  """[(ids of a word's forms, heaviest first; their summed weight)], heaviest word first."""
  if vector.shape[0] != len(vocab):
    raise ValueError(f"a lexical vector of {vector.shape[0]} weights does not fit a "
                     f"vocabulary of {len(vocab)} words")
  if k < 1:
    raise ValueError(f"k must be at least 1, got {k}")
  present = np.flatnonzero(vector > 0)
  present = present[np.lexsort((present, -vector[present]))]  # heaviest first
  groups: dict[str, list[int]] = {}
  for i in present.tolist():
    groups.setdefault(word_of(vocab[i]), []).append(i)
  words = [(ids, float(vector[ids].sum(dtype=np.float64))) for ids in groups.values()]
  words.sort(key=lambda w: (-w[1], w[0][0]))
  return words[:k]
