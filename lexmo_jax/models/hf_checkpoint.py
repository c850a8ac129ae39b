"""Hugging Face BERT-family checkpoints in and out of the text encoder.

In: a Hugging Face model folder holding config.json and either `model.safetensors` (PyTorch
names, or HF Flax names when its metadata says "flax") or `flax_model.msgpack` (HF Flax names,
as transformers 4's Flax classes saved them), plus the tokenizer files. Out: config.json,
`model.safetensors` under transformers' PyTorch names and layouts, and the tokenizer files: a
folder that transformers (5.x, PyTorch) loads with `AutoModel.from_pretrained` (the encoder)
and `AutoModelForMaskedLM.from_pretrained` (encoder + lexical head, same logits), and that
`load_text_params` reads back to the very same parameters.

Only what the lexical model uses is read: the encoder and the masked-LM head. The BERT pooler
and next-sentence head are skipped. A checkpoint without an MLM head (a bare BertModel) gets a
freshly initialised one, tied to its word embeddings.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import pathlib
import shutil
import types
from typing import Any, Mapping

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import traverse_util

from input_pipeline.tokenizer import Tokenizer, load_tokenizer
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig, abstract_params

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FLAX_WEIGHTS = "flax_model.msgpack"
SAFETENSORS_WEIGHTS = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json")

# Prefix of the encoder inside a masked-LM checkpoint (absent in a bare BertModel).
BASE_PREFIX = {"distilbert": "distilbert", "bert": "bert"}
ARCHITECTURE = {"distilbert": "DistilBertForMaskedLM", "bert": "BertForMaskedLM"}
TOKENIZER_CLASS = {"distilbert": "DistilBertTokenizer", "bert": "BertTokenizer"}

# Checkpoint entries the lexical model has no use for, by name prefix (relative to the base).
UNUSED_PREFIXES = ("pooler/", "embeddings/position_ids", "cls/seq_relationship/",
                   "cls/predictions/decoder/", "vocab_projector/weight",
                   "vocab_projector/kernel")

Params = dict[str, Any]


# ----- configuration ---------------------------------------------------------------------------

def _config_file(path) -> pathlib.Path:
  path = pathlib.Path(path)
  return path / CONFIG_FILE if path.is_dir() else path


def read_hf_config(path) -> tuple[dict, pathlib.Path]:
  """The raw config.json of a HF folder (or the file itself) and its path."""
  file = _config_file(path)
  if not file.is_file():
    raise FileNotFoundError(f"{file}: no Hugging Face config.json there")
  try:
    raw = json.loads(file.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{file}: not valid JSON ({e})") from e
  if not isinstance(raw, dict):
    raise ValueError(f"{file}: expected a JSON object, got {type(raw).__name__}")
  return raw, file


def _check_activation(raw: dict, key: str, file: pathlib.Path):
  act = raw.get(key, "gelu")
  # Our blocks use the exact (erf) GELU; other activations would silently change the model.
  if act != "gelu":
    raise ValueError(f"{file}: {key}={act!r} is not supported; the text encoder uses 'gelu'")


def text_config_from_hf(path, dtype: str = "float32") -> TextEncoderConfig:
  """TextEncoderConfig from a HF folder's config.json (model types distilbert and bert)."""
  raw, file = read_hf_config(path)
  model_type = raw.get("model_type")
  try:
    if model_type == "distilbert":
      _check_activation(raw, "activation", file)
      return TextEncoderConfig(
          model_type="distilbert",
          vocab_size=int(raw.get("vocab_size", 30522)),
          hidden_size=int(raw.get("dim", 768)),
          num_layers=int(raw.get("n_layers", 6)),
          num_heads=int(raw.get("n_heads", 12)),
          mlp_dim=int(raw.get("hidden_dim", 3072)),
          max_position=int(raw.get("max_position_embeddings", 512)),
          type_vocab_size=0,
          dropout_rate=float(raw.get("dropout", 0.1)),
          # DistilBERT hard-codes its LayerNorm epsilon; config.json does not carry it.
          layer_norm_eps=1e-12,
          dtype=dtype)
    if model_type == "bert":
      _check_activation(raw, "hidden_act", file)
      position_type = raw.get("position_embedding_type", "absolute")
      if position_type != "absolute":
        raise ValueError(f"{file}: position_embedding_type={position_type!r} is not "
                         "supported; the text encoder has absolute positions")
      if raw.get("is_decoder", False):
        raise ValueError(f"{file}: is_decoder=true (a causal BERT) is not supported")
      return TextEncoderConfig(
          model_type="bert",
          vocab_size=int(raw.get("vocab_size", 30522)),
          hidden_size=int(raw.get("hidden_size", 768)),
          num_layers=int(raw.get("num_hidden_layers", 12)),
          num_heads=int(raw.get("num_attention_heads", 12)),
          mlp_dim=int(raw.get("intermediate_size", 3072)),
          max_position=int(raw.get("max_position_embeddings", 512)),
          type_vocab_size=int(raw.get("type_vocab_size", 2)),
          dropout_rate=float(raw.get("hidden_dropout_prob", 0.1)),
          layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
          dtype=dtype)
  except (TypeError, ValueError) as e:
    if str(file) in str(e):
      raise
    raise ValueError(f"{file}: {e}") from e
  raise ValueError(f"{file}: unsupported model_type {model_type!r}; the text encoder loads "
                   f"{sorted(BASE_PREFIX)}")


