"""TMR (Petrovich et al., ICCV 2023), the dense baseline, and its lexical variant (†TMR).

TMR: a frozen pre-trained text encoder's token states (DistilBERT in TMR) go through an
ACTOR-style encoder to a Gaussian (μ, log σ²) in a 256-d latent space; the motion's frames go
through another to the same space; an ACTOR-style decoder rebuilds the motion from either
side's latent vector. Retrieval compares the two μ by cosine.

†TMR (`lexical=True`): the same two encoders without the distribution tokens' Gaussian (one
token in front) and without a decoder; each side gets a lexical head over its token states
(dense, GELU, LayerNorm, vocabulary logits), SPLADE-max pooled, so the lexical vector takes
the place of the dense embedding.

Parameter groups: `text` (the frozen text encoder, loaded from `config.text.init`),
`text_actor`, `motion_actor`, and `motion_decoder` (dense) or `text_head`, `motion_head`,
`temperature` (lexical).
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from input_pipeline import dataset_kinds
from lexmo_jax.models import lexical
from lexmo_jax.models.actor import ActorDecoder, ActorEncoder
from lexmo_jax.models.lexmo import Temperature
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig


@dataclasses.dataclass(frozen=True)
class TMRConfig:
  """The frozen text encoder, the motion features' width, the ACTOR encoders' and decoder's
  sizes (TMR: latent 256, 6 layers, 4 heads, MLP 1024, dropout 0.1), and the variant."""
  text: TextEncoderConfig
  feature_dim: int
  latent_dim: int = 256
  num_layers: int = 6
  num_heads: int = 4
  mlp_dim: int = 1024
  dropout_rate: float = 0.1
  lexical: bool = False
  temperature_init: float = 0.05
  vocab_chunk_size: int = -1
  dtype: str = "float32"


def model_config(config) -> TMRConfig:
  """The TMRConfig of a `configs/baselines/tmr*.py` config."""
  from lexmo_jax.models.build import model_config as lexmo_config  # pylint: disable=g-import-not-at-top
  t = config.tmr
  return TMRConfig(
      text=lexmo_config(config).text,
      feature_dim=dataset_kinds.get_kind(config.data.kind).feature_dim,
      latent_dim=t.latent_dim, num_layers=t.num_layers, num_heads=t.num_heads,
      mlp_dim=t.mlp_dim, dropout_rate=t.dropout_rate, lexical=t.lexical,
      temperature_init=config.loss.get("temperature_init", 0.05),
      vocab_chunk_size=config.model.get("vocab_chunk_size", -1), dtype=config.dtype)


class TMRModel(nn.Module):
  """TMR's encoders and decoder (or †TMR's lexical heads); `__call__(batch)` only creates the
  parameters at `init`."""
  config: TMRConfig

  def setup(self):  # pylint: disable=missing-function-docstring
    c = self.config
    dtype = jnp.dtype(c.dtype)
    actor = dict(latent_dim=c.latent_dim, num_layers=c.num_layers, num_heads=c.num_heads,
                 mlp_dim=c.mlp_dim, dropout_rate=c.dropout_rate, vae=not c.lexical, dtype=dtype)
    self.text = TextEncoder(c.text)
    self.text_actor = ActorEncoder(**actor)
    self.motion_actor = ActorEncoder(**actor)
    if c.lexical:
      self.text_head = lexical.LexicalHead(c.text.vocab_size, tied=False, dtype=dtype)
      self.motion_head = lexical.LexicalHead(c.text.vocab_size, tied=False, dtype=dtype)
      self.temperature = Temperature(c.temperature_init)
    else:
      self.motion_decoder = ActorDecoder(c.feature_dim, c.latent_dim, c.num_layers, c.num_heads,
                                         c.mlp_dim, c.dropout_rate, dtype)

  def _text_states(self, input_ids, attention_mask, deterministic):
    # The text encoder is frozen (TMR reads DistilBERT's features; no gradient reaches it).
    h_bld = jax.lax.stop_gradient(self.text(input_ids, attention_mask, True))
    return self.text_actor(h_bld, attention_mask, deterministic)

  def _motion_states(self, motion, motion_mask, deterministic):
    return self.motion_actor(motion, motion_mask, deterministic)

  def text_distribution(self, input_ids, attention_mask, deterministic=True):
    """(μ, log σ²) of captions (B, L): ((B, latent), (B, latent)) float32."""
    h, _ = self._text_states(input_ids, attention_mask, deterministic)
    return h[:, 0], h[:, 1]

  def motion_distribution(self, motion, motion_mask, deterministic=True):
    """(μ, log σ²) of motions (B, T, F): ((B, latent), (B, latent)) float32."""
    h, _ = self._motion_states(motion, motion_mask, deterministic)
    return h[:, 0], h[:, 1]

  def decode(self, z_bd, motion_mask, deterministic=True):
    """Motion features (B, T, F) rebuilt from latent vectors (B, latent)."""
    return self.motion_decoder(z_bd, motion_mask, deterministic)

  def text_max_logits(self, input_ids, attention_mask, deterministic=True):
    """†TMR: max over the caption's states of the text head's logits. Returns (B, V)."""
    h, mask = self._text_states(input_ids, attention_mask, deterministic)
    return self.text_head(h, None, mask, self.config.vocab_chunk_size)

  def motion_max_logits(self, motion, motion_mask, deterministic=True):
    """†TMR: max over the motion's states of the motion head's logits. Returns (B, V)."""
    h, mask = self._motion_states(motion, motion_mask, deterministic)
    return self.motion_head(h, None, mask, self.config.vocab_chunk_size)

  def logit_scale(self):
    return self.temperature()

  def embed_text(self, input_ids, attention_mask, vocab_mask_v=None):
    """What retrieval compares (`lexmo_jax.retrieval_encoders`): μ (B, latent) of TMR, or the
    lexical vector (B, V) of †TMR."""
    if self.config.lexical:
      return lexical.lexical_vector(self.text_max_logits(input_ids, attention_mask),
                                    vocab_mask_v)
    return self.text_distribution(input_ids, attention_mask)[0]

  def embed_motion(self, motion, motion_mask, vocab_mask_v=None):
    """As `embed_text`, for motions (B, T, F)."""
    if self.config.lexical:
      return lexical.lexical_vector(self.motion_max_logits(motion, motion_mask), vocab_mask_v)
    return self.motion_distribution(motion, motion_mask)[0]

  def __call__(self, batch, deterministic=True):
    ids, am = batch["input_ids"], batch["attention_mask"]
    # The text encoder's head is part of the checkpoint the frozen encoder is loaded from.
    self.text.mlm_logits(self.text(ids[:, :1], am[:, :1], True))
    if self.config.lexical:
      self.logit_scale()
      return (self.text_max_logits(ids, am, deterministic),
              self.motion_max_logits(batch["motion"], batch["motion_mask"], deterministic))
    mu, _ = self.motion_distribution(batch["motion"], batch["motion_mask"], deterministic)
    self.text_distribution(ids, am, deterministic)
    return self.decode(mu, batch["motion_mask"], deterministic)
