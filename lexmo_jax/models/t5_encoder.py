"""A T5 encoder (Raffel et al., JMLR 2020) in Flax, loaded from a local Hugging Face folder:
the text towers of the paper's text-encoder ablation (Table 5: T5-Small … T5-XXL).

As Hugging Face's `T5EncoderModel` computes it: token embeddings (shared with the decoder,
not scaled), then per block a pre-norm self-attention and a pre-norm feed-forward, each added
back to the stream; RMS norms without bias or mean (`T5LayerNorm`); attention logits without
the 1/√d scaling (T5 folds it into the initialisation) plus a learned relative-position bias
(bidirectional buckets: half per direction, exact below half of them, logarithmic up to
`relative_attention_max_distance`), computed by the first block and added in every block;
feed-forward `relu` (T5 v1.0) or `gated-gelu` (v1.1, tanh GELU times a linear gate); a final
RMS norm. No layer has biases.

  config, params = load_t5_params("/path/to/t5-small")
  states = T5Encoder(config).apply({"params": params}, input_ids, attention_mask)  # (B, L, D)
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

FEED_FORWARDS = ("relu", "gated-gelu")


@dataclasses.dataclass(frozen=True)
class T5EncoderConfig:
  """A T5 encoder's sizes as its config.json states them."""
  vocab_size: int = 32128
  d_model: int = 512
  d_kv: int = 64
  d_ff: int = 2048
  num_layers: int = 6
  num_heads: int = 8
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  feed_forward_proj: str = "relu"
  layer_norm_epsilon: float = 1e-6
  dropout_rate: float = 0.1

  def __post_init__(self):
    if self.feed_forward_proj not in FEED_FORWARDS:
      raise ValueError(f"feed_forward_proj={self.feed_forward_proj!r} is not supported; "
                       f"expected one of {FEED_FORWARDS}")


# The shapes of the T5 v1.1 encoders the ablation names (google/t5-v1_1-*; FLAN-T5 shares them):
# (d_model, d_ff, num_layers, num_heads); d_kv 64, gated GELU, vocabulary 32128 throughout.
T5_V1_1_SHAPES = {
    "small": (512, 1024, 8, 6),
    "base": (768, 2048, 12, 12),
    "large": (1024, 2816, 24, 16),
    "xl": (2048, 5120, 24, 32),
    "xxl": (4096, 10240, 24, 64),
}


def t5_v1_1_config(size: str) -> T5EncoderConfig:
  """The T5EncoderConfig of the T5 v1.1 encoder of `size` (small, base, large, xl, xxl).

  Raises:
    ValueError: an unknown size.
  """
  if size not in T5_V1_1_SHAPES:
    raise ValueError(f"unknown T5 size {size!r}; known: {', '.join(T5_V1_1_SHAPES)}")
  d_model, d_ff, layers, heads = T5_V1_1_SHAPES[size]
  return T5EncoderConfig(d_model=d_model, d_kv=64, d_ff=d_ff, num_layers=layers,
                         num_heads=heads, feed_forward_proj="gated-gelu")


def t5_config_from_hf(folder) -> T5EncoderConfig:
  """The T5EncoderConfig of a Hugging Face T5 folder's config.json.

  Raises:
    FileNotFoundError, ValueError: naming the file and what is missing or wrong.
  """
  path = pathlib.Path(folder) / "config.json"
  if not path.is_file():
    raise FileNotFoundError(f"{path} is missing: not a Hugging Face model folder")
  raw = json.loads(path.read_text())
  if raw.get("model_type") not in ("t5", "mt5", "umt5"):
    raise ValueError(f"{path}: model_type {raw.get('model_type')!r}, expected 't5'")
  proj = raw.get("feed_forward_proj", "relu")
  proj = {"gated-gelu_new": "gated-gelu"}.get(proj, proj)
  return T5EncoderConfig(
      vocab_size=int(raw["vocab_size"]), d_model=int(raw["d_model"]), d_kv=int(raw["d_kv"]),
      d_ff=int(raw["d_ff"]), num_layers=int(raw["num_layers"]), num_heads=int(raw["num_heads"]),
      relative_attention_num_buckets=int(raw.get("relative_attention_num_buckets", 32)),
      relative_attention_max_distance=int(raw.get("relative_attention_max_distance", 128)),
      feed_forward_proj=proj, layer_norm_epsilon=float(raw.get("layer_norm_epsilon", 1e-6)),
      dropout_rate=float(raw.get("dropout_rate", 0.1)))


def relative_position_buckets(query_length: int, key_length: int, num_buckets: int,
                              max_distance: int) -> np.ndarray:
  """(query_length, key_length) int32 buckets of key − query offsets, bidirectional (T5)."""
  offset = np.arange(key_length)[None, :] - np.arange(query_length)[:, None]
  half = num_buckets // 2
  buckets = (offset > 0).astype(np.int32) * half
  distance = np.abs(offset)
  exact = half // 2
  with np.errstate(divide="ignore"):
    large = exact + (np.log(np.maximum(distance, 1) / exact) / math.log(max_distance / exact)
                     * (half - exact)).astype(np.int32)
  large = np.minimum(large, half - 1)
  return (buckets + np.where(distance < exact, distance, large)).astype(np.int32)


