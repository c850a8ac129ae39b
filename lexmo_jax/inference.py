"""A trained workdir's encoders: captions and motions → lexical vectors over the vocabulary.

  model = LexicalModel.from_workdir("runs/demo/lexcmlp")
  v_text = model.encode_texts(["a person jumps twice"])        # (1, V), ≥ 0
  v_motion = model.encode_motions([features])                   # raw (T, F) features
  model.description(v_motion[0], 10)                            # [("walks/walking", 1.19), ...]
  features = read_motion_file("clip.npy", model.kind)  # (T, F) features or (T, J, 3) joints
"""
from __future__ import annotations

import functools
import io
import json
import pathlib
import sys
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import dataset_kinds, humanml3d
from input_pipeline.motion import features as motion_features
from input_pipeline.pipeline import EvalBatches
from lexmo_jax import description as description_lib
from lexmo_jax.models import lexical
from lexmo_jax.models.build import build_model, dummy_batch
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.train import data as data_lib
from lexmo_jax.train.handoff import HandoffError, read_workdir_record

# Phases after which both sides have a lexical head worth reading (captioning keeps them).
LEXICAL_PHASES = ("lexmmm", "lexcmlp", "captioning")


class WorkdirError(ValueError):
  pass


class MotionFileError(ValueError):
  """A motion feature file that cannot be encoded; the message names the file."""


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  path = pathlib.Path(workdir) / "config.json"
  if not path.exists():
    raise WorkdirError(f"{workdir} is not a training workdir: {path} is missing")
  try:
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WorkdirError(f"{path} is not valid JSON ({e})") from None
  if config.get("data") is not None and config.data.get("root"):
    config.data.root = locate_relative(config.data.root, workdir)
  return config


def locate_relative(path: str, workdir: str | pathlib.Path) -> str:
  """A relative path recorded in a workdir's config (the dataset folder), as seen from here.

  Training records paths as they were given, relative to the folder it started in. Read from
  another folder, such a path is looked for in the current folder first, then in the folder
  holding the workdir and each folder above it (runs/demo/lexcmlp was trained from the
  folder two levels above runs/). Absolute paths, and paths found nowhere, are returned as
  they are (the reader's own error then names them).
  """
  candidate = pathlib.Path(path)
  if candidate.is_absolute() or candidate.exists():
    return path
  for folder in pathlib.Path(workdir).absolute().parents:
    if (folder / candidate).exists():
      return str(folder / candidate)
  return path


