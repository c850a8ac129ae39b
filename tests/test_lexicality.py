"""The property the method exists for, on a tiny model: the lexical space ends up lexical (a
caption's heaviest words are its own content words, a motion's heaviest words are its
captions' words, neither is made of stop words), and it does not without this project's
additions to LexMLM.

The weak decoder's use of the bottleneck is not asserted here: on 24 motions the decoder
rebuilds the training captions from their function words alone (about 42% of masked words
from a zeroed b), so b has nothing to add; `evaluate --task=bottleneck` measures it on the
demo."""
import pytest

from conftest import CHAIN_STEPS, tiny_config, train_on_one_device
from lexmo_jax.evaluation import interpretability as interp
from lexmo_jax.inference import LexicalModel
from lexmo_jax.train import data as data_lib

def _measures(workdir):
  model = LexicalModel.from_workdir(workdir)
  split = data_lib.load_split(model.config, "train")
  pairs = [p for p in split.pairs if "#" not in p.item_id]
  motions = model.encode_motions([p.motion for p in pairs])
  captions = list(dict.fromkeys(c for p in pairs for c in p.captions))
  return interp.measure(vocab=model.vocab, tokenize=model.tokenizer.tokenize,
                        motion_vectors=motions, motion_captions=[p.captions for p in pairs],
                        caption_vectors=model.encode_texts(captions), captions=captions)


def test_captions_are_described_by_their_own_words(chain):
  # The demo's bar is 0.8 (`make demo`, README); this 32-wide model trained a few hundred
  # steps on 24 motions reaches about 0.75.
  m = _measures(chain["lexcmlp"])
  assert m["caption_self_recall_at_10"] >= 0.7, m
  assert m["stopword_share_text"] <= 0.1, m
  assert m["subject_share_text"] <= 0.05, m


def test_motions_are_described_by_their_captions_words(chain):
  m = _measures(chain["lexcmlp"])
  assert m["motion_precision_at_10"] >= 0.5, m
  assert m["stopword_share_motion"] <= 0.1, m
  assert m["subject_share_motion"] <= 0.05, m


def test_the_heaviest_words_carry_the_vector(chain, synthetic_root, tmp_path):
  """A match is explained by the words it lists: the ten heaviest words hold most of each
  vector's norm, few words are non-zero and different motions share few of them; without
  the off-caption L1 (the same 80 steps from the same LexMMM workdir) they do not."""
  steps = CHAIN_STEPS["lexcmlp"]
  config = tiny_config("lexcmlp", synthetic_root, total_steps=steps, log_every=40,
                       checkpoint_every=steps, init_from=str(chain["lexmmm"]))
  config.optim.warmup_steps = 10
  config.loss.off_caption_weight = 0.0
  train_on_one_device(config, tmp_path / "no_off_caption")
  plain = _measures(tmp_path / "no_off_caption")
  m = _measures(chain["lexcmlp"])
  assert m["top10_mass_motion"] >= 0.6 and m["top10_mass_text"] >= 0.6, m
  assert m["top10_mass_motion"] > plain["top10_mass_motion"] + 0.3, (plain, m)
  assert m["nonzero_words_motion"] < plain["nonzero_words_motion"] / 2, (plain, m)
  assert m["nonzero_words_text"] < plain["nonzero_words_text"] / 2, (plain, m)
  assert m["cosine_between_motions"] < plain["cosine_between_motions"] - 0.15, (plain, m)


def test_without_self_prediction_and_informativeness_captions_are_not_lexical(
    chain, synthetic_root, tmp_path):
  """The control: LexMLM as published, from random weights, says little of the caption."""
  steps = CHAIN_STEPS["lexmlm"]
  config = tiny_config("lexmlm", synthetic_root, total_steps=steps, log_every=40,
                       checkpoint_every=steps)
  config.optim.warmup_steps = 10
  config.loss.self_prediction_weight = 0.0
  config.loss.word_weighting, config.loss.content_pos = "idf", ()
  train_on_one_device(config, tmp_path / "plain")

  def text_measures(workdir):
    model = LexicalModel.from_workdir(workdir, require_lexical=False)
    captions = list(dict.fromkeys(
        c for p in data_lib.load_split(model.config, "train").pairs for c in p.captions))
    vectors = model.encode_texts(captions)
    return interp.measure(vocab=model.vocab, tokenize=model.tokenizer.tokenize,
                          motion_vectors=vectors[:1], motion_captions=[captions[:1]],
                          caption_vectors=vectors, captions=captions)
  plain = text_measures(tmp_path / "plain")
  lexical = text_measures(chain["lexmlm"])
  assert lexical["caption_self_recall_at_10"] > plain["caption_self_recall_at_10"] + 0.3, (
      plain, lexical)
  assert lexical["subject_share_text"] < plain["subject_share_text"] or (
      lexical["subject_share_text"] == 0.0), (plain, lexical)
