"""The field's text-to-motion evaluator, trained here: T2M's text–motion matching model.

Every generation paper scores its motions with the evaluator of T2M (Guo et al., CVPR 2022):
a text encoder over word vectors and POS one-hots and a motion encoder over movement
features, trained contrastively (`lexmo_jax.models.t2m_evaluator`). Users with the official
checkpoint load it instead (`lexmo_jax.evaluation.generation_report.load_evaluator`); this
task trains one on any HumanML3D-format folder, the synthetic default included. Nothing
is taken over from an earlier phase.

Word vectors: `evaluator.word_vectors` names a GloVe text file ("word v1 … v300" per line)
or a folder with T2M's `our_vab_data.npy`, `our_vab_words.pkl`, `our_vab_idx.pkl`; '' = a
learned 300-d embedding of the training captions' words (the fallback when GloVe is not at
hand: scores are then comparable between models scored by the same evaluator, not with
published numbers). The vocabulary and vectors used are saved in the workdir.

POS tags come from the `word/POS` field of the dataset's caption lines (HumanML3D's spaCy
lemmas and tags); a caption without them reads as its lower-cased words tagged OTHER.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import dataset_kinds, humanml3d
from lexmo_jax.models import t2m_evaluator as t2m
from lexmo_jax.phases.base import Phase, PhaseContext

logger = logging.getLogger("lexmo_jax.train")

VOCABULARY_FILE = "evaluator_vocabulary.json"
VECTORS_FILE = "evaluator_word_vectors.npy"


class EvaluatorModel(nn.Module):
  """The evaluator as a task model: one parameter group, `evaluator`. Widths default to
  T2M's (what its checkpoint holds); `config.evaluator` may shrink them for a quick run."""
  feature_dim: int
  vocab_size: int
  learned_embedding: bool
  text_hidden: int = 512
  motion_hidden: int = 1024
  movement_hidden: int = 512
  embedding_dim: int = 512

  def setup(self):
    self.evaluator = t2m.T2MEvaluator(
        feature_dim=self.feature_dim, vocab_size=self.vocab_size,
        learned_embedding=self.learned_embedding, text_hidden=self.text_hidden,
        motion_hidden=self.motion_hidden, movement_hidden=self.movement_hidden,
        movement_latent=self.movement_hidden, embedding_dim=self.embedding_dim)

  def embed_text(self, words, pos, lengths, word_vectors=None):
    """(B, 512) caption embeddings (`T2MEvaluator.encode_text`)."""
    return self.evaluator.encode_text(words, pos, lengths, word_vectors)

  def embed_motion(self, motion, lengths, deterministic=True):
    """(B, 512) motion embeddings (`T2MEvaluator.encode_motion`)."""
    return self.evaluator.encode_motion(motion, lengths, deterministic)

  def __call__(self, batch, deterministic=True):
    b, t = batch["motion"].shape[:2]
    words = (jnp.zeros((b, t2m.TEXT_SLOTS), jnp.int32) if self.learned_embedding
             else jnp.zeros((b, t2m.TEXT_SLOTS, t2m.WORD_DIM), jnp.float32))
    pos = jnp.zeros((b, t2m.TEXT_SLOTS), jnp.int32)
    lengths = jnp.full((b,), t2m.TEXT_SLOTS, jnp.int32)
    return (self.evaluator.encode_text(words, pos, lengths),
            self.evaluator.encode_motion(batch["motion"], jnp.full((b,), t, jnp.int32),
                                         deterministic))


def tagged_captions(root, pairs) -> list[str]:
  """The `word/POS` field of every caption of `pairs`, in `humanml3d.all_captions` order; a
  caption whose line carries none gets its lower-cased words tagged OTHER."""
  tags = dict(humanml3d.tagged_captions(root, [p.motion_id for p in pairs])) if root else {}
  out = []
  for caption in humanml3d.all_captions(pairs):
    tagged = tags.get(caption)
    if not tagged:
      words = "".join(ch if ch.isalnum() else " " for ch in caption.lower()).split()
      tagged = " ".join(f"{w}/OTHER" for w in words)
    out.append(tagged)
  return out


def make_vectorizer(config, tagged: list[str]) -> t2m.WordVectorizer:
  """The word vectors `config.evaluator.word_vectors` names (see the module docstring)."""
  source = config.evaluator.word_vectors
  words = sorted({t.rsplit("/", 1)[0] for line in tagged for t in line.split() if "/" in t})
  if not source:
    return t2m.WordVectorizer.learned(words)
  path = pathlib.Path(source)
  if path.is_dir():
    return t2m.WordVectorizer.from_t2m_files(path)
  return t2m.WordVectorizer.from_glove_text(path, words_needed=words)


def save_vectorizer(vectorizer: t2m.WordVectorizer, workdir: pathlib.Path) -> None:
  """Writes the vocabulary (and vectors, unless learned) into the workdir, whole or not at
  all (a partial file is renamed into place)."""
  if vectorizer.vectors is not None:
    partial = workdir / f"{VECTORS_FILE}.{os.getpid()}.partial.npy"
    np.save(partial, vectorizer.vectors)
    os.replace(partial, workdir / VECTORS_FILE)
  partial = workdir / f"{VOCABULARY_FILE}.{os.getpid()}.partial"
  partial.write_text(json.dumps({"learned": vectorizer.vectors is None,
                                 "vocabulary": vectorizer.vocabulary}))
  os.replace(partial, workdir / VOCABULARY_FILE)


