"""What a run reads: the tokenizer, the training split and the caption statistics."""
from __future__ import annotations

import dataclasses
import logging
import os
import pathlib

import jax
import numpy as np

from input_pipeline import humanml3d, tokenizer as tokenizer_lib
from input_pipeline.pipeline import TrainData
from input_pipeline.skips import SkipReport
from lexmo_jax.phases import informativeness, masking

logger = logging.getLogger("lexmo_jax.data")


def tokenizer_path(config) -> str:
  """The tokenizer's folder: config.text.tokenizer, else the text init folder, else packaged."""
  return config.text.tokenizer or config.text.init or ""


def load_tokenizer(config) -> tokenizer_lib.Tokenizer:
  tok = tokenizer_lib.load_tokenizer(tokenizer_path(config))
  # T5 checkpoints pad their embedding rows past the vocabulary (32128 rows, 32100 pieces).
  if tok.vocab_size > config.text.vocab_size or (
      tok.vocab_size < config.text.vocab_size and config.text.model_type != "t5"):
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
  # The statistics first: a folder of the other dataset kind is named in one line here,
  # before every one of its motions would be skipped for its width.
  mean, std = humanml3d.load_normalisation(d.root, d.kind)
  pairs, report = humanml3d.load_split(d.root, split, d.kind, min_length=d.min_motion_length)
  if report.total:
    logger.warning("%s split %r: %s", d.root, split, report.summary())
  return SplitData(pairs, mean, std, report)


def train_stream(config, split_data: SplitData, tok, process_index: int,
                 process_count: int) -> TrainData:
  d = config.data
  return TrainData(split_data.pairs, split_data.mean, split_data.std, tok,
                   global_batch_size=d.global_batch_size, max_motion_length=d.max_motion_length,
                   max_text_length=d.max_text_length, seed=config.seed,
                   process_index=process_index, process_count=process_count)


WORD_WEIGHTINGS = ("agreement", "idf", "uniform")


def word_weights(config, tok, split_data: SplitData, workdir: pathlib.Path) -> np.ndarray:
  """(V,) informativeness of every token over the training captions, cached in the workdir.

  config.loss.word_weighting: 'agreement' (how much more often a word comes back in another
  caption of the same motion than in captions at large), 'idf', or 'uniform'; then, when
  config.loss.content_pos names POS tags, words the captions' tags call function words and
  punctuation weigh 0 (`lexmo_jax.phases.informativeness`). Special tokens weigh 0.
  """
  weighting = config.loss.word_weighting
  if weighting == "uniform":
    weights = np.ones(tok.vocab_size, np.float32)
    weights[tok.special_ids] = 0.0
    return weights
  if weighting not in WORD_WEIGHTINGS:
    raise ValueError(f"config.loss.word_weighting={weighting!r}: expected one of "
                     f"{', '.join(WORD_WEIGHTINGS)}")
  gated = bool(config.loss.get("content_pos"))
  cache = workdir / f"word_weights_{weighting}{'_content' if gated else ''}.npy"
  if cache.exists():
    weights = np.load(cache)
    if weights.shape == (tok.vocab_size,):
      return weights
  captions = humanml3d.all_captions(split_data.pairs)
  tokens = tok.encode(captions, config.data.max_text_length)
  if weighting == "idf":
    weights = informativeness.idf_word_weights(tokens["input_ids"], tokens["attention_mask"],
                                               tok.vocab_size, tok.special_ids)
  else:
    groups = np.array([i for i, p in enumerate(split_data.pairs) for _ in p.captions])
    weights = informativeness.agreement_word_weights(
        tokens["input_ids"], tokens["attention_mask"], groups, tok.vocab_size, tok.special_ids)
    if not np.any(weights > 0):
      raise ValueError(
          f"config.loss.word_weighting='agreement' needs motions with two or more captions; "
          f"no word of the {len(captions)} training captions of {config.data.root} comes back "
          "in another caption of its motion more often than at large: use "
          "--config.loss.word_weighting=idf")
  if gated:
    weights = weights * content_gate(config, tok, split_data)
  # Every process of a multi-host run writes it: each renames a whole file into place, so
  # none ever reads a half-written one.
  partial = cache.with_name(f"{cache.stem}.{os.getpid()}.partial.npy")
  np.save(partial, weights)
  os.replace(partial, cache)
  return weights


