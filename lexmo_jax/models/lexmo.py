"""The whole motion–language model: every part the four phases train, in one parameter tree.

Top-level parameter groups (a phase trains a subset of them):
  text            text encoder and its tied lexical (MLM) head
  text_decoder    weak decoder of the lexicon bottleneck
  motion          motion encoder
  motion_head     motion lexical head (own projection; starts as a copy of the text head)
  motion_decoder  CMMM masked-token decoder
  motion_projection  CMMM contrastive projection
  temperature     LexCMLP's learnable log inverse temperature
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax.numpy as jnp

from input_pipeline import dataset_kinds
from lexmo_jax.models import lexical
from lexmo_jax.models.motion_encoder import (MaskedTokenDecoder, MotionEncoder,
                                             MotionEncoderConfig, ProjectionHead)
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lexmo_jax.models.weak_decoder import WeakDecoder

PARAM_GROUPS = ("text", "text_decoder", "motion", "motion_head", "motion_decoder",
                "motion_projection", "temperature")


@dataclasses.dataclass(frozen=True)
class LexMoConfig:
  """Sizes of the whole model: both encoders, the weak decoder (layers), CMMM's motion decoder
  (hidden width, layers) and projection (width), LexCMLP's starting temperature τ, and how
  many words at a time the lexical heads' max-pooling computes (`lexical_pooling`)."""
  text: TextEncoderConfig
  motion: MotionEncoderConfig
  decoder_layers: int = 2
  motion_decoder_hidden: int = 256
  motion_decoder_layers: int = 1
  projection_dim: int = 256
  temperature_init: float = 0.05
  # Words per chunk of the fused max-pooling of vocabulary logits (0 = hold all of them,
  # -1 = the backend's best: `lexical_pooling.max_logits`).
  vocab_chunk_size: int = -1


class Temperature(nn.Module):
  """LexCMLP's learnable logit scale 1/τ, stored as log(1/τ) (a scalar)."""
  init_value: float

  @nn.compact
  def __call__(self):
    log_scale = self.param("log_scale", nn.with_logical_partitioning(
        nn.initializers.constant(math.log(1.0 / self.init_value)), ()), (), jnp.float32)
    return jnp.exp(log_scale)


