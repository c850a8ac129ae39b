"""What a run reads: the tokenizer, the training split and the caption statistics."""
from __future__ import annotations

import dataclasses
import logging
import os
import pathlib

import numpy as np

from input_pipeline import humanml3d, tokenizer as tokenizer_lib
from input_pipeline.pipeline import TrainData
from input_pipeline.skips import SkipReport
from lexmo_jax.phases import masking

logger = logging.getLogger("lexmo_jax.data")


def tokenizer_path(config) -> str:
  """The tokenizer's folder: config.text.tokenizer, else the text init folder, else packaged."""
  return config.text.tokenizer or config.text.init or ""


def load_tokenizer(config) -> tokenizer_lib.Tokenizer:
  tok = tokenizer_lib.load_tokenizer(tokenizer_path(config))
  if tok.vocab_size != config.text.vocab_size:
    raise ValueError(f"config.text.vocab_size={config.text.vocab_size} but the tokenizer "
                     f"{tok.source} has {tok.vocab_size} entries")
  return tok


@dataclasses.dataclass
class SplitData:
  pairs: list
  mean: np.ndarray
  std: np.ndarray
  report: object


def load_split(config, split: str) -> SplitData:
  d = config.data
  if d.tfds_dir:
    from input_pipeline import tfds_builder  # pylint: disable=g-import-not-at-top
    pairs, mean, std = tfds_builder.load_tfds_split(d.tfds_dir, split, d.kind)
    return SplitData(pairs, mean, std, SkipReport(source=d.tfds_dir))
  pairs, report = humanml3d.load_split(d.root, split, d.kind, min_length=d.min_motion_length)
  if report.total:
    logger.warning("%s split %r: %s", d.root, split, report.summary())
  mean, std = humanml3d.load_normalisation(d.root, d.kind)
  return SplitData(pairs, mean, std, report)


def train_stream(config, split_data: SplitData, tok, process_index: int,
                 process_count: int) -> TrainData:
  d = config.data
  return TrainData(split_data.pairs, split_data.mean, split_data.std, tok,
                   global_batch_size=d.global_batch_size, max_motion_length=d.max_motion_length,
                   max_text_length=d.max_text_length, seed=config.seed,
                   process_index=process_index, process_count=process_count)


def word_weights(config, tok, split_data: SplitData, workdir: pathlib.Path) -> np.ndarray:
  """(V,) masking weight of every token over the training captions, cached in the workdir."""
  weighting = config.loss.word_weighting
  if weighting == "uniform":
    weights = np.ones(tok.vocab_size, np.float32)
    weights[tok.special_ids] = 0.0
    return weights
  if weighting != "idf":
    raise ValueError(f"config.loss.word_weighting={weighting!r}: expected 'idf' or 'uniform'")
  cache = workdir / "word_weights_idf.npy"
  if cache.exists():
    weights = np.load(cache)
    if weights.shape == (tok.vocab_size,):
      return weights
  captions = humanml3d.all_captions(split_data.pairs)
  tokens = tok.encode(captions, config.data.max_text_length)
  weights = masking.idf_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                     tok.vocab_size, tok.special_ids)
  # Every process of a multi-host run writes it: each renames a whole file into place, so
  # none ever reads a half-written one.
  partial = cache.with_name(f"{cache.stem}.{os.getpid()}.partial.npy")
  np.save(partial, weights)
  os.replace(partial, cache)
  return weights


def lexical_vocab_mask(config, tok) -> np.ndarray:
  """(V,) bool: the vocabulary entries a lexical vector may weigh."""
  if config.model.exclude_special_tokens:
    return tok.word_mask.copy()
  return np.ones(tok.vocab_size, bool)


def phase_constants(config, phase, tok, split_data: SplitData,
                    workdir: pathlib.Path) -> dict[str, np.ndarray]:
  """Arrays a phase's loss reads besides the batch (replicated on every device)."""
  constants = {
      "lexical_vocab_mask": lexical_vocab_mask(config, tok),
      "is_continuation": np.asarray(tok.is_continuation, bool),
      "mask_id": np.int32(tok.mask_id),
  }
  if phase.needs_text_statistics:
    constants["word_weights"] = word_weights(config, tok, split_data, workdir)
  return constants
