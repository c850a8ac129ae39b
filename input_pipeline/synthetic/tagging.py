"""word/POS tokens of a caption, as HumanML3D's text files carry them.

HumanML3D tagged its captions with spaCy: lowercase lemmas with universal POS tags
("a/DET man/NOUN kick/VERB ..."). Readers of the format ignore the tags, but the
field must be there, so a small lexicon covering the generator's vocabulary is used;
unknown words are tagged NOUN.
"""
import re

from input_pipeline.synthetic import captions

_WORDS = {
    "DET": "a an the their his her its both some every each all this that these those",
    "PRON": "someone somebody something he she it they them himself herself themselves",
    "ADP": "with to on in at of from over onto into off behind across around toward towards "
           "by for like",
    "CCONJ": "and or but",
    "SCONJ": "before after while as until once",
    "ADV": "then forward forwards backward backwards ahead slowly quickly fast rapidly briskly "
           "leisurely again twice thrice sideways diagonally first finally still briefly "
           "overhead high up down back together straight very slightly clockwise "
           "counterclockwise leftward rightward out away hello",
    "ADJ": "left right slow quick slight steady easy full single little few small opposite "
           "side deep",
    "NUM": "one two three four five 2 3 4 5 45 90 180",
    "PART": "not",
}
_AUXILIARIES = {"is": "be", "are": "be"}
_TAGS = {w: tag for tag, words in _WORDS.items() for w in words.split()}
_VERBS = ("walk take move stroll hurry back step jog run break sprint dash side-step "
          "shuffle turn make spin do twirl circle jump leap hop balance perform crawl get drop "
          "dance wave raise kick lift punch throw jab squat bend sit lower stand pitch bow put "
          "stretch reach lean clap swing rotate lunge pick grab wait pause remain stay face "
          "lead").split()
_LEMMAS = {}
for _v in _VERBS:
  for _form in (_v, captions.third_person(_v), captions.gerund(_v)):
    _LEMMAS[_form] = (_v, "VERB")
_NOUNS = {"times": "time", "steps": "step", "arms": "arm", "hands": "hand", "knees": "knee",
          "jumps": "jump", "kicks": "kick", "punches": "punch", "squats": "squat",
          "throws": "throw", "bows": "bow", "lunges": "lunge", "spins": "spin",
          "circles": "circle", "hops": "hop", "turns": "turn", "degrees": "degree",
          "fists": "fist", "jacks": "jack", "moves": "move", "fours": "four"}
# Words that are nouns after a determiner or number ("a jump", "two kicks") but verbs
# after the subject; the tag follows the word before.
_NOUN_AFTER = set(_TAGS[w] for w in ("a", "two")) | {"ADJ"}


def tag(caption: str) -> str:
  """Space-separated lemma/POS tokens of a caption, punctuation dropped."""
  tokens, previous = [], None
  for word in re.findall(r"[a-z0-9\-]+", caption.lower()):
    noun = _NOUNS.get(word)
    if word in _LEMMAS and not (previous in _NOUN_AFTER and (noun or word in _VERBS)):
      lemma, pos = _LEMMAS[word]
    elif word in _AUXILIARIES:
      lemma, pos = _AUXILIARIES[word], "AUX"
    elif noun:
      lemma, pos = noun, "NOUN"
    elif word in _TAGS:
      lemma, pos = word, _TAGS[word]
    else:
      lemma, pos = word, "NOUN"
    tokens.append(f"{lemma}/{pos}")
    previous = pos
  return " ".join(tokens)