class LexMo(nn.Module):
  """Text encoder + lexical head, weak decoder, motion encoder + lexical head, CMMM's masked
  token decoder and projection, and the temperature. Phases call its methods through
  `PhaseContext.apply`; `__call__` only creates every parameter at `init`."""
  config: LexMoConfig

  def setup(self):  # pylint: disable=missing-function-docstring
    c = self.config
    self.text = TextEncoder(c.text)
    self.text_decoder = WeakDecoder(
        c.text.vocab_size, c.decoder_layers, c.text.num_heads, c.text.mlp_dim,
        c.text.dropout_rate, c.text.layer_norm_eps, jnp.dtype(c.text.dtype))
    self.motion = MotionEncoder(c.motion)
    self.motion_head = lexical.LexicalHead(c.text.vocab_size, tied=False,
                                           layer_norm_eps=c.text.layer_norm_eps,
                                           dtype=jnp.dtype(c.motion.dtype))
    self.motion_decoder = MaskedTokenDecoder(
        self.token_dim, c.motion_decoder_hidden, c.motion_decoder_layers,
        max(1, c.motion_decoder_hidden // 64), c.motion.dtype)
    self.motion_projection = ProjectionHead(c.projection_dim, c.motion.dtype)
    self.temperature = Temperature(c.temperature_init)

  @property
  def token_dim(self) -> int:
    """Values per raw motion token (P)."""
    return tokenize_dim(self.config.motion)

  # Text side.
  def text_states(self, input_ids, attention_mask, deterministic=True):
    """Token states of captions (B, L) int ids → (B, L, D_text)."""
    return self.text(input_ids, attention_mask, deterministic)

  def text_logits(self, input_ids, attention_mask, deterministic=True):
    """Per-token vocabulary logits of a caption. Returns (B, L, V)."""
    return self.text.mlm_logits(self.text(input_ids, attention_mask, deterministic))

  def text_max_logits(self, input_ids, attention_mask, deterministic=True):
    """max over a caption's valid tokens of its logits Z, without holding Z. Returns (B, V)."""
    h = self.text(input_ids, attention_mask, deterministic)
    return self.text.max_logits(h, attention_mask, self.config.vocab_chunk_size)

  def decode(self, b_bd, decoder_ids, attention_mask, deterministic=True):
    """Weak decoder's logits for a masked caption given the bottleneck b. Returns (B, L, V).

    b = a·E is a mixture of word embeddings, far smaller than the normalised token
    embeddings it sits among (the more words a spreads over, the smaller); it enters through
    the same embedding LayerNorm, which keeps only its direction, or the decoder could not
    tell it from nothing. (Adding the first position's embedding before the LayerNorm, as a
    token of that slot would get, drowns b's direction in the position's.)
    """
    embedded = self.text.embed(decoder_ids, deterministic)
    b_bd = self.text.embedding_norm(b_bd.astype(embedded.dtype))
    return self.text_decoder(b_bd, embedded, attention_mask, self.text.embedding_matrix(),
                             deterministic)

  def word_embeddings(self):
    """The word-embedding matrix E (V, D_text) that the text head and the bottleneck share."""
    return self.text.embedding_matrix()

  # Motion side.
  def motion_states(self, motion, motion_mask, masked_tokens=None, deterministic=True):
    """Token states of motions (B, T, F) → ((B, 1+N, D_motion), mask (B, 1+N)); tokens set in
    `masked_tokens` (B, N) are replaced by the mask token (CMMM)."""
    return self.motion(motion, motion_mask, masked_tokens, deterministic)

  def motion_max_logits(self, motion, motion_mask, deterministic=True):
    """max over a motion's valid tokens ([CLS] included) of its logits Z, without holding Z.
    Returns (B, V)."""
    h, mask = self.motion(motion, motion_mask, None, deterministic)
    return self.motion_head(h, None, mask, self.config.vocab_chunk_size)

  def reconstruct(self, h_bnd, mask_bn, deterministic=True):
    """Raw token values predicted from token states without [CLS]. Returns (B, N, P)."""
    return self.motion_decoder(h_bnd[:, 1:], mask_bn[:, 1:], deterministic)

  def project(self, pooled_bd):
    """CMMM's projection of pooled motion states (B, D_motion) → (B, projection_dim)."""
    return self.motion_projection(pooled_bd)

  def logit_scale(self):
    """1/τ, a scalar."""
    return self.temperature()

  def __call__(self, batch, deterministic=True):
    """Touches every part once, so that `init` creates the whole parameter tree."""
    ids, am = batch["input_ids"], batch["attention_mask"]
    text_logits = self.text_logits(ids, am, deterministic)
    _, b = lexical.bottleneck(lexical.masked_max(text_logits, am.astype(bool)),
                              self.word_embeddings())
    dec = self.decode(b, ids, am, deterministic)
    masked = jnp.zeros((batch["motion"].shape[0], self.config.motion.num_tokens), bool)
    h, mask = self.motion_states(batch["motion"], batch["motion_mask"], masked, deterministic)
    recon = self.reconstruct(h, mask, deterministic)
    proj = self.project(h[:, 0])
    motion_logits = self.motion_head(h)
    return text_logits, dec, recon, proj, motion_logits, self.logit_scale()


def tokenize_dim(m: MotionEncoderConfig) -> int:
  """Values per raw motion token (P)."""
  body = dataset_kinds.get_kind(m.kind)
  if m.tokenizer == "frames":
    return m.frames_per_token * body.feature_dim
  return m.patch_frames * m.points_per_chain * 3


