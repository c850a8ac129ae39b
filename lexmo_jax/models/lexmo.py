"""The whole motion–language model: every part the four phases train, in one parameter tree.

Top-level parameter groups (a phase trains a subset of them):
  text            text encoder and its tied lexical (MLM) head
  text_decoder    weak decoder of the lexicon bottleneck
  motion          motion encoder
  motion_head     motion lexical head (own projection; starts as a copy of the text head)
  motion_decoder  CMMM masked-token decoder
  motion_projection  CMMM contrastive projection
  temperature     LexCMLP's learnable log inverse temperature
  caption_decoder the captioning task's text decoder (only when config.caption_layers > 0)
  text_condition, motion_condition  the conditioning task's projections of the pooled text
                  and motion states to a generator's condition width (only when
                  config.condition_dim > 0)
"""
from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from input_pipeline import dataset_kinds
from lexmo_jax.models import lexical
from lexmo_jax.models.caption_decoder import CaptionDecoder
from lexmo_jax.models.motion_encoder import (MaskedTokenDecoder, MotionEncoder,
                                             MotionEncoderConfig, ProjectionHead)
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lexmo_jax.models.transformer import dense
from lexmo_jax.models.weak_decoder import WeakDecoder

PARAM_GROUPS = ("text", "text_decoder", "motion", "motion_head", "motion_decoder",
                "motion_projection", "temperature", "caption_decoder",
                "text_condition", "motion_condition")


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
  # The captioner's decoder (`caption_decoder`): layers (0 = none), what conditions it and
  # how many of the motion's heaviest words it reads.
  caption_layers: int = 0
  caption_condition: str = "tokens+words"
  caption_words: int = 16
  caption_dropout_rate: float = 0.1
  # The conditioning task's projections (0 = none): the width a text-to-motion generator
  # reads (CLIP ViT-B/32's 512 in the field).
  condition_dim: int = 0


class Temperature(nn.Module):
  """LexCMLP's learnable logit scale 1/τ, stored as log(1/τ) (a scalar)."""
  init_value: float

  @nn.compact
  def __call__(self):
    log_scale = self.param("log_scale", nn.with_logical_partitioning(
        nn.initializers.constant(math.log(1.0 / self.init_value)), ()), (), jnp.float32)
    return jnp.exp(log_scale)


class ConditionProjection(nn.Module):
  """A linear map of pooled states (B, D) → (B, features), float32 (parameters
  `projection/kernel` (D, features) and `projection/bias`)."""
  features: int

  @nn.compact
  def __call__(self, x_bd):
    return dense(self.features, ("embed", "embed_proj"), "projection", jnp.float32)(
        x_bd.astype(jnp.float32))


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
    if c.caption_layers:
      self.caption_decoder = CaptionDecoder(
          c.text.vocab_size, c.text.hidden_size, c.caption_layers, c.text.num_heads,
          c.text.mlp_dim, c.caption_condition, c.caption_dropout_rate, c.text.layer_norm_eps,
          jnp.dtype(c.text.dtype))
    if c.condition_dim:
      self.text_condition = ConditionProjection(c.condition_dim)
      self.motion_condition = ConditionProjection(c.condition_dim)

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

  # Captioning.
  def caption_memory(self, motion, motion_mask, vocab_mask_v=None, deterministic=True):
    """What the caption decoder reads of motions (B, T, F): their token states and their
    `caption_words` heaviest words (`CaptionDecoder.memory`). Returns ((B, S, D_text) memory,
    (B, S) bool mask)."""
    h_bnd, mask_bn = self.motion(motion, motion_mask, None, deterministic)
    embeddings_vd = self.text.embedding_matrix()
    k = min(self.config.caption_words, embeddings_vd.shape[0])
    if "words" in self.config.caption_condition:
      z_bv = self.motion_head(h_bnd, None, mask_bn, self.config.vocab_chunk_size)
      weights_bk, ids_bk = jax.lax.top_k(lexical.lexical_vector(z_bv, vocab_mask_v), k)
    else:
      weights_bk = jnp.zeros((h_bnd.shape[0], 0), jnp.float32)
      ids_bk = jnp.zeros((h_bnd.shape[0], 0), jnp.int32)
    return self.caption_decoder.memory(h_bnd, mask_bn, jnp.take(embeddings_vd, ids_bk, axis=0),
                                       weights_bk)

  def caption_logits(self, memory_bsd, memory_mask_bs, input_ids, attention_mask,
                     deterministic=True, position=None, vocab_ids_k=None):
    """The caption decoder's next-word-piece logits for caption prefixes (B, L) given the
    memory of `caption_memory`. Returns (B, L, V), position t predicting piece t + 1; or
    (B, V) at `position` alone (decoding); over the K pieces of `vocab_ids_k` if given."""
    embedded = self.text.embed(input_ids, deterministic)
    return self.caption_decoder(embedded, attention_mask, memory_bsd, memory_mask_bs,
                                self.text.embedding_matrix(), deterministic, position,
                                vocab_ids_k)

  # Conditioning of text-to-motion generators.
  def text_pooled(self, input_ids, attention_mask, deterministic=True):
    """Mean of a caption's token states over its valid tokens ([CLS] and [SEP] included)
    and the token states: ((B, D_text), (B, L, D_text)), float32."""
    h_bld = self.text(input_ids, attention_mask, deterministic).astype(jnp.float32)
    mask_bl1 = attention_mask[..., None].astype(jnp.float32)
    return (h_bld * mask_bl1).sum(1) / jnp.maximum(mask_bl1.sum(1), 1.0), h_bld

  def motion_pooled(self, motion, motion_mask, deterministic=True):
    """A motion's [CLS] state (B, D_motion), float32."""
    h_bnd, _ = self.motion(motion, motion_mask, None, deterministic)
    return h_bnd[:, 0].astype(jnp.float32)

  def condition_text(self, pooled_bd):
    """The conditioning projection of pooled text states (B, D_text) → (B, condition_dim)."""
    return self.text_condition(pooled_bd)

  def condition_motion(self, pooled_bd):
    """The conditioning projection of pooled motion states (B, D_motion) → (B, condition_dim)."""
    return self.motion_condition(pooled_bd)

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
    if self.config.caption_layers:
      memory, memory_mask = self.caption_memory(batch["motion"], batch["motion_mask"],
                                                deterministic=deterministic)
      self.caption_logits(memory, memory_mask, ids, am, deterministic)
    if self.config.condition_dim:
      self.condition_text(self.text_pooled(ids, am, deterministic)[0])
      self.condition_motion(h[:, 0].astype(jnp.float32))
    return text_logits, dec, recon, proj, motion_logits, self.logit_scale()


def tokenize_dim(m: MotionEncoderConfig) -> int:
  """Values per raw motion token (P)."""
  body = dataset_kinds.get_kind(m.kind)
  if m.tokenizer == "frames":
    return m.frames_per_token * body.feature_dim
  return m.patch_frames * m.points_per_chain * 3


