"""The pre-trained text encoder as the text condition of a text-to-motion generator.

  from lexmo_jax.conditioning import TextConditioner
  conditioner = TextConditioner.from_workdir("runs/demo/generation/conditioning")
  # or TextConditioner.from_exported(folder) on what `python -m lexmo_jax.export` wrote
  features = conditioner.encode(["a person jumps twice", "someone walks in a circle"])
  features.projected   # (2, 512): what replaces CLIP ViT-B/32's encode_text in a generator

`encode` returns, per caption (`TextFeatures`):
  pooled    (B, D)     mean of the token states over the caption's tokens ([CLS], [SEP] included)
  tokens    (B, L, D)  the token states (L = config.data.max_text_length), zero on padding
  mask      (B, L)     True on real tokens
  lexical   (B, V)     the lexical vector (SPLADE-max over the vocabulary logits)
  projected (B, 512)   L2-normalised projection of `pooled` to CLIP's width; only from a
                       workdir of the conditioning task (`configs/conditioning.py`), which
                       trains it by InfoNCE against the motion encoder on the training pairs
Generators that read one vector (T2M, T2M-GPT, MoMask, MDM) take `projected`; those that
cross-attend to words take `tokens` and `mask`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lexmo_jax.inference import LexicalModel, padded_token_batches, shorten
from lexmo_jax.models import hf_checkpoint, lexical
from lexmo_jax.models.build import model_config
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig

logger = logging.getLogger("lexmo_jax.conditioning")

# Captions per compiled batch; a progress bar shows from this many batches on.
BATCH_SIZE = 64
_PROGRESS_FROM_BATCHES = 8
# Cut captions named one by one up to this many; beyond, one line counts them.
_CUTS_LISTED = 3


def check_texts(texts: Sequence[str], tokenizer, max_length: int) -> None:
  """Refuses an empty caption or one without a known word; warns on stderr, naming the
  ignored words, when a caption is longer than the text limit (`max_length` word pieces,
  [CLS] and [SEP] included).

  Raises:
    ValueError: naming the caption (its position and text).
  """
  cuts = []
  for k, text in enumerate(texts):
    if not isinstance(text, str) or not text.strip():
      raise ValueError(f"text {k} is empty: give a caption such as \"a person jumps\"")
    if not tokenizer.known_words(text):
      raise ValueError(f"text {k} \"{shorten(text)}\" holds no word of the vocabulary")
    kept, cut = tokenizer.cut_off(text, max_length)
    if cut:
      cuts.append((k, kept, cut))
  limit = f"the text limit, max_text_length = {max_length}"
  if len(cuts) > _CUTS_LISTED:
    k, kept, cut = cuts[0]
    print(f"warning: {len(cuts)} of {len(texts)} texts were cut ({limit}); text {k} kept "
          f"its first {kept} word pieces and ignored \"{shorten(cut)}\"", file=sys.stderr)
    return
  for k, kept, cut in cuts:
    print(f"warning: text {k} was cut to its first {kept} word pieces ({limit}); ignored: "
          f"\"{shorten(cut)}\"", file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class TextFeatures:
  """Text features of B captions (numpy, float32 but `mask`); see the module docstring."""
  pooled: np.ndarray
  tokens: np.ndarray
  mask: np.ndarray
  lexical: np.ndarray
  projected: np.ndarray | None


def _features(module: TextEncoder, params, input_ids, attention_mask, vocab_mask_v,
              projection, chunk_size: int):
  h_bld = module.apply({"params": params}, input_ids, attention_mask).astype(jnp.float32)
  mask_bl = attention_mask > 0
  weights_bl1 = mask_bl[..., None].astype(jnp.float32)
  pooled_bd = (h_bld * weights_bl1).sum(1) / jnp.maximum(weights_bl1.sum(1), 1.0)
  z_bv = module.apply({"params": params}, h_bld.astype(module.config.dtype), attention_mask,
                      chunk_size, method=TextEncoder.max_logits)
  out = {"pooled": pooled_bd, "tokens": jnp.where(mask_bl[..., None], h_bld, 0.0),
         "mask": mask_bl, "lexical": lexical.lexical_vector(z_bv, vocab_mask_v)}
  if projection is not None:
    p_bc = pooled_bd @ projection["kernel"] + projection["bias"]
    out["projected"] = p_bc / jnp.linalg.norm(p_bc, axis=-1, keepdims=True).clip(1e-6)
  return out


class TextConditioner:
  """A trained text encoder (and, from the conditioning task, its 512-d projection).

  Attributes:
    tokenizer: its Tokenizer; max_length: word pieces per caption ([CLS], [SEP] included).
    source: where it was loaded from; phase: the workdir's phase ('exported' for a folder).
  """

  def __init__(self, text_config: TextEncoderConfig, text_params, tokenizer, vocab_mask_v,
               max_length: int, projection=None, chunk_size: int = -1, source: str = "",
               phase: str = ""):
    self.module = TextEncoder(text_config)
    self.text_params = text_params
    self.tokenizer = tokenizer
    self.vocab_mask = jnp.asarray(vocab_mask_v, bool)
    self.max_length = max_length
    self.projection = projection
    self.chunk_size = chunk_size
    self.source = source
    self.phase = phase

  @classmethod
  def from_workdir(cls, workdir) -> TextConditioner:
    """From any finished workdir with a text encoder (a conditioning workdir adds `projected`).

    Raises:
      lexmo_jax.inference.WorkdirError: not a workdir with a finished phase.
    """
    model = LexicalModel.from_workdir(workdir, require_lexical=False)
    projection = model.params.get("text_condition", {}).get("projection")
    return cls(model_config(model.config).text, model.params["text"], model.tokenizer,
               model.vocab_mask, model.config.data.max_text_length, projection,
               model.config.model.get("vocab_chunk_size", -1), str(workdir), model.phase)

  @classmethod
  def from_exported(cls, folder) -> TextConditioner:
    """From a folder `python -m lexmo_jax.export` wrote (config.json, model.safetensors,
    tokenizer, lexical_pooling.json, and condition_projection.safetensors if trained).

    Raises:
      FileNotFoundError, ValueError: naming the file that is missing or unreadable.
    """
    folder = pathlib.Path(folder)
    pooling_file = folder / "lexical_pooling.json"
    if not pooling_file.is_file():
      raise FileNotFoundError(f"{pooling_file} is missing: {folder} is not a folder that "
                              "`python -m lexmo_jax.export` wrote")
    try:
      pooling = json.loads(pooling_file.read_text())
      vocab_mask = np.ones(int(pooling["vocab_size"]), bool)
      vocab_mask[np.asarray(pooling["excluded_ids"], np.int64)] = False
      max_length = int(pooling["max_text_length"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError,
            IndexError) as e:
      raise ValueError(f"{pooling_file}: not an export's pooling record ({e})") from None
    encoder = hf_checkpoint.from_pretrained(folder)
    projection = None
    projection_file = folder / "condition_projection.safetensors"
    if projection_file.is_file():
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
      tensors = load_file(str(projection_file))
      if set(tensors) != {"weight", "bias"}:
        raise ValueError(f"{projection_file}: expected tensors weight and bias, found "
                         f"{sorted(tensors)}")
      projection = {"kernel": jnp.asarray(tensors["weight"].T), "bias": jnp.asarray(
          tensors["bias"])}
    return cls(encoder.config, encoder.params, encoder.tokenizer, vocab_mask, max_length,
               projection, source=str(folder), phase="exported")

  @property
  def has_projection(self) -> bool:
    return self.projection is not None

  @property
  def width(self) -> int:
    """D, the text encoder's width."""
    return self.module.config.hidden_size

  @property
  def projection_dim(self) -> int:
    """The projected width (512), or 0 without a projection."""
    return int(self.projection["kernel"].shape[1]) if self.has_projection else 0

  def __hash__(self):
    return id(self)

  @functools.partial(jax.jit, static_argnums=0)
  def _batch(self, params, projection, input_ids, attention_mask):
    return _features(self.module, params, input_ids, attention_mask, self.vocab_mask,
                     projection, self.chunk_size)

  def check_texts(self, texts: Sequence[str]) -> None:
    """`check_texts` with this encoder's tokenizer and text limit."""
    check_texts(texts, self.tokenizer, self.max_length)

  def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE,
             progress: bool | None = None) -> TextFeatures:
    """Text features of captions, computed `batch_size` at a time by one compiled program.

    Args:
      texts: B captions.
      batch_size: captions per compiled batch (the last one is padded).
      progress: show a progress bar; None = from 8 batches on.

    Raises:
      ValueError: an empty caption or one with no known word (`check_texts`).
    """
    texts = list(texts)
    self.check_texts(texts)
    tokens = self.tokenizer.encode(texts, self.max_length)
    starts = range(0, len(texts), batch_size)
    if progress is None:
      progress = len(starts) >= _PROGRESS_FROM_BATCHES
    if progress:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      starts = tqdm(starts, desc="encoding captions", unit="batch", file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 15.0)
    parts: dict[str, list[np.ndarray]] = {}
    for ids, am, n in padded_token_batches(tokens, starts, batch_size):
      out = jax.device_get(self._batch(self.text_params, self.projection, ids, am))
      for key, value in out.items():
        parts.setdefault(key, []).append(np.asarray(value)[:n])
    if not parts:
      raise ValueError("no texts to encode")
    joined = {key: np.concatenate(value) for key, value in parts.items()}
    return TextFeatures(pooled=joined["pooled"], tokens=joined["tokens"], mask=joined["mask"],
                        lexical=joined["lexical"], projected=joined.get("projected"))

  def encode_projected(self, texts: Sequence[str], **kwargs) -> np.ndarray:
    """(B, 512) projected features, what a generator reads in place of CLIP's.

    Raises:
      ValueError: the workdir has no projection (not a conditioning workdir).
    """
    if not self.has_projection:
      raise ValueError(f"{self.source} ({self.phase}) has no projection to a generator's "
                       "width: train one with configs/conditioning.py "
                       "(--config.init_from=<its workdir>)")
    return self.encode(texts, **kwargs).projected


