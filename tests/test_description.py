"""A motion's description: its heaviest words, forms of one word counted together."""
import numpy as np
import pytest

from input_pipeline.tokenizer import load_tokenizer
from lexmo_jax import description
from lexmo_jax.evaluation import interpretability as interp


@pytest.fixture(scope="module")
def tok():
  return load_tokenizer()


def _vector(tok, weights: dict[str, float]) -> np.ndarray:
  v = np.zeros(tok.vocab_size, np.float32)
  for word, weight in weights.items():
    v[tok.token_to_id(word)] = weight
  return v


def test_forms_of_one_word_add_up_and_are_all_shown(tok):
  # Motion 000005 of the demo: its walking is spread over two forms, each lighter than
  # words said once; read as words, "walk" is its fourth.
  v = _vector(tok, {"clap": 1.63, "clapping": 0.79, "front": 1.22, "straight": 1.17,
                    "forward": 0.98, "forwards": 0.84, "walking": 0.74, "walks": 0.46,
                    "chest": 0.80})
  words = description.describe(v, tok.vocab, k=4)
  assert [w for w, _ in words] == ["clap/clapping", "forward/forwards", "front",
                                   "walks/walking"]  # forms shortest first, always
  assert [round(x, 2) for _, x in words] == [2.42, 1.82, 1.22, 1.20]
  assert "walking" not in interp.top_tokens(v, tok.vocab, 4)  # one form at a time: absent
  assert description.described_pieces(v, tok.vocab, k=4) == {
      "clap", "clapping", "forward", "forwards", "front", "walking", "walks"}


def test_pieces_and_other_entries_stay_under_their_own_names(tok):
  # "counterclockwise" is counter + ##cl + ##ock + ##wise: its pieces are what says it.
  v = _vector(tok, {"hop": 1.4, "##s": 1.2, "hopping": 0.7, "the": 0.5, ".": 0.4, "3": 0.3,
                    "##ock": 0.2})
  assert description.describe(v, tok.vocab) == [
      ("hop/hopping", pytest.approx(2.1)), ("##s", pytest.approx(1.2)),
      ("the", pytest.approx(0.5)), (".", pytest.approx(0.4)), ("3", pytest.approx(0.3)),
      ("##ock", pytest.approx(0.2))]
  # One word is spelled alike whichever of its forms weighs most.
  a = description.describe(_vector(tok, {"walks": 0.9, "walking": 0.3}), tok.vocab)
  b = description.describe(_vector(tok, {"walks": 0.3, "walking": 0.9}), tok.vocab)
  assert a[0][0] == b[0][0] == "walks/walking"


def test_fewer_words_than_asked_ties_and_bad_input(tok):
  assert description.describe(np.zeros(tok.vocab_size), tok.vocab) == []
  v = _vector(tok, {"jumps": 1.0, "kicks": 1.0})
  assert [w for w, _ in description.describe(v, tok.vocab)] == sorted(
      ["jumps", "kicks"], key=tok.token_to_id)  # equal weights: vocabulary order
  with pytest.raises(ValueError, match="does not fit a vocabulary of"):
    description.describe(v[:10], tok.vocab)
  with pytest.raises(ValueError, match="k must be at least 1"):
    description.describe(v, tok.vocab, k=0)


def test_action_recall_reads_the_description_too(tok):
  # Ten words said once crowd out a walk spread over three forms: the coordinates miss it,
  # the description (walk's forms added) names it.
  others = ["clap", "front", "straight", "ahead", "forward", "rapidly", "slowly", "together",
            "chest", "hands"]
  weights = {w: 1.0 - 0.01 * i for i, w in enumerate(others)}
  weights.update({"walking": 0.6, "walks": 0.5, "walk": 0.4})
  v = _vector(tok, weights)

  def query(keyword):
    q = np.zeros(tok.vocab_size, np.float32)
    for form in (keyword, keyword + "s", keyword + "ing"):
      if tok.token_to_id(form) is not None:
        q[tok.token_to_id(form)] = 1.0
    return q

  performed = [{"clap": ("clap",), "walk": ("walk",)}]
  raw = interp.action_recall(v[None], tok.vocab, query, performed)
  described = interp.action_recall(v[None], tok.vocab, query, performed,
                                   read=description.described_pieces, prefix="described_")
  assert raw["action_recall_per_action"] == {"clap": 1.0, "walk": 0.0}
  assert described["described_action_recall_per_action"] == {"clap": 1.0, "walk": 1.0}
  assert described["described_motions_with_every_action_named"] == 1.0
