"""The text encoder: DistilBERT / BERT-family transformer with its masked-LM (lexical) head.

Post-LN blocks, learned absolute positions, (BERT only) token-type embeddings, and an MLM
head whose vocabulary projection is tied to the word embeddings E. Hugging Face checkpoints
come in and go out through `lexmo_jax.models.hf_checkpoint`.
"""
from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from lexmo_jax.models.lexical import LexicalHead
from lexmo_jax.models.transformer import Dropout, TransformerStack, constrain, layer_norm

MODEL_TYPES = ("distilbert", "bert")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
  """A DistilBERT or BERT text encoder's sizes, as a Hugging Face config.json states them
  (vocab_size, hidden_size, layers, heads, MLP width, max_position, type_vocab_size)."""
  model_type: str = "distilbert"
  vocab_size: int = 30522
  hidden_size: int = 768
  num_layers: int = 6
  num_heads: int = 12
  mlp_dim: int = 3072
  max_position: int = 512
  type_vocab_size: int = 0  # 2 for BERT, 0 for DistilBERT (no token-type embeddings)
  dropout_rate: float = 0.1
  layer_norm_eps: float = 1e-12
  # Compute dtype of the activations; parameters always stay float32.
  dtype: str = "float32"
  # Standard deviation of freshly initialised embeddings (BERT's initializer_range, 0.02).
  # A checkpoint loaded from Hugging Face brings its own weights.
  embedding_init_std: float = 0.02

  def __post_init__(self):
    if self.model_type not in MODEL_TYPES:
      raise ValueError(f"unknown text model type {self.model_type!r}; expected one of {MODEL_TYPES}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"text hidden_size {self.hidden_size} is not divisible by "
                       f"num_heads {self.num_heads}")
    if self.dtype not in COMPUTE_DTYPES:
      raise ValueError(f"unknown text compute dtype {self.dtype!r}; expected one of "
                       f"{COMPUTE_DTYPES}")
    if self.model_type == "distilbert" and self.type_vocab_size:
      raise ValueError("DistilBERT has no token-type embeddings: type_vocab_size must be 0, "
                       f"got {self.type_vocab_size}")


