"""A trained captioning workdir: motions → captions (greedy or beam search), batched and
compiled, plus everything `LexicalModel` gives (lexical vectors, top words).

  captioner = Captioner.from_workdir("runs/demo/captioning")
  captioner.caption_motions([features])                 # raw (T, F) → ["a person walks ..."]
  captioner.caption_motions([features], beam_size=1)    # greedy
"""
from __future__ import annotations

import functools
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import humanml3d
from input_pipeline.pipeline import EvalBatches
from lexmo_jax.inference import LexicalModel, WorkdirError, motion_outputs, text_outputs
from lexmo_jax.models import caption_search, lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.train import data as data_lib


class Captioner(LexicalModel):
  """The motion encoder, its lexical head and the caption decoder of a captioning workdir."""

  @classmethod
  def from_workdir(cls, workdir: str | pathlib.Path, require_lexical: bool = True):
    captioner = super().from_workdir(workdir, require_lexical=False)
    if captioner.phase != "captioning":
      raise WorkdirError(
          f"{workdir} is a {captioner.phase!r} workdir, not a captioner: train one with "
          f"python -m lexmo_jax.main --config=configs/captioning.py:runlocal "
          f"--workdir=DIR --config.init_from={workdir}")
    path = pathlib.Path(workdir) / data_lib.CAPTION_VOCABULARY_FILE
    try:
      vocabulary = np.load(path)
    except (OSError, ValueError) as e:
      raise WorkdirError(f"{path} (the pieces the captioner writes) cannot be read: "
                         f"{e}") from None
    if (vocabulary.ndim != 1 or not vocabulary.size or vocabulary.min() < 0
        or vocabulary.max() >= captioner.tokenizer.vocab_size):
      raise WorkdirError(f"{path} is not a list of word-piece ids of the vocabulary")
    captioner.output_vocabulary = jnp.asarray(vocabulary, jnp.int32)
    return captioner

  def decoding(self, beam_size: int | None = None, length_penalty: float | None = None,
               max_length: int | None = None) -> tuple[int, float, int]:
    """(beam size, length penalty, max length): the arguments, else the config's."""
    c = self.config.caption
    beam = c.beam_size if beam_size is None else beam_size
    alpha = c.length_penalty if length_penalty is None else length_penalty
    length = c.max_length if max_length is None else max_length
    if beam < 1:
      raise ValueError(f"the beam size must be at least 1, got {beam}")
    if alpha < 0:
      raise ValueError(f"the length penalty must be non-negative, got {alpha}")
    if not 2 <= length <= self.config.text.max_position:
      raise ValueError(f"the caption length limit must lie in [2, "
                       f"{self.config.text.max_position}] word pieces, got {length}")
    return beam, alpha, length

  @functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8))
  def _caption_batch(self, params, motion, motion_mask, beam_size: int, alpha: float,
                     max_length: int, min_length: int, rerank_weight: float):
    tok = self.tokenizer
    memory, memory_mask = self.model.apply({"params": params}, motion, motion_mask,
                                           self.vocab_mask, method=LexMo.caption_memory)
    if beam_size > 1:
      memory = jnp.repeat(memory, beam_size, axis=0)
      memory_mask = jnp.repeat(memory_mask, beam_size, axis=0)

    # Special tokens are never written; [SEP] (the end) only after min_length word pieces.
    banned_v = np.zeros(tok.vocab_size, bool)
    banned_v[tok.special_ids] = True
    banned_v[tok.sep_id] = False

    vocabulary_k = self.output_vocabulary

    def next_log_probs(seqs_nl, t):
      # The decoder is causal: pieces after t (padding) do not change position t.
      logits_nk = self.model.apply({"params": params}, memory, memory_mask, seqs_nl,
                                   jnp.ones_like(seqs_nl), position=t, vocab_ids_k=vocabulary_k,
                                   method=LexMo.caption_logits).astype(jnp.float32)
      # Pieces outside the output vocabulary are never written.
      logits = jnp.full((seqs_nl.shape[0], tok.vocab_size), -jnp.inf).at[:, vocabulary_k].set(
          logits_nk)
      too_short = (jnp.arange(tok.vocab_size) == tok.sep_id) & (t < min_length)
      logits = jnp.where(banned_v | too_short, -jnp.inf, logits)
      return jax.nn.log_softmax(logits, axis=-1)

    args = (next_log_probs, motion.shape[0], max_length, tok.cls_id, tok.sep_id, tok.pad_id)
    if beam_size == 1:
      return caption_search.greedy_search(*args)[0]
    seqs_bkl, score_bk = caption_search.beam_search_hypotheses(*args, beam_size, alpha)
    if rerank_weight:
      score_bk = score_bk + rerank_weight * self._agreement(params, seqs_bkl, motion,
                                                            motion_mask)
    best = jnp.argmax(score_bk, axis=1)
    return jnp.take_along_axis(seqs_bkl, best[:, None, None], axis=1)[:, 0]

  def _agreement(self, params, seqs_bkl, motion, motion_mask):
    """(B, K) cosine between each hypothesis's lexical vector (the text encoder's) and its
    motion's: how much the pre-trained lexical space agrees with a caption."""
    b, k, length = seqs_bkl.shape
    ids = seqs_bkl.reshape(b * k, length)
    z_text, _ = self.model.apply({"params": params}, ids, (ids != self.tokenizer.pad_id).astype(
        jnp.int32), method=text_outputs)
    z_motion, _ = self.model.apply({"params": params}, motion, motion_mask,
                                   method=motion_outputs)
    text = lexical.l2_normalise(lexical.lexical_vector(z_text, self.vocab_mask))
    moving = lexical.l2_normalise(lexical.lexical_vector(z_motion, self.vocab_mask))
    return jnp.einsum("bkv,bv->bk", text.reshape(b, k, -1), moving)

  def detokenize(self, ids: np.ndarray) -> str:
    """Word pieces after [CLS] up to [SEP] → text (pieces joined, special tokens dropped)."""
    ids = [int(i) for i in ids[1:]]
    if self.tokenizer.sep_id in ids:
      ids = ids[:ids.index(self.tokenizer.sep_id)]
    return self.tokenizer.decode(ids)

  def caption_eval_batches(self, batches: EvalBatches, beam_size: int | None = None,
                           length_penalty: float | None = None,
                           max_length: int | None = None) -> list[str]:
    """One caption per item of an evaluation stream, in order."""
    beam, alpha, length = self.decoding(beam_size, length_penalty, max_length)
    out = []
    for k in range(len(batches)):
      b = batches.batch(k)
      seqs = np.asarray(self._caption_batch(
          self.params, b["motion"], b["motion_mask"], beam, float(alpha), length,
          self.config.caption.get("min_length", 0),
          float(self.config.caption.get("rerank_weight", 0.0))))
      out.extend(self.detokenize(s) for s in seqs[b["valid"]])
    return out

  def caption_motions(self, motions: Sequence[np.ndarray], beam_size: int | None = None,
                      length_penalty: float | None = None, max_length: int | None = None,
                      batch_size: int = 0) -> list[str]:
    """Captions of raw (T, F) feature arrays (normalised here)."""
    pairs = [humanml3d.MotionTextPair(item_id=str(i), motion_id=str(i),
                                      motion=np.asarray(m, np.float32), captions=("",))
             for i, m in enumerate(motions)]
    mean, std = self.normalisation()
    return self.caption_eval_batches(self.eval_batches(pairs, mean, std, batch_size),
                                     beam_size, length_penalty, max_length)