def read_motion_file(path: str | pathlib.Path, kind: str = "humanml3d") -> np.ndarray:
  """A motion file, checked: raw (T, F) features (HumanML3D's new_joint_vecs layout) or
  (T, J, 3) joint positions (y up; turned into features by `joints_to_features`).

  Returns:
    (T, F) float32 features (T - 1 frames for joint positions).
  Raises:
    MotionFileError: the file is missing, not a .npy array, not (T, F) numbers nor (T, J, 3)
      joint positions for this dataset kind, empty, or holds NaN/Inf.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise MotionFileError(f"motion file {path} does not exist")
  try:
    data = path.read_bytes()
  except OSError as e:
    raise MotionFileError(f"motion file {path} cannot be read ({e.strerror})") from None
  return motion_from_npy(data, str(path), kind)


def motion_from_npy(data: bytes, name: str, kind: str = "humanml3d") -> np.ndarray:
  """As `read_motion_file`, for the bytes of a .npy file (an upload) called `name`."""
  body = dataset_kinds.get_kind(kind)
  width = body.feature_dim
  magic = data[:len(humanml3d.NPY_MAGIC)]
  if magic != humanml3d.NPY_MAGIC:
    raise MotionFileError(f"motion file {name} is not a .npy array file ("
                          + ("it is empty)" if not magic else f"it starts with {magic!r})"))
  try:
    motion = np.load(io.BytesIO(data), allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise MotionFileError(f"motion file {name} is not a readable .npy array ({e})") from None
  numeric = (np.issubdtype(motion.dtype, np.number)
             and not np.issubdtype(motion.dtype, np.complexfloating))
  is_joints = motion.ndim == 3 and motion.shape[1:] == (body.num_joints, 3)
  if not numeric or not (is_joints or (motion.ndim == 2 and motion.shape[1] == width)):
    raise MotionFileError(f"motion file {name} has shape {motion.shape} and dtype "
                          f"{motion.dtype}; expected raw (T, {width}) {kind} features or "
                          f"(T, {body.num_joints}, 3) joint positions")
  if motion.shape[0] == 0:
    raise MotionFileError(f"motion file {name} has no frames")
  if is_joints:
    try:
      return motion_features.joints_to_features(motion, kind, name=f"motion file {name}")
    except ValueError as e:
      raise MotionFileError(str(e)) from None
  motion = motion.astype(np.float32)
  if not np.all(np.isfinite(motion)):
    bad = np.flatnonzero(~np.all(np.isfinite(motion), axis=1))
    raise MotionFileError(f"motion file {name} has NaN or Inf values in {bad.size} frames "
                          f"(first: frame {bad[0]})")
  return motion


def text_outputs(module: LexMo, input_ids, attention_mask):
  """Logits max-pooled over the valid tokens (B, V) and masked mean of the token states
  (B, D)."""
  h_bld = module.text_states(input_ids, attention_mask)
  mask_bl1 = attention_mask[..., None].astype(jnp.float32)
  pooled_bd = (h_bld.astype(jnp.float32) * mask_bl1).sum(1) / jnp.maximum(mask_bl1.sum(1), 1.0)
  return module.text.max_logits(h_bld, attention_mask, module.config.vocab_chunk_size), pooled_bd


def motion_outputs(module: LexMo, motion, motion_mask):
  """Logits max-pooled over the valid tokens (B, V) and the [CLS] state (B, D)."""
  h_bnd, mask_bn = module.motion_states(motion, motion_mask)
  z_bv = module.motion_head(h_bnd, None, mask_bn, module.config.vocab_chunk_size)
  return z_bv, h_bnd[:, 0].astype(jnp.float32)



def shorten(text: str, limit: int = 120) -> str:
  """The text on one line, cut to `limit` characters with an ellipsis."""
  text = " ".join(text.split())
  return text if len(text) <= limit else text[:limit - 1] + "…"


def check_query(tokenizer, text: str, max_length: int, flag: str = "--query") -> None:
  """Refuses a query without a single known word; warns (stderr) when it is cut.

  A query is encoded like a caption: at most max_length - 2 word pieces count, and
  pieces outside the vocabulary ([UNK]) or bare punctuation say nothing.

  Raises:
    ValueError: the query holds only unknown word pieces or punctuation.
  """
  if not tokenizer.known_words(text):
    raise ValueError(f"{flag} \"{shorten(text)}\" holds no word of the vocabulary (only "
                     "unknown word pieces or punctuation); give a caption such as "
                     "\"a person jumps\"")
  kept, cut = tokenizer.cut_off(text, max_length)
  if cut:
    print(f"warning: {flag} was cut to its first {kept} word pieces (the text limit, "
          f"config.data.max_text_length = {max_length}); ignored: \"{shorten(cut)}\"",
          file=sys.stderr)

def _has_own_model(phase: str | None, config) -> bool:
  """Whether `phase` is a task with a model of its own (not the lexical model)."""
  from lexmo_jax import phases  # pylint: disable=g-import-not-at-top
  return phase in phases.REGISTRY and phases.get_phase(config).model is not None


def restore_params(ckpt, step: int, model: nn.Module, config) -> dict:
  """The parameters of `model` (a module whose `init` takes a batch) at a checkpoint's
  `step`, on the first local device; closes `ckpt`."""
  try:
    boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_batch(config)))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                            nn.unbox(boxed)["params"])
    return ckpt.restore_params(step, abstract)
  finally:
    ckpt.close()


def padded_token_batches(tokens: dict[str, np.ndarray], starts, batch_size: int):
  """(input_ids, attention_mask, rows) of each batch of tokenised captions from `starts`:
  the last one padded to `batch_size` rows (one compiled shape for every batch; padding rows
  hold [CLS] alone, so that no row is all padding)."""
  for start in starts:
    ids = tokens["input_ids"][start:start + batch_size]
    am = tokens["attention_mask"][start:start + batch_size]
    n = len(ids)
    if n < batch_size:
      ids = np.pad(ids, [(0, batch_size - n), (0, 0)])
      am = np.pad(am, [(0, batch_size - n), (0, 0)])
      am[n:, 0] = 1
    yield ids, am, n


def read_workdir(workdir):
  """(config, checkpointer, step, phase) of a workdir with a complete checkpoint."""
  config = load_config(workdir)
  try:
    ckpt, step, record = read_workdir_record(workdir)
  except HandoffError as e:
    raise WorkdirError(f"{workdir} has no finished phase to load: {e}") from None
  return config, ckpt, step, record.get("phase")


def open_workdir(workdir: str | pathlib.Path, phases: Sequence[str]):
  """(config, checkpointer, step, phase) of a finished workdir of one of `phases`.

  Raises:
    WorkdirError: no config, no complete checkpoint, or another phase's workdir.
  """
  config, ckpt, step, phase = read_workdir(workdir)
  if phase not in phases:
    ckpt.close()
    raise WorkdirError(f"{workdir} is a {phase!r} workdir; expected a {' or '.join(phases)} "
                       "workdir")
  return config, ckpt, step, phase


def eval_batches(config, tokenizer, pairs, mean, std, batch_size: int = 0) -> EvalBatches:
  """The evaluation stream of `pairs` as a workdir's config shapes it (its text and motion
  limits; `batch_size` 0 = config.eval.batch_size)."""
  d = config.data
  return EvalBatches(pairs, mean, std, tokenizer,
                     batch_size=batch_size or config.eval.batch_size,
                     max_motion_length=d.max_motion_length, max_text_length=d.max_text_length)


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
    self.vocab_mask = jnp.asarray(data_lib.lexical_vocab_mask(config, tokenizer))

  @classmethod
  def from_workdir(cls, workdir: str | pathlib.Path, require_lexical: bool = True):
    config, ckpt, step, phase = read_workdir(workdir)
    if _has_own_model(phase, config):
      ckpt.close()
      from lexmo_jax.retrieval_encoders import is_retrieval_task  # pylint: disable=g-import-not-at-top
      raise WorkdirError(
          f"{workdir} is a {phase!r} workdir: a model of its own, not the method's lexical "
          "model that this reads" + (" (`python -m lexmo_jax.evaluate --workdir=DIR` "
                                     "evaluates its retrieval)"
                                     if is_retrieval_task(phase, config) else ""))
    if require_lexical and phase not in LEXICAL_PHASES:
      ckpt.close()
      raise WorkdirError(f"{workdir} is a {phase!r} workdir; motion lexical vectors come from a "
                         f"{' or '.join(LEXICAL_PHASES)} workdir")
    params = restore_params(ckpt, step, build_model(config), config)
    return cls(config, params, data_lib.load_tokenizer(config), step, phase)

  @classmethod
  def before_pretraining(cls, config, tokenizer=None) -> LexicalModel:
    """The model as the first phase starts it: fresh parameters (config.seed), the text
    encoder from config.text.init when one is set. For comparing what pre-training changed."""
    model = build_model(config)
    with nn.logical_axis_rules(()):
      params = nn.unbox(jax.jit(lambda k: model.init(k, dummy_batch(config)))(
          jax.random.key(config.seed))["params"])
    if config.text.get("init"):
      from lexmo_jax.models import hf_checkpoint  # pylint: disable=g-import-not-at-top
      params = dict(params)
      params["text"] = jax.tree.map(jnp.asarray,
                                    hf_checkpoint.load_text_params(config.text.init)[1])
    return cls(config, params, tokenizer or data_lib.load_tokenizer(config), 0, "initial")

  @property
  def kind(self) -> str:
    return self.config.data.kind

  # Batched encoders: one encoder pass gives the lexical vector and the dense pooled state.
  @functools.partial(jax.jit, static_argnums=0)
  def _text_batch(self, params, input_ids, attention_mask):
    z_bv, pooled = self.model.apply({"params": params}, input_ids, attention_mask,
                                    method=text_outputs)
    return lexical.lexical_vector(z_bv, self.vocab_mask), pooled

  @functools.partial(jax.jit, static_argnums=0)
  def _motion_batch(self, params, motion, motion_mask):
    z_bv, cls = self.model.apply({"params": params}, motion, motion_mask,
                                 method=motion_outputs)
    return lexical.lexical_vector(z_bv, self.vocab_mask), cls

  def __hash__(self):
    return id(self)

  def encode_texts(self, captions: Sequence[str], batch_size: int = 0) -> np.ndarray:
    """(N, V) float32 lexical vectors of captions (≥ 0, one weight per vocabulary word)."""
    return self._encode_texts(captions, batch_size)[0]

  def text_features(self, captions: Sequence[str], batch_size: int = 0) -> np.ndarray:
    """(N, D_text) float32 dense features of captions: the mean of the text encoder's token
    states over the caption's tokens (TMR-style dense embeddings, before any lexical head)."""
    return self._encode_texts(captions, batch_size)[1]

  def _encode_texts(self, captions, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(captions, str):
      raise TypeError("captions must be a list of strings, not one string: pass [caption]")
    batch_size = batch_size or self.config.eval.batch_size
    tokens = self.tokenizer.encode(list(captions), self.config.data.max_text_length)
    lexical_parts, dense_parts = [], []
    for ids, am, n in padded_token_batches(tokens, range(0, len(captions), batch_size),
                                           batch_size):
      v, h = self._text_batch(self.params, ids, am)
      lexical_parts.append(np.asarray(v)[:n])
      dense_parts.append(np.asarray(h, np.float32)[:n])
    if not lexical_parts:
      return (np.zeros((0, self.tokenizer.vocab_size), np.float32),
              np.zeros((0, self.config.text.hidden_size), np.float32))
    return np.concatenate(lexical_parts), np.concatenate(dense_parts)

  def normalisation(self) -> tuple[np.ndarray, np.ndarray]:
    return humanml3d.load_normalisation(self.config.data.root, self.config.data.kind)

  def encode_eval_batches(self, batches: EvalBatches, on_batch=None) -> dict[str, np.ndarray]:
    """Every item of an evaluation stream, in order; `on_batch(done, total)` after each
    batch, if given (progress).

    Returns:
      text: (N, V) lexical vectors of the captions; motion: (N, V) of the motions;
      text_pooled: (N, D_text) mean of the caption's token states over its valid tokens;
      motion_pooled: (N, D_motion) the motion's [CLS] state.
    """
    out = {"text": [], "motion": [], "text_pooled": [], "motion_pooled": []}
    for k in range(len(batches)):
      b = batches.batch(k)
      valid = b["valid"]
      v, h = self._text_batch(self.params, b["input_ids"], b["attention_mask"])
      out["text"].append(np.asarray(v)[valid])
      out["text_pooled"].append(np.asarray(h)[valid])
      v, h = self._motion_batch(self.params, b["motion"], b["motion_mask"])
      out["motion"].append(np.asarray(v)[valid])
      out["motion_pooled"].append(np.asarray(h)[valid])
      if on_batch is not None:
        on_batch(k + 1, len(batches))
    return {key: np.concatenate(parts) for key, parts in out.items()}

  def encode_motions(self, motions: Sequence[np.ndarray], batch_size: int = 0) -> np.ndarray:
    """(N, V) lexical vectors of raw (T, F) feature arrays (normalised here)."""
    return self._encode_motions(motions, batch_size)["motion"]

  def motion_features(self, motions: Sequence[np.ndarray], batch_size: int = 0) -> np.ndarray:
    """(N, D_motion) float32 dense features of raw (T, F) feature arrays: the motion
    encoder's [CLS] state."""
    return self._encode_motions(motions, batch_size)["motion_pooled"].astype(np.float32)

  def encode_motion_files(self, paths: Sequence[str | pathlib.Path],
                          batch_size: int = 0) -> np.ndarray:
    """(N, V) lexical vectors of .npy motion files: raw (T, F) features or (T, J, 3) joint
    positions (`read_motion_file`; MotionFileError names a bad file)."""
    if isinstance(paths, (str, pathlib.Path)):
      paths = [paths]
    return self.encode_motions([read_motion_file(p, self.kind) for p in paths], batch_size)

  def _encode_motions(self, motions, batch_size: int) -> dict[str, np.ndarray]:
    if isinstance(motions, np.ndarray) and motions.ndim == 2:
      raise TypeError("motions must be a list of (T, F) arrays, not one array: pass [motion]")
    pairs = [humanml3d.MotionTextPair(item_id=str(i), motion_id=str(i),
                                      motion=np.asarray(m, np.float32), captions=("",))
             for i, m in enumerate(motions)]
    mean, std = self.normalisation()
    batches = self.eval_batches(pairs, mean, std, batch_size)
    return self.encode_eval_batches(batches)

  def eval_batches(self, pairs, mean, std, batch_size: int = 0) -> EvalBatches:
    return eval_batches(self.config, self.tokenizer, pairs, mean, std, batch_size)

  def top_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    """The k highest-weighted coordinates (word pieces) of a lexical vector, one by one."""
    order = np.argsort(-vector)[:k]
    return [(self.vocab[i], float(vector[i])) for i in order if vector[i] > 0]

  def description(self, vector: np.ndarray, k: int = description_lib.DESCRIPTION_WORDS
                  ) -> list[tuple[str, float]]:
    """A lexical vector's k heaviest words, forms of one word counted together
    (("walks/walking", 1.19)): what it says (`lexmo_jax.description`)."""
    return description_lib.describe(vector, self.vocab, k)