class TextEncoder(nn.Module):
  """Token ids → token states H_t (B, L, D) and per-token vocabulary logits Z (B, L, V)."""
  config: TextEncoderConfig

  def setup(self):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    init = nn.initializers.normal(stddev=c.embedding_init_std)
    self.word_embeddings = self.param(
        "word_embeddings", nn.with_logical_partitioning(init, ("vocab", "embed")),
        (c.vocab_size, c.hidden_size), jnp.float32)
    self.position_embeddings = self.param(
        "position_embeddings", nn.with_logical_partitioning(init, ("position", "embed")),
        (c.max_position, c.hidden_size), jnp.float32)
    if c.type_vocab_size:
      self.token_type_embeddings = self.param(
          "token_type_embeddings", nn.with_logical_partitioning(init, ("token_type", "embed")),
          (c.type_vocab_size, c.hidden_size), jnp.float32)
    self.embedding_norm = layer_norm("embedding_norm", c.layer_norm_eps, dtype)
    self.embedding_dropout = Dropout(c.dropout_rate)
    self.encoder = TransformerStack(
        c.num_layers, c.num_heads, c.mlp_dim, c.dropout_rate, pre_norm=False,
        layer_norm_eps=c.layer_norm_eps, dtype=dtype)
    self.mlm_head = LexicalHead(c.vocab_size, tied=True, layer_norm_eps=c.layer_norm_eps,
                                dtype=dtype)

  def embed(self, input_ids_bl, deterministic: bool = True, token_type_ids_bl=None):
    """Word + position (+ token type) embeddings, LayerNorm, dropout. Returns (B, L, D)."""
    length = input_ids_bl.shape[1]
    if length > self.config.max_position:
      raise ValueError(f"text length {length} exceeds max_position {self.config.max_position}")
    x_bld = jnp.take(self.word_embeddings, input_ids_bl, axis=0)
    x_bld = x_bld + self.position_embeddings[None, :length]
    if self.config.type_vocab_size:
      if token_type_ids_bl is None:
        token_type_ids_bl = jnp.zeros_like(input_ids_bl)
      x_bld = x_bld + jnp.take(self.token_type_embeddings, token_type_ids_bl, axis=0)
    elif token_type_ids_bl is not None:
      raise ValueError(f"token_type_ids were given, but the {self.config.model_type} text "
                       "encoder has no token-type embeddings (type_vocab_size=0)")
    # Embeddings are summed in float32; the compute dtype starts at the LayerNorm.
    x_bld = self.embedding_norm(x_bld.astype(jnp.dtype(self.config.dtype)))
    x_bld = self.embedding_dropout(x_bld, deterministic=deterministic)
    return constrain(x_bld, ("batch", "length", "embed"))

  def __call__(self, input_ids_bl, attention_mask_bl, deterministic: bool = True,
               token_type_ids_bl=None):
    """Token states H_t. Returns (B, L, D) in the compute dtype."""
    x_bld = self.embed(input_ids_bl, deterministic, token_type_ids_bl)
    return self.encoder(x_bld, attention_mask_bl.astype(bool), deterministic)

  def mlm_logits(self, h_bld):
    """Per-token vocabulary logits Z. Returns (B, L, V) float32."""
    return self.mlm_head(h_bld, self.word_embeddings)

  def max_logits(self, h_bld, mask_bl, chunk_size: int = -1):
    """max over the valid tokens of Z, `chunk_size` words at a time without holding Z
    (`lexical_pooling.max_logits`: 0 = whole, -1 = the backend's best). Returns (B, V)
    float32."""
    return self.mlm_head(h_bld, self.word_embeddings, mask_bl.astype(bool), chunk_size)

  def token_logits(self, input_ids_bl, attention_mask_bl, deterministic: bool = True,
                   token_type_ids_bl=None):
    """Token ids straight to Z. Returns (B, L, V) float32."""
    return self.mlm_logits(
        self(input_ids_bl, attention_mask_bl, deterministic, token_type_ids_bl))

  def embedding_matrix(self):
    """The word-embedding matrix E. Returns (V, D)."""
    return self.word_embeddings


@functools.partial(jax.jit, static_argnums=0)
def init_params(config: TextEncoderConfig, rng: jax.Array) -> dict:
  """Fresh parameters of the whole encoder, MLM head included, boxed with logical names."""
  # Jitted: run op by op, the initialisers cost seconds of dispatch on CPU. Initialisation
  # only needs shapes: activation constraints (on a batch of one) are off, so that it also
  # runs inside a training mesh (a HF checkpoint loaded as a phase starts).
  ids_bl = jnp.zeros((1, 2), jnp.int32)
  with nn.logical_axis_rules(()):
    return TextEncoder(config).init(rng, ids_bl, jnp.ones_like(ids_bl),
                                    method=TextEncoder.token_logits)["params"]


def abstract_params(config: TextEncoderConfig) -> dict:
  """Shapes and dtypes of `init_params`' tree, unboxed (jax.ShapeDtypeStruct leaves)."""
  boxed = jax.eval_shape(lambda: init_params(config, jax.random.PRNGKey(0)))
  # Unboxed without sharding constraints: there are only shapes here, even inside a mesh.
  return jax.tree.map(lambda x: x.unbox(apply_constraint=False), boxed,
                      is_leaf=lambda x: isinstance(x, nn.Partitioned))


def from_pretrained(path, **kwargs):
  """Loads a Hugging Face folder; see `hf_checkpoint.from_pretrained`."""
  # Imported here: hf_checkpoint builds on this module.
  from lexmo_jax.models import hf_checkpoint  # pylint: disable=g-import-not-at-top
  return hf_checkpoint.from_pretrained(path, **kwargs)