def hf_config_dict(config: TextEncoderConfig, pad_token_id: int = 0) -> dict:
  """config.json fields of transformers' DistilBertConfig / BertConfig for `config`.

  The masked-LM head is tied (its projection is the word embeddings, plus its own bias), so
  `tie_word_embeddings` is true and the weights file holds no separate projection matrix.
  """
  c = config
  if c.model_type == "distilbert":
    return {
        "architectures": [ARCHITECTURE["distilbert"]], "model_type": "distilbert",
        "activation": "gelu", "attention_dropout": c.dropout_rate, "dim": c.hidden_size,
        "dropout": c.dropout_rate, "hidden_dim": c.mlp_dim, "initializer_range": 0.02,
        "max_position_embeddings": c.max_position, "n_heads": c.num_heads,
        "n_layers": c.num_layers, "pad_token_id": pad_token_id, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False,
        "tie_word_embeddings": True, "vocab_size": c.vocab_size, "dtype": "float32",
    }
  return {
      "architectures": [ARCHITECTURE["bert"]], "model_type": "bert",
      "attention_probs_dropout_prob": c.dropout_rate, "hidden_act": "gelu",
      "hidden_dropout_prob": c.dropout_rate, "hidden_size": c.hidden_size,
      "initializer_range": 0.02, "intermediate_size": c.mlp_dim,
      "layer_norm_eps": c.layer_norm_eps, "max_position_embeddings": c.max_position,
      "num_attention_heads": c.num_heads, "num_hidden_layers": c.num_layers,
      "pad_token_id": pad_token_id, "position_embedding_type": "absolute",
      "tie_word_embeddings": True, "type_vocab_size": c.type_vocab_size,
      "vocab_size": c.vocab_size, "dtype": "float32",
  }


# ----- parameter names -------------------------------------------------------------------------

