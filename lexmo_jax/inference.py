"""A trained workdir's encoders: captions and motions → lexical vectors over the vocabulary.

  model = LexicalModel.from_workdir("runs/demo/lexcmlp")
  v_text = model.encode_texts(["a person jumps twice"])        # (1, V), ≥ 0
  v_motion = model.encode_motions([features])                   # raw (T, F) features
  model.top_words(v_motion[0], 10)                              # [(word, weight), ...]
"""
from __future__ import annotations

import functools
import json
import pathlib
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import humanml3d
from input_pipeline.pipeline import EvalBatches
from lexmo_jax.models import lexical
from lexmo_jax.models.build import build_model, dummy_batch
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.handoff import HandoffError, read_workdir_record

# Phases after which both sides have a lexical head worth reading.
LEXICAL_PHASES = ("lexmmm", "lexcmlp")


class WorkdirError(ValueError):
  pass


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise WorkdirError(f"{workdir} is not a training workdir: {path} is missing")
  return ml_collections.ConfigDict(json.loads(path.read_text()))


class LexicalModel:
  """Encoders of a finished (or checkpointed) phase, on the local devices."""

  def __init__(self, config, params, tokenizer, step: int, phase: str):
    self.config = config
    self.params = params
    self.tokenizer = tokenizer
    self.step = step
    self.phase = phase
    self.model: LexMo = build_model(config)
    self.vocab = tokenizer.vocab
    mask = np.ones(tokenizer.vocab_size, bool)
    if config.model.exclude_special_tokens:
      mask[tokenizer.special_ids] = False
    self.vocab_mask = jnp.asarray(mask)

  @classmethod
  def from_workdir(cls, workdir: str | pathlib.Path, require_lexical: bool = True):
    config = load_config(workdir)
    try:
      ckpt, step, record = read_workdir_record(workdir)
    except HandoffError as e:
      raise WorkdirError(f"{workdir} has no finished phase to load: {e}") from None
    phase = record.get("phase")
    if require_lexical and phase not in LEXICAL_PHASES:
      ckpt.close()
      raise WorkdirError(f"{workdir} is a {phase!r} workdir; motion lexical vectors come from a "
                         f"{' or '.join(LEXICAL_PHASES)} workdir")
    model = build_model(config)
    boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_batch(config)))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                            nn.unbox(boxed)["params"])
    try:
      params = ckpt.restore_params(step, abstract)
    finally:
      ckpt.close()
    return cls(config, params, data_lib.load_tokenizer(config), step, phase)

  # Batched encoders.
  @functools.partial(jax.jit, static_argnums=0)
  def _text_batch(self, params, input_ids, attention_mask):
    logits = self.model.apply({"params": params}, input_ids, attention_mask,
                              method=LexMo.text_logits)
    return lexical.lexical_vector(logits, attention_mask.astype(bool), self.vocab_mask)

  @functools.partial(jax.jit, static_argnums=0)
  def _motion_batch(self, params, motion, motion_mask):
    logits, mask = self.model.apply({"params": params}, motion, motion_mask,
                                    method=LexMo.motion_logits)
    h, _ = self.model.apply({"params": params}, motion, motion_mask,
                            method=LexMo.motion_states)
    return lexical.lexical_vector(logits, mask, self.vocab_mask), h[:, 0]

  def __hash__(self):
    return id(self)

  def encode_texts(self, captions: Sequence[str], batch_size: int = 0) -> np.ndarray:
    """(N, V) float32 lexical vectors of captions."""
    batch_size = batch_size or self.config.eval.batch_size
    tokens = self.tokenizer.encode(list(captions), self.config.data.max_text_length)
    out = []
    for start in range(0, len(captions), batch_size):
      ids = tokens["input_ids"][start:start + batch_size]
      am = tokens["attention_mask"][start:start + batch_size]
      n = len(ids)
      if n < batch_size:  # one compiled shape for every batch
        ids = np.pad(ids, [(0, batch_size - n), (0, 0)])
        am = np.pad(am, [(0, batch_size - n), (0, 0)])
        am[n:, 0] = 1
      out.append(np.asarray(self._text_batch(self.params, ids, am))[:n])
    return np.concatenate(out) if out else np.zeros((0, self.tokenizer.vocab_size), np.float32)

  def normalisation(self) -> tuple[np.ndarray, np.ndarray]:
    return humanml3d.load_normalisation(self.config.data.root, self.config.data.kind)

  def encode_eval_batches(self, batches: EvalBatches) -> dict[str, np.ndarray]:
    """Every item of an evaluation stream: text and motion lexical vectors, pooled motion."""
    texts, motions, pooled = [], [], []
    for k in range(len(batches)):
      b = batches.batch(k)
      valid = b["valid"]
      texts.append(np.asarray(self._text_batch(self.params, b["input_ids"],
                                               b["attention_mask"]))[valid])
      v, h = self._motion_batch(self.params, b["motion"], b["motion_mask"])
      motions.append(np.asarray(v)[valid])
      pooled.append(np.asarray(h)[valid])
    return {"text": np.concatenate(texts), "motion": np.concatenate(motions),
            "motion_pooled": np.concatenate(pooled)}

  def encode_motions(self, motions: Sequence[np.ndarray], batch_size: int = 0) -> np.ndarray:
    """(N, V) lexical vectors of raw (T, F) feature arrays (normalised here)."""
    pairs = [humanml3d.MotionTextPair(item_id=str(i), motion_id=str(i),
                                      motion=np.asarray(m, np.float32), captions=("",))
             for i, m in enumerate(motions)]
    mean, std = self.normalisation()
    batches = self.eval_batches(pairs, mean, std, batch_size)
    return self.encode_eval_batches(batches)["motion"]

  def eval_batches(self, pairs, mean, std, batch_size: int = 0) -> EvalBatches:
    d = self.config.data
    return EvalBatches(pairs, mean, std, self.tokenizer,
                       batch_size=batch_size or self.config.eval.batch_size,
                       max_motion_length=d.max_motion_length, max_text_length=d.max_text_length)

  def top_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    """The k highest-weighted words of a lexical vector: its description."""
    order = np.argsort(-vector)[:k]
    return [(self.vocab[i], float(vector[i])) for i in order if vector[i] > 0]