# What conditions a generator: the lexical text encoder's projection (a conditioning workdir)
# or a sentence-transformers encoder (the packaged all-MiniLM-L6-v2 by default), which stands
# in for CLIP as the offline baseline.
CONDITION_SOURCES = ("lexical", "sentence")


@dataclasses.dataclass(frozen=True)
class ConditionEncoder:
  """Captions → (N, C) float32 generator conditions.

  Attributes:
    source: 'lexical' or 'sentence'.
    path: the conditioning workdir, or the sentence-transformers folder ('' = packaged).
    label: how tables name it.
  """
  source: str
  path: str
  label: str
  _encode: object = dataclasses.field(repr=False, compare=False)

  def __call__(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
    return np.asarray(self._encode(list(texts), progress), np.float32)


def projection_problem(path: str) -> str | None:
  """Why `path` cannot give the lexical condition (None when it can), read from its files
  alone: an export needs condition_projection.safetensors, a workdir must be a finished
  conditioning workdir. Nothing is loaded, so a run refuses a wrong path at start."""
  folder = pathlib.Path(path)
  if (folder / "lexical_pooling.json").is_file():
    if not (folder / "condition_projection.safetensors").is_file():
      return (f"{path} is an export without condition_projection.safetensors: export a "
              "conditioning workdir (configs/conditioning.py)")
    return None
  from lexmo_jax.inference import WorkdirError, read_workdir  # pylint: disable=g-import-not-at-top
  try:
    _, ckpt, _, phase = read_workdir(path)
  except (WorkdirError, FileNotFoundError, ValueError) as e:
    return f"{path} is neither an export nor a finished workdir ({e})"
  ckpt.close()
  if phase != "conditioning":
    return (f"{path} is a {phase!r} workdir without a projection to the generator's width: "
            f"train one with configs/conditioning.py --config.init_from={path}")
  return None


def condition_encoder(source: str, path: str) -> ConditionEncoder:
  """The encoder of generator conditions that `generator.condition` and
  `generator.text_encoder` name.

  Raises:
    ValueError: an unknown source, or a lexical workdir without a projection.
    lexmo_jax.inference.WorkdirError, FileNotFoundError: the path cannot be loaded.
  """
  if source == "lexical":
    if not path:
      raise ValueError("generator.text_encoder must name a conditioning workdir (or its "
                       "export) "
                       "(configs/conditioning.py) when generator.condition='lexical'")
    conditioner = (TextConditioner.from_exported(path)
                   if (pathlib.Path(path) / "lexical_pooling.json").is_file()
                   else TextConditioner.from_workdir(path))
    if not conditioner.has_projection:
      raise ValueError(f"generator.text_encoder={path} is a {conditioner.phase!r} "
                       "workdir without a projection to the generator's width: train one "
                       f"with configs/conditioning.py --config.init_from={path}")
    return ConditionEncoder(
        "lexical", path, "lexical text encoder (512-d projection)",
        lambda texts, progress: conditioner.encode_projected(texts, progress=progress))
  if source == "sentence":
    from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
    folder = path or sentence_encoder.default_model_path()
    encoder = sentence_encoder.SentenceEncoder.from_pretrained(folder)
    name = pathlib.Path(path).name if path else "all-MiniLM-L6-v2"

    def encode(texts, progress):
      del progress
      check_texts(texts, encoder.encoder.tokenizer, encoder.max_length)
      return encoder.encode(texts)
    return ConditionEncoder("sentence", str(path), f"sentence encoder ({name}, "
                            f"{encoder.dim}-d)", encode)
  raise ValueError(f"generator.condition={source!r}: expected one of "
                   f"{', '.join(CONDITION_SOURCES)}")