def hf_names(config: TextEncoderConfig) -> tuple[dict[str, str], dict[str, str]]:
  """Our parameter paths → HF Flax paths, all '/'-joined.

  Returns (encoder, head): encoder names are relative to the base prefix ("bert/",
  "distilbert/"); head names sit at the top of a masked-LM checkpoint.
  """
  encoder, head = {}, {}

  def dense(table, ours, theirs):
    table[f"{ours}/kernel"], table[f"{ours}/bias"] = f"{theirs}/kernel", f"{theirs}/bias"

  def norm(table, ours, theirs):
    table[f"{ours}/scale"], table[f"{ours}/bias"] = f"{theirs}/scale", f"{theirs}/bias"

  encoder["word_embeddings"] = "embeddings/word_embeddings/embedding"
  encoder["position_embeddings"] = "embeddings/position_embeddings/embedding"
  if config.type_vocab_size:
    encoder["token_type_embeddings"] = "embeddings/token_type_embeddings/embedding"
  norm(encoder, "embedding_norm", "embeddings/LayerNorm")
  if config.model_type == "distilbert":
    block = {"attention/query": "attention/q_lin", "attention/key": "attention/k_lin",
             "attention/value": "attention/v_lin", "attention/out": "attention/out_lin",
             "mlp/wi": "ffn/lin1", "mlp/wo": "ffn/lin2"}
    norms = {"attention_norm": "sa_layer_norm", "mlp_norm": "output_layer_norm"}
    layers = "transformer/layer"
    dense(head, "mlm_head/transform", "vocab_transform")
    norm(head, "mlm_head/transform_norm", "vocab_layer_norm")
    head["mlm_head/bias"] = "vocab_projector/bias"
  else:
    block = {"attention/query": "attention/self/query", "attention/key": "attention/self/key",
             "attention/value": "attention/self/value",
             "attention/out": "attention/output/dense",
             "mlp/wi": "intermediate/dense", "mlp/wo": "output/dense"}
    norms = {"attention_norm": "attention/output/LayerNorm", "mlp_norm": "output/LayerNorm"}
    layers = "encoder/layer"
    dense(head, "mlm_head/transform", "cls/predictions/transform/dense")
    norm(head, "mlm_head/transform_norm", "cls/predictions/transform/LayerNorm")
    head["mlm_head/bias"] = "cls/predictions/bias"
  for i in range(config.num_layers):
    for ours, theirs in block.items():
      dense(encoder, f"encoder/layer_{i}/{ours}", f"{layers}/{i}/{theirs}")
    for ours, theirs in norms.items():
      norm(encoder, f"encoder/layer_{i}/{ours}", f"{layers}/{i}/{theirs}")
  return encoder, head


def _torch_names(flax_name: str) -> list[tuple[str, bool]]:
  """PyTorch names a HF Flax leaf may be stored under, each with 'needs a transpose'."""
  stem, leaf = flax_name.rsplit("/", 1)
  stem = stem.replace("/", ".")
  if leaf == "kernel":  # torch.nn.Linear keeps (out, in); Flax Dense (in, out)
    return [(f"{stem}.weight", True)]
  if leaf == "embedding":
    return [(f"{stem}.weight", False)]
  if leaf == "scale":  # old checkpoints name LayerNorm parameters gamma / beta
    return [(f"{stem}.weight", False), (f"{stem}.gamma", False)]
  if flax_name == "cls/predictions/bias":
    return [(f"{stem}.bias", False), ("cls.predictions.decoder.bias", False)]
  return [(f"{stem}.bias", False), (f"{stem}.beta", False)]


# ----- reading weights -------------------------------------------------------------------------

@dataclasses.dataclass
class _Checkpoint:
  """A checkpoint's tensors, keyed by name relative to the base prefix."""
  file: pathlib.Path
  tensors: dict[str, np.ndarray]
  torch_names: bool  # '.'-joined PyTorch names and layouts, else '/'-joined HF Flax names


def _strip_prefix(names, prefix: str, sep: str) -> dict[str, str]:
  head = prefix + sep
  return {n[len(head):] if n.startswith(head) else n: n for n in names}


