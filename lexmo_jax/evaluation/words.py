"""Which vocabulary entries are content words, and which words a caption is about.

The interpretability measures (`lexmo_jax.evaluation.interpretability`) ask of a lexical
vector's heaviest word pieces: is this a stop word or punctuation, and is it one of the
content words of the motion's captions? This module answers both.

Content words are whole words that are not:
  - stop words: English closed-class words (articles, determiners, pronouns, prepositions,
    conjunctions, auxiliaries, particles, sequence adverbs such as "then");
  - punctuation;
  - numbers: digits, number words and counting words ("twice", "times");
  - subject nouns: the nouns every motion caption starts with ("a person", "a man",
    "someone", "the figure"), which say nothing about the motion.
Direction words that motion captions use as content ("up", "down", "forward", "back",
"around", "left", "right", "out") are content words here, although general-purpose stop-word
lists count some of them: in this field they are what distinguishes two motions.

The lists are written here because no installable library fits: NLTK's stop words need a
corpus download, and the Glasgow list that scikit-learn and spaCy ship counts motion words
("back", "front", "side", "move", "up", "down") as stop words. Words are compared on their
Snowball (Porter2) stems (`snowballstemmer`), so "claps", "clapping" and "clap" match.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

import snowballstemmer

STOP_WORDS = frozenset("""
a an the this that these those some any each every both either neither another such no nor
not own same other few several many much more most less least
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his
himself she her hers herself it its itself they them their theirs themselves oneself
something anything everything nothing someone's who whom whose which what whatever
and or but so yet if then than because while as until though although unless whether
of at by for with about against between into through during before after above below to from
in on onto upon off over under within without across along among amongst toward towards via
like near beside besides behind beyond throughout per
is are was were be been being am do does did doing done have has had having will would can
could shall should may might must 's 're 've 'd 'll 'm
there here when where why how just very too also only even still again further first finally
next now already soon later else just quite rather really almost
s t d ll m o re ve y
""".split())

SUBJECT_NOUNS = frozenset("""
person persons people man men woman women someone somebody figure figures human humans guy
guys individual subject character actor performer he she they stickman stick
""".split())

NUMBER_WORDS = frozenset("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred once twice thrice times
time couple half
""".split())

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CONTINUATION = "##"


@functools.lru_cache(maxsize=1)
def _stemmer():
  return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
  """Snowball (Porter2) stem of a lowercase word."""
  return _stemmer().stemWord(word.lower())


def is_punctuation(token: str) -> bool:
  """True for a token made of punctuation only ("." , "##,")."""
  return not any(ch.isalnum() for ch in token)


def is_number(token: str) -> bool:
  """True for a digit string or a number word ("3", "three", "twice")."""
  token = token.lower()
  return token.isdigit() or token in NUMBER_WORDS


def kind(token: str) -> str:
  """What a vocabulary entry is: 'punctuation', 'stop', 'number', 'subject', 'piece' (a
  '##' continuation) or 'content'."""
  if token.startswith(_CONTINUATION) and len(token) > len(_CONTINUATION):
    return "piece"
  token = token.lower()
  if is_punctuation(token):
    return "punctuation"
  if token in STOP_WORDS:
    return "stop"
  if is_number(token):
    return "number"
  if token in SUBJECT_NOUNS:
    return "subject"
  return "content"


def is_stop_or_punctuation(token: str) -> bool:
  """True for a stop word or punctuation."""
  return kind(token) in ("stop", "punctuation")


def caption_words(caption: str) -> list[str]:
  """Lowercase words of a caption, punctuation dropped."""
  return _WORD.findall(caption.lower())


def content_words(caption: str) -> list[str]:
  """The caption's content words, in order, each once."""
  return list(dict.fromkeys(w for w in caption_words(caption) if kind(w) == "content"))


class CaptionWords:
  """The content words of a set of captions, for matching a vector's word pieces.

  A word piece matches when it is a whole word whose stem is the stem of one of the
  captions' content words, or the first piece of such a word as the tokenizer splits it
  ("lung" of "lunges", "counter" of "counterclockwise").
  """

  def __init__(self, captions: Iterable[str], tokenize=None):
    words = list(dict.fromkeys(w for c in captions for w in content_words(c)))
    self.words = words
    self.stems = {stem(w) for w in words}
    self.first_pieces = set()
    if tokenize is not None:
      for w in words:
        pieces = tokenize(w)
        if len(pieces) > 1 and len(pieces[0]) > 2:
          self.first_pieces.add(pieces[0])

  def __len__(self) -> int:
    return len(self.words)

  def matches(self, token: str) -> bool:
    """Whether a vocabulary entry is one of these content words."""
    if kind(token) != "content":
      return False
    return stem(token) in self.stems or token in self.first_pieces

  def covered_by(self, tokens: Sequence[str]) -> int:
    """How many of the content words appear among `tokens` (stem or first piece)."""
    token_stems = {stem(t) for t in tokens if kind(t) == "content"}
    token_set = set(tokens)
    return sum(1 for w in self.words if stem(w) in token_stems or self._first(w) in token_set)

  def _first(self, word: str) -> str | None:
    for piece in self.first_pieces:
      if word.startswith(piece):
        return piece
    return None