def load_vectorizer(workdir) -> t2m.WordVectorizer:
  """The vectorizer an evaluator workdir was trained with.

  Raises:
    FileNotFoundError, ValueError: naming the missing or unreadable file.
  """
  path = pathlib.Path(workdir) / VOCABULARY_FILE
  if not path.is_file():
    raise FileNotFoundError(f"{path} is missing: not a t2m_evaluator workdir")
  try:
    record = json.loads(path.read_text())
    vocabulary, learned = record["vocabulary"], record["learned"]
  except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
    raise ValueError(f"{path} is not an evaluator vocabulary ({e})") from None
  vectors = None if learned else np.load(pathlib.Path(workdir) / VECTORS_FILE)
  return t2m.WordVectorizer(vocabulary, vectors)


def _constants(config, tok, split_data, workdir):
  del tok
  tagged = tagged_captions(config.data.root, split_data.pairs)
  vectorizer = make_vectorizer(config, tagged)
  if jax.process_index() == 0:
    save_vectorizer(vectorizer, pathlib.Path(workdir))
  words, pos, lengths = vectorizer.encode_many(tagged)
  unknown = float(np.mean(words[:, 1:-1][words[:, 1:-1] > 0] == vectorizer.word_to_id[t2m.UNK])
                  ) if words.size else 0.0
  logger.info("evaluator: %d words (%s), %.1f%% of caption words unknown", len(vectorizer),
              "learned" if vectorizer.vectors is None else config.evaluator.word_vectors,
              100 * unknown)
  constants = {"evaluator_words": words, "evaluator_pos": pos, "evaluator_lengths": lengths}
  if vectorizer.vectors is not None:
    constants["word_vectors"] = vectorizer.vectors
  constants["evaluator_vocab_size"] = np.zeros(len(vectorizer), np.int8)
  return constants


def evaluator_model(config, vocab_size: int, learned_embedding: bool) -> EvaluatorModel:
  """The EvaluatorModel of a t2m_evaluator config (`config.evaluator`'s widths)."""
  e = config.evaluator
  return EvaluatorModel(feature_dim=dataset_kinds.get_kind(config.data.kind).feature_dim,
                        vocab_size=vocab_size, learned_embedding=learned_embedding,
                        text_hidden=e.text_hidden, motion_hidden=e.motion_hidden,
                        movement_hidden=e.movement_hidden, embedding_dim=e.embedding_dim)


def _model(config, constants):
  return evaluator_model(config, constants["evaluator_vocab_size"].shape[0],
                         "word_vectors" not in constants)


def motion_lengths(motion_mask_bt):
  """Frames of each motion the evaluator reads: whole movement units of 4 (T2M's)."""
  return motion_mask_bt.sum(1) // t2m.UNIT_LENGTH * t2m.UNIT_LENGTH


def loss(ctx: PhaseContext, params, batch, rng, step):
  """T2M's contrastive loss between the caption and motion embeddings.

  Reads batch["motion"] (B, T, F), batch["motion_mask"] (B, T) and batch["caption"] (B,)
  (rows of the evaluator's caption tables)."""
  del step
  k_shift, k_dropout = jax.random.split(rng)
  rows = batch["caption"]
  c = ctx.constants
  text = ctx.apply_pure(params, EvaluatorModel.embed_text, c["evaluator_words"][rows],
                        c["evaluator_pos"][rows], c["evaluator_lengths"][rows],
                        c.get("word_vectors"))
  lengths = motion_lengths(batch["motion_mask"])
  keep = jnp.arange(batch["motion"].shape[1])[None] < lengths[:, None]
  motion = jnp.where(keep[..., None], batch["motion"], 0.0)
  motion_emb = ctx.apply(params, EvaluatorModel.embed_motion, motion, lengths, rng=k_dropout)
  value, terms = t2m.contrastive_loss(text, motion_emb, k_shift, ctx.loss_config.margin)
  distance = jnp.linalg.norm(text[:, None] - motion_emb[None], axis=-1)
  terms = {k: v for k, v in terms.items() if k in ("loss_pos", "loss_neg")}
  terms["t2m_top1"] = (jnp.argmin(distance, 1) == jnp.arange(distance.shape[0])).mean()
  return value, terms


def check_loss(loss_config, check) -> None:
  """Refuses a non-positive margin."""
  check.require(loss_config.margin > 0, "margin", "must be positive")


def check_config(config, check) -> None:
  """Refuses bad widths and a word-vector path that does not exist."""
  check.positive("evaluator.text_hidden", "evaluator.motion_hidden",
                 "evaluator.movement_hidden", "evaluator.embedding_dim")
  check.existing_path("evaluator.word_vectors", "a GloVe text file or T2M's glove folder")


def make_phase(loss_config) -> Phase:
  del loss_config
  return Phase(name="t2m_evaluator", loss=loss, trainable=("evaluator",),
               batch_keys=("motion", "motion_mask", "caption"), model=_model,
               constants=_constants)