def _read_checkpoint(folder: pathlib.Path, model_type: str) -> _Checkpoint:
  prefix = BASE_PREFIX[model_type]
  flax_file, st_file = folder / FLAX_WEIGHTS, folder / SAFETENSORS_WEIGHTS
  # model.safetensors first, as transformers' PyTorch classes choose: a folder that holds both
  # was most likely re-saved since its msgpack was written.
  if st_file.is_file():
    try:
      with safetensors.safe_open(str(st_file), framework="numpy") as f:
        metadata = f.metadata() or {}
      flat = safetensors.numpy.load_file(str(st_file))
    except Exception as e:  # the Rust reader raises its own error type
      raise ValueError(f"{st_file}: not a readable safetensors file ({e})") from e
    if metadata.get("format") == "flax":
      # transformers 4's Flax save_pretrained(safe_serialization=True) joins Flax names
      # with '.'.
      flat = {n.replace(".", "/"): v for n, v in flat.items()}
      names = _strip_prefix(flat, prefix, "/")
      return _Checkpoint(st_file, {n: flat[full] for n, full in names.items()}, False)
    names = _strip_prefix(flat, prefix, ".")
    return _Checkpoint(st_file, {n: flat[full] for n, full in names.items()}, True)
  if flax_file.is_file():
    try:
      tree = flax.serialization.msgpack_restore(flax_file.read_bytes())
    except Exception as e:  # msgpack raises several unrelated types on corrupt input
      raise ValueError(f"{flax_file}: not a readable Flax msgpack checkpoint ({e})") from e
    if not isinstance(tree, dict):
      raise ValueError(f"{flax_file}: expected a nested dict of weights")
    flat = {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}
    names = _strip_prefix(flat, prefix, "/")
    return _Checkpoint(flax_file, {n: flat[full] for n, full in names.items()}, False)
  present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
  hint = ""
  if (folder / "pytorch_model.bin").is_file():
    hint = (" It holds pytorch_model.bin, which needs torch to read: convert it to "
            "model.safetensors first.")
  elif any(name.endswith(".index.json") for name in present):
    hint = " Sharded checkpoints are not supported."
  raise FileNotFoundError(f"{folder}: no {SAFETENSORS_WEIGHTS} or {FLAX_WEIGHTS} found "
                          f"(files: {present}).{hint}")


def _lookup(ckpt: _Checkpoint, flax_name: str) -> tuple[str, np.ndarray, bool] | None:
  """(name in the checkpoint, its array as stored, whether it is stored transposed)."""
  if not ckpt.torch_names:
    if flax_name in ckpt.tensors:
      return flax_name, np.asarray(ckpt.tensors[flax_name]), False
    return None
  for name, transpose in _torch_names(flax_name):
    if name in ckpt.tensors:
      return name, np.asarray(ckpt.tensors[name]), transpose
  return None