class RMSNorm(nn.Module):
  """T5's LayerNorm: x / √(mean x² + ε) · weight (no mean, no bias)."""
  eps: float

  @nn.compact
  def __call__(self, x):
    weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), jnp.float32)
    variance = jnp.mean(jnp.square(x.astype(jnp.float32)), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(variance + self.eps) * weight


def _dense(features: int, name: str) -> nn.Dense:
  return nn.Dense(features, use_bias=False, name=name,
                  kernel_init=nn.initializers.normal(0.05))


class T5Encoder(nn.Module):
  """Token ids (B, L) and mask (B, L) → token states (B, L, d_model) float32."""
  config: T5EncoderConfig

  @nn.compact
  def __call__(self, input_ids, attention_mask, deterministic: bool = True):
    c = self.config
    embeddings = self.param("shared", nn.initializers.normal(1.0), (c.vocab_size, c.d_model),
                            jnp.float32)
    x = jnp.take(embeddings, input_ids, axis=0)
    x = nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)
    b, length = input_ids.shape
    buckets = jnp.asarray(relative_position_buckets(
        length, length, c.relative_attention_num_buckets, c.relative_attention_max_distance))
    bias_table = self.param("relative_attention_bias", nn.initializers.normal(0.05),
                            (c.relative_attention_num_buckets, c.num_heads), jnp.float32)
    position_bias = jnp.transpose(jnp.take(bias_table, buckets, axis=0), (2, 0, 1))[None]
    keep = attention_mask.astype(bool)[:, None, None, :]
    bias = jnp.where(keep, position_bias, jnp.finfo(jnp.float32).min)
    inner = c.num_heads * c.d_kv
    for i in range(c.num_layers):
      block = f"block_{i}"
      h = RMSNorm(c.layer_norm_epsilon, name=f"{block}_attention_norm")(x)

      def heads(name, y, block=block):
        return _dense(inner, f"{block}_{name}")(y).reshape(b, length, c.num_heads, c.d_kv)
      q, k, v = heads("q", h), heads("k", h), heads("v", h)
      logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) + bias
      probs = nn.Dropout(c.dropout_rate)(jax.nn.softmax(logits, axis=-1),
                                         deterministic=deterministic)
      out = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, length, inner)
      x = x + nn.Dropout(c.dropout_rate)(_dense(c.d_model, f"{block}_o")(out),
                                         deterministic=deterministic)
      h = RMSNorm(c.layer_norm_epsilon, name=f"{block}_ff_norm")(x)
      if c.feed_forward_proj == "gated-gelu":
        hidden = (nn.gelu(_dense(c.d_ff, f"{block}_wi_0")(h), approximate=True)
                  * _dense(c.d_ff, f"{block}_wi_1")(h))
      else:
        hidden = nn.relu(_dense(c.d_ff, f"{block}_wi")(h))
      hidden = nn.Dropout(c.dropout_rate)(hidden, deterministic=deterministic)
      x = x + nn.Dropout(c.dropout_rate)(_dense(c.d_model, f"{block}_wo")(hidden),
                                         deterministic=deterministic)
    x = RMSNorm(c.layer_norm_epsilon, name="final_norm")(x)
    return nn.Dropout(c.dropout_rate)(x, deterministic=deterministic)


def _hf_names(config: T5EncoderConfig) -> dict[str, tuple[str, bool]]:
  """Our parameter name → (the Hub file's tensor name, transposed)."""
  names = {"shared": ("shared.weight", False),
           "relative_attention_bias": (
               "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", False),
           "final_norm/weight": ("encoder.final_layer_norm.weight", False)}
  ff = ("wi_0", "wi_1", "wo") if config.feed_forward_proj == "gated-gelu" else ("wi", "wo")
  for i in range(config.num_layers):
    p = f"encoder.block.{i}.layer."
    for name in ("q", "k", "v", "o"):
      names[f"block_{i}_{name}/kernel"] = (f"{p}0.SelfAttention.{name}.weight", True)
    names[f"block_{i}_attention_norm/weight"] = (f"{p}0.layer_norm.weight", False)
    for name in ff:
      names[f"block_{i}_{name}/kernel"] = (f"{p}1.DenseReluDense.{name}.weight", True)
    names[f"block_{i}_ff_norm/weight"] = (f"{p}1.layer_norm.weight", False)
  return names


def load_t5_params(folder) -> tuple[T5EncoderConfig, dict]:
  """(config, params) of the encoder in a Hugging Face T5 folder (`config.json` and
  `model.safetensors`, as `T5Model`, `T5EncoderModel` or `T5ForConditionalGeneration` save
  it; the decoder's tensors are not read).

  Raises:
    FileNotFoundError, ValueError: naming the file and each missing or mis-shaped tensor.
  """
  folder = pathlib.Path(folder)
  config = t5_config_from_hf(folder)
  weights = folder / "model.safetensors"
  if not weights.is_file():
    raise FileNotFoundError(f"{weights} is missing")
  from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
  tensors = load_file(str(weights))
  if "shared.weight" not in tensors and "encoder.embed_tokens.weight" in tensors:
    tensors["shared.weight"] = tensors["encoder.embed_tokens.weight"]
  shapes = traverse_util.flatten_dict(jax.eval_shape(lambda: T5Encoder(config).init(
      jax.random.key(0), jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), jnp.int32)))["params"],
      sep="/")
  flat, problems = {}, []
  for ours, (theirs, transposed) in _hf_names(config).items():
    expected = tuple(shapes[ours].shape)
    if theirs not in tensors:
      problems.append(f"{theirs} is missing")
      continue
    value = np.asarray(tensors[theirs], np.float32)
    value = value.T if transposed else value
    if value.shape != expected:
      problems.append(f"{theirs} has shape {value.shape[::-1] if transposed else value.shape},"
                      f" expected {expected[::-1] if transposed else expected}")
      continue
    flat[ours] = value
  if problems:
    raise ValueError(f"{weights}: " + "; ".join(problems))
  params = traverse_util.unflatten_dict(flat, sep="/")
  return config, params