def content_gate(config, tok, split_data: SplitData) -> np.ndarray:
  """(V,) 0/1: 0 for punctuation and words the captions' POS tags call function words."""
  # The tags live in the caption files; TFRecord shards do not carry them, so they are read
  # from the data root whenever it is there, shards or not.
  tagged = humanml3d.tagged_captions(config.data.root, [p.motion_id for p in split_data.pairs])
  counts = informativeness.pos_counts(tagged)
  if not counts:
    logger.warning("no POS tags in the caption files of %s: function words are told from "
                   "content words by their statistics alone", config.data.tfds_dir or
                   config.data.root)
  return informativeness.content_gate(tok.vocab, counts, tuple(config.loss.content_pos))


CAPTION_VOCABULARY_FILE = "caption_vocabulary.npy"
OUTPUT_VOCABULARIES = ("captions", "all")


def caption_vocabulary(config, tok, split_data: SplitData, workdir: pathlib.Path) -> np.ndarray:
  """(K,) int32, sorted: the word pieces a captioner may write, saved in the workdir (its
  inference reads them there).

  config.caption.output_vocabulary: 'captions' = the pieces of the training captions and
  [SEP] (TM2T also writes from the training captions' vocabulary; the output softmax is then
  K wide, not V); 'all' = the whole vocabulary.
  """
  choice = config.caption.output_vocabulary
  if choice not in OUTPUT_VOCABULARIES:
    raise ValueError(f"config.caption.output_vocabulary={choice!r}: expected one of "
                     f"{', '.join(OUTPUT_VOCABULARIES)}")
  if choice == "all":
    ids = np.arange(tok.vocab_size, dtype=np.int32)
  else:
    tokens = tok.encode(humanml3d.all_captions(split_data.pairs), config.data.max_text_length)
    used = np.unique(tokens["input_ids"][tokens["attention_mask"] > 0])
    ids = np.union1d(used[~np.isin(used, tok.special_ids)], [tok.sep_id]).astype(np.int32)
  path = workdir / CAPTION_VOCABULARY_FILE
  partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npy")
  np.save(partial, ids)
  os.replace(partial, path)
  return ids


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
  if phase.needs_caption_vocabulary:
    constants["caption_vocabulary"] = caption_vocabulary(config, tok, split_data, workdir)
  if phase.constants is not None:
    constants.update(phase.constants(config, tok, split_data, workdir))
  if phase.needs_text_statistics:
    constants["word_weights"] = word_weights(config, tok, split_data, workdir)
    if jax.process_index() == 0:
      log_masking(config, tok, split_data, constants)
  return constants


MASKING_REPORT_WORDS = 12


def log_masking(config, tok, split_data: SplitData, constants) -> dict[str, float]:
  """Logs the words the phase's caption masking picks most and least often.

  Masking should favour the words that describe motions ("clap", "counterclockwise") over
  function words ("a", "the", "person"). Returns {word: masking rate} of the logged words.
  """
  loss = config.loss
  rate = loss.get("encoder_mask_rate", loss.get("decoder_mask_rate"))
  if rate is None:  # the phase masks no caption
    return {}
  captions = humanml3d.all_captions(split_data.pairs)
  tokens = tok.encode(captions, config.data.max_text_length)
  masked, seen = masking.masking_rates(
      tokens["input_ids"], tokens["attention_mask"], rate=rate,
      is_continuation_v=constants["is_continuation"], word_weight_v=constants["word_weights"],
      strength=loss.weighting_strength, seed=config.seed)
  # Words seen in at least 1% of the captions (at least 5), so rates are not noise.
  common = np.flatnonzero((seen >= max(5, len(captions) // 100)) & tok.word_mask
                          & ~np.asarray(tok.is_continuation, bool))
  if not common.size:
    return {}
  rates = masked[common] / seen[common]
  order = common[np.argsort(-rates, kind="stable")]
  most, least = order[:MASKING_REPORT_WORDS], order[::-1][:MASKING_REPORT_WORDS]

  def fmt(ids):
    return ", ".join(f"{tok.vocab[i]} {masked[i] / seen[i]:.2f}" for i in ids)
  logger.info("%s masks %.0f%% of the informative words, favouring the most informative "
              "(word_weighting=%s; words of weight 0 are never masked); most "
              "often masked: %s; least often: %s", config.phase, 100 * rate,
              loss.word_weighting, fmt(most), fmt(least))
  return {tok.vocab[i]: float(masked[i] / seen[i]) for i in np.concatenate([most, least])}