def _sinusoidal_positions(num_positions: int, width: int) -> np.ndarray:
  """DistilBERT's fixed sin/cos position table. Returns (P, D) float32."""
  pos_p1 = np.arange(num_positions, dtype=np.float64)[:, None]
  dim_1d = np.arange(width)[None, :]
  angles_pd = pos_p1 / np.power(10000.0, (2 * (dim_1d // 2)) / width)
  table = np.where(dim_1d % 2 == 0, np.sin(angles_pd), np.cos(angles_pd))
  return table.astype(np.float32)


def _fresh_head(shapes: Mapping[str, tuple], seed: int) -> dict[str, np.ndarray]:
  """An untrained MLM head, initialised as BERT initialises one."""
  rng = np.random.default_rng(seed)
  head = {}
  for ours, shape in shapes.items():
    if ours.endswith("kernel"):
      head[ours] = rng.normal(0.0, 0.02, shape).astype(np.float32)
    elif ours.endswith("scale"):
      head[ours] = np.ones(shape, np.float32)
    else:
      head[ours] = np.zeros(shape, np.float32)
  return head


@functools.lru_cache(maxsize=8)
def _flat_shapes(config: TextEncoderConfig) -> Mapping[str, tuple]:
  flat = traverse_util.flatten_dict(abstract_params(config), sep="/")
  return types.MappingProxyType({k: tuple(v.shape) for k, v in flat.items()})


def load_text_params(path, config: TextEncoderConfig | None = None,
                     head_seed: int = 0) -> tuple[TextEncoderConfig, Params]:
  """Reads a HF folder's weights into the TextEncoder parameter tree.

  Args:
    path: a HF model folder (config.json + model.safetensors or flax_model.msgpack).
    config: the expected architecture; default: `text_config_from_hf(path)`. Every weight's
      shape is checked against it.
    head_seed: seed of the MLM head built when the checkpoint has none.

  Returns:
    (config, params): params is a nested dict of float32 numpy arrays, unboxed, with the
    tree of `text_encoder.init_params(config, rng)`.
  """
  folder = pathlib.Path(path)
  raw, config_file = read_hf_config(folder)
  if config is None:
    config = text_config_from_hf(folder)
  elif raw.get("model_type") != config.model_type:
    raise ValueError(f"{config_file}: model_type {raw.get('model_type')!r} does not match "
                     f"the requested text model type {config.model_type!r}")
  ckpt = _read_checkpoint(folder, config.model_type)
  shapes = _flat_shapes(config)
  encoder_names, head_names = hf_names(config)
  if set(encoder_names) | set(head_names) != set(shapes):
    raise AssertionError("hf_names does not cover the TextEncoder parameter tree")

  flat, used = {}, set()

  def take(ours: str, theirs: str) -> bool:
    found = _lookup(ckpt, theirs)
    if found is None:
      return False
    name, array, transposed = found
    # Shapes are reported in the checkpoint's own layout, as a reader of the file sees them.
    expected = shapes[ours][::-1] if transposed else shapes[ours]
    if array.shape != expected:
      raise ValueError(
          f"{ckpt.file}: weight {name!r} has shape {array.shape}, but the config "
          f"({config_file}) expects {expected} (our parameter {ours!r})")
    # jnp's dtype test knows bfloat16, which half-precision checkpoints are often saved in.
    if not jnp.issubdtype(array.dtype, jnp.floating):
      raise ValueError(f"{ckpt.file}: weight {name!r} has dtype {array.dtype}, expected floats")
    flat[ours] = (array.T if transposed else array).astype(np.float32)
    used.add(name)
    return True

  for ours, theirs in encoder_names.items():
    if take(ours, theirs):
      continue
    if ours == "position_embeddings" and raw.get("sinusoidal_pos_embds", False):
      # HF's Flax DistilBERT computes fixed sinusoids instead of storing them.
      flat[ours] = _sinusoidal_positions(*shapes[ours])
      continue
    wanted = _torch_names(theirs)[0][0] if ckpt.torch_names else theirs
    raise ValueError(f"{ckpt.file}: missing weight {wanted!r} (our parameter {ours!r})")

  present = [ours for ours, theirs in head_names.items() if _lookup(ckpt, theirs) is not None]
  if not present:
    log.warning("%s has no masked-LM head: built a fresh one (normal(0.02) transform, "
                "LayerNorm ones/zeros, zero bias) with its projection tied to the word "
                "embeddings. Its vocabulary logits mean nothing until trained.", ckpt.file)
    flat.update(_fresh_head({k: shapes[k] for k in head_names}, head_seed))
  else:
    for ours, theirs in head_names.items():
      if not take(ours, theirs):
        wanted = _torch_names(theirs)[0][0] if ckpt.torch_names else theirs
        raise ValueError(f"{ckpt.file}: missing weight {wanted!r} of the masked-LM head "
                         f"(our parameter {ours!r}); the other head weights are present")
  _check_tied_projection(ckpt, flat["word_embeddings"])

  unused = sorted(set(ckpt.tensors) - used)
  ignored = [n for n in unused if n.replace(".", "/").startswith(UNUSED_PREFIXES)]
  if any(n.replace(".", "/").startswith("pooler/") for n in ignored):
    log.info("%s: the BERT pooler is not used by the lexical model; ignored it", ckpt.file)
  others = [n for n in unused if n not in ignored]
  if others:
    log.warning("%s: %d weights are not part of the text encoder and were ignored: %s",
                ckpt.file, len(others), ", ".join(others[:10]) + (" ..." if len(others) > 10
                                                                   else ""))
  return config, traverse_util.unflatten_dict(flat, sep="/")


def _check_tied_projection(ckpt: _Checkpoint, embedding_vd: np.ndarray):
  """An explicit output projection must equal E: the head is tied."""
  for name in ("cls.predictions.decoder.weight", "vocab_projector.weight",
               "cls/predictions/decoder/kernel", "vocab_projector/kernel"):
    if name not in ckpt.tensors:
      continue
    projection = np.asarray(ckpt.tensors[name], np.float32)
    if name.endswith("kernel"):
      projection = projection.T
    if projection.shape != embedding_vd.shape or not np.array_equal(projection, embedding_vd):
      raise ValueError(f"{ckpt.file}: {name!r} differs from the word embeddings; untied "
                       "output projections are not supported")


# ----- writing a HF folder ---------------------------------------------------------------------

def _host_params(params) -> dict[str, np.ndarray]:
  params = nn.unbox(params)
  if set(params) == {"params"}:
    params = params["params"]
  params = jax.device_get(params)
  return {k: np.asarray(v, np.float32)
          for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def _resolve_tokenizer(tokenizer) -> tuple[Tokenizer, pathlib.Path | None]:
  """The Tokenizer and the folder its files can be copied from (None if unknown)."""
  if isinstance(tokenizer, Tokenizer):
    source = pathlib.Path(tokenizer.source) if tokenizer.source else None
    return tokenizer, (source.parent if source is not None and source.is_file() else None)
  path = pathlib.Path(tokenizer)
  tok = load_tokenizer(str(path))
  return tok, (path if path.is_dir() else path.parent)


def check_vocab_size(tokenizer: Tokenizer, config: TextEncoderConfig, model_source: str):
  """Raises ValueError, naming both files, when the tokenizer and the model disagree on V."""
  if tokenizer.vocab_size != config.vocab_size:
    raise ValueError(
        f"{tokenizer.source}: the tokenizer has {tokenizer.vocab_size} tokens but the text "
        f"model ({model_source}) has vocab_size {config.vocab_size}; the lexical space needs "
        "them equal")


def _write_tokenizer(tok: Tokenizer, source: pathlib.Path | None, out: pathlib.Path,
                     config: TextEncoderConfig):
  for name in TOKENIZER_FILES:
    if source is not None and (source / name).is_file():
      try:
        shutil.copyfile(source / name, out / name)
      except shutil.SameFileError:
        pass
  if not (out / "tokenizer.json").is_file() and not (out / "vocab.txt").is_file():
    (out / "vocab.txt").write_text("".join(t + "\n" for t in tok.vocab), encoding="utf-8")
  special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
             "cls_token": "[CLS]", "mask_token": "[MASK]"}
  config_file = out / "tokenizer_config.json"
  tokenizer_config = {}
  if config_file.is_file():
    try:
      tokenizer_config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{config_file}: not valid JSON ({e})") from e
  if not tokenizer_config:
    # Without a tokenizer_config, an uncased vocabulary is assumed: the lexical space's.
    tokenizer_config = {"tokenizer_class": TOKENIZER_CLASS[config.model_type],
                        "do_lower_case": True, "model_max_length": config.max_position,
                        **special}
  # `truncation=True` then stops where the position table ends.
  limit = tokenizer_config.get("model_max_length", config.max_position)
  tokenizer_config["model_max_length"] = min(
      int(limit) if isinstance(limit, (int, float)) else config.max_position, config.max_position)
  if config.model_type == "distilbert":
    # DistilBERT has no token types: without this, a BERT tokenizer's token_type_ids would
    # reach the model through `model(**tokenizer(texts))`.
    tokenizer_config["model_input_names"] = ["input_ids", "attention_mask"]
  config_file.write_text(json.dumps(tokenizer_config, indent=2) + "\n")
  if not (out / "special_tokens_map.json").is_file():
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))


def torch_state_dict(config: TextEncoderConfig, params) -> dict[str, np.ndarray]:
  """Our parameters under the PyTorch names and layouts of transformers' masked-LM class.

  DistilBERT: `distilbert.*` encoder, `vocab_transform`, `vocab_layer_norm`,
  `vocab_projector.bias`; BERT: `bert.*` encoder, `cls.predictions.transform.*`,
  `cls.predictions.bias`. Linear weights are (out, in), LayerNorms `weight`/`bias`. The
  projection to the vocabulary is tied to the word embeddings, so, as transformers saves a
  tied model, it has no entry of its own. BERT's pooler is not part of the text encoder and
  is not written.

  Args:
    config: the text encoder's architecture.
    params: its parameter tree (boxed or plain, device or host arrays; a {'params': ...}
      wrapper is accepted).

  Returns:
    {name: C-contiguous float32 array}.

  Raises:
    ValueError: a parameter is missing or its shape differs from the config's.
  """
  flat = _host_params(params)
  shapes = _flat_shapes(config)
  missing = sorted(set(shapes) - set(flat))
  if missing:
    raise ValueError(f"the text parameters lack {missing[:5]}")
  for name, shape in shapes.items():
    if flat[name].shape != shape:
      raise ValueError(f"parameter {name!r} has shape {flat[name].shape}, but the config "
                       f"expects {shape}")
  encoder_names, head_names = hf_names(config)
  prefix = BASE_PREFIX[config.model_type]
  named = [(ours, f"{prefix}/{theirs}") for ours, theirs in encoder_names.items()]
  named += list(head_names.items())
  tensors = {}
  for ours, theirs in named:
    name, transpose = _torch_names(theirs)[0]
    value = flat[ours].T if transpose else flat[ours]
    tensors[name] = np.ascontiguousarray(value, np.float32)
  return tensors


def save_pretrained(config: TextEncoderConfig, params, tokenizer,
                    out_dir) -> pathlib.Path:
  """Writes a folder that transformers' PyTorch classes and `load_text_params` load.

  transformers (5.x) reads it with `AutoModel.from_pretrained` (DistilBertModel / BertModel:
  the token states) and `AutoModelForMaskedLM.from_pretrained` (plus the lexical head: the
  same logits as `TextEncoder.token_logits`); `AutoTokenizer.from_pretrained` gives the same
  ids as our tokenizer.

  Args:
    config: the text encoder's architecture.
    params: its parameter tree (boxed or plain, device or host arrays; a {'params': ...}
      wrapper is accepted).
    tokenizer: a Tokenizer, or a folder / file `load_tokenizer` reads. Its files are copied
      when its folder is known, else vocab.txt is written from its vocabulary.
    out_dir: created if absent; files of the same names are overwritten, and a
      flax_model.msgpack there (an older export's) is removed, as it no longer matches.

  Returns:
    out_dir, holding config.json, model.safetensors (`torch_state_dict`) and the tokenizer
    files.

  Raises:
    ValueError: a parameter is missing or misshapen, or the tokenizer's vocabulary size
      differs from the config's.
  """
  out = pathlib.Path(out_dir)
  try:
    tensors = torch_state_dict(config, params)
  except ValueError as e:
    raise ValueError(f"cannot save to {out}: {e}") from None
  tok, source = _resolve_tokenizer(tokenizer)
  check_vocab_size(tok, config, "the config being saved")

  out.mkdir(parents=True, exist_ok=True)
  safetensors.numpy.save_file(tensors, str(out / SAFETENSORS_WEIGHTS), metadata={"format": "pt"})
  if (out / FLAX_WEIGHTS).is_file():
    (out / FLAX_WEIGHTS).unlink()
    log.info("%s: removed the older export's %s", out, FLAX_WEIGHTS)
  (out / CONFIG_FILE).write_text(
      json.dumps(hf_config_dict(config, tok.pad_id), indent=2, sort_keys=True) + "\n")
  _write_tokenizer(tok, source, out, config)
  return out


# ----- a ready-to-use pretrained encoder -------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _inference_functions(config: TextEncoderConfig):
  """Jitted (states, logits) of a config, shared by every encoder of that config."""
  module = TextEncoder(config)

  def states(params, ids_bl, mask_bl, types_bl):
    h_bld = module.apply({"params": params}, ids_bl, mask_bl, True, types_bl)
    return h_bld.astype(jnp.float32)

  def logits(params, ids_bl, mask_bl, types_bl):
    return module.apply({"params": params}, ids_bl, mask_bl, True, types_bl,
                        method=TextEncoder.token_logits)

  return jax.jit(states), jax.jit(logits)


class PretrainedTextEncoder:
  """A loaded text encoder with its tokenizer, for inference (deterministic, jitted).

  Attributes:
    module: the TextEncoder.
    params: its parameters (unboxed device arrays).
    config: its TextEncoderConfig.
    tokenizer: its Tokenizer.
  """

  def __init__(self, config: TextEncoderConfig, params: Params, tokenizer: Tokenizer):
    check_vocab_size(tokenizer, config, "the given config")
    self.config = config
    self.module = TextEncoder(config)
    self.params = jax.device_put(params)
    self.tokenizer = tokenizer

    self._states, self._logits = _inference_functions(config)

  def tokenize(self, texts, max_length: int) -> dict[str, np.ndarray]:
    """input_ids and attention_mask, each (N, max_length) int32."""
    if max_length > self.config.max_position:
      raise ValueError(f"max_length {max_length} exceeds the text model's max_position "
                       f"{self.config.max_position}")
    return self.tokenizer.encode(texts, max_length)

  def _inputs(self, input_ids, attention_mask, token_type_ids):
    ids_bl = jnp.asarray(input_ids, jnp.int32)
    mask_bl = jnp.asarray(attention_mask, jnp.int32)
    if ids_bl.ndim != 2 or ids_bl.shape != mask_bl.shape:
      raise ValueError(f"input_ids {ids_bl.shape} and attention_mask {mask_bl.shape} must "
                       "be the same (B, L) shape")
    types_bl = None if token_type_ids is None else jnp.asarray(token_type_ids, jnp.int32)
    return ids_bl, mask_bl, types_bl

  def hidden_states(self, input_ids, attention_mask, token_type_ids=None) -> jax.Array:
    """Token states H_t. Returns (B, L, D) float32."""
    return self._states(self.params, *self._inputs(input_ids, attention_mask, token_type_ids))

  def mlm_logits(self, input_ids, attention_mask, token_type_ids=None) -> jax.Array:
    """Per-token vocabulary logits Z. Returns (B, L, V) float32."""
    return self._logits(self.params, *self._inputs(input_ids, attention_mask, token_type_ids))

  def save_pretrained(self, out_dir) -> pathlib.Path:
    """Writes this encoder as a Hugging Face folder (see the module's save_pretrained):
    transformers' PyTorch AutoModel / AutoModelForMaskedLM load it."""
    return save_pretrained(self.config, self.params, self.tokenizer, out_dir)


def from_pretrained(path, tokenizer_path: str | os.PathLike | None = None,
                    dtype: str = "float32") -> PretrainedTextEncoder:
  """Loads config, weights and tokenizer of a HF folder.

  Args:
    path: the HF model folder.
    tokenizer_path: where the tokenizer is, if not in `path`.
    dtype: compute dtype of the activations (parameters stay float32).
  """
  config = text_config_from_hf(path, dtype=dtype)
  config, params = load_text_params(path, config)
  tokenizer = load_tokenizer(str(tokenizer_path if tokenizer_path is not None else path))
  check_vocab_size(tokenizer, config, str(_config_file(path)))
  return PretrainedTextEncoder(config, params, tokenizer)
