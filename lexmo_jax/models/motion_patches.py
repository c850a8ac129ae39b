"""MotionPatches (Yu et al., CVPR 2024), the dense baseline: a ViT over motion patches and
DistilBERT, each followed by a projection head to a shared 256-d space, compared by cosine.

As MotionPatches' `ClipModel` reads them: the text side is the [CLS] token's state, the
motion side the mean of the patch tokens' states (timm's `global_pool="avg"`, [CLS] left
out); each projection head is Linear → GELU → Linear → dropout, plus the first Linear's
output, then LayerNorm. The encoders are lexmo_jax's own (`TextEncoder`, `MotionEncoder`), so
the same checkpoints and motion tokenizers serve the baseline and the method.

The text tower may instead be a T5 encoder (`lexmo_jax.models.t5_encoder`; the paper's Table 5
ablation, T5-Small … T5-XXL in place of DistilBERT). T5 has no [CLS] token: its caption
feature is the mean of the token states over the real tokens (as sentence-T5's encoder
pooling), then the same projection head.

Parameter groups: `text`, `motion`, `text_projection`, `motion_projection`.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from lexmo_jax.models.motion_encoder import MotionEncoder, MotionEncoderConfig
from lexmo_jax.models.t5_encoder import T5Encoder, T5EncoderConfig
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig
from lexmo_jax.models.transformer import Dropout, dense, layer_norm


@dataclasses.dataclass(frozen=True)
class MotionPatchesConfig:
  """Both encoders, the shared space's width and the heads' dropout (MotionPatches: 256,
  0.5 on HumanML3D, 0 on KIT-ML)."""
  text: TextEncoderConfig | T5EncoderConfig
  motion: MotionEncoderConfig
  projection_dim: int = 256
  dropout_rate: float = 0.5


def model_config(config) -> MotionPatchesConfig:
  """The MotionPatchesConfig of a `configs/baselines/motionpatches.py` config."""
  from lexmo_jax.models import build  # pylint: disable=g-import-not-at-top
  text = t5_config(config) if config.text.model_type == "t5" else build.text_config(config)
  return MotionPatchesConfig(text, build.motion_config(config), config.motionpatches.projection_dim,
                             config.motionpatches.dropout_rate)


def t5_config(config) -> T5EncoderConfig:
  """The T5 text tower a config's `text` section (with its `t5` subsection) describes."""
  t = config.text
  return T5EncoderConfig(
      vocab_size=t.vocab_size, d_model=t.hidden_size, d_kv=t.t5.d_kv, d_ff=t.mlp_dim,
      num_layers=t.num_layers, num_heads=t.num_heads,
      relative_attention_num_buckets=t.t5.relative_attention_num_buckets,
      relative_attention_max_distance=t.t5.relative_attention_max_distance,
      feed_forward_proj=t.t5.feed_forward_proj, layer_norm_epsilon=t.layer_norm_eps,
      dropout_rate=t.dropout_rate)


class ProjectionHead(nn.Module):
  """MotionPatches' projection head: (B, D) → (B, K) float32."""
  features: int
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x_bd, deterministic: bool = True):
    projected = dense(self.features, ("embed", "embed_proj"), "projection", jnp.float32)(
        x_bd.astype(jnp.float32))
    x = dense(self.features, ("embed_proj", "embed_out"), "fc", jnp.float32)(
        nn.gelu(projected, approximate=False))
    x = Dropout(self.dropout_rate)(x, deterministic=deterministic) + projected
    return layer_norm("norm", 1e-5, jnp.float32)(x)


class MotionPatchesModel(nn.Module):
  """Text and motion towers with their projection heads; `__call__(batch)` only creates the
  parameters at `init`."""
  config: MotionPatchesConfig

  def setup(self):  # pylint: disable=missing-function-docstring
    c = self.config
    self.t5 = isinstance(c.text, T5EncoderConfig)
    self.text = T5Encoder(c.text) if self.t5 else TextEncoder(c.text)
    self.motion = MotionEncoder(c.motion)
    self.text_projection = ProjectionHead(c.projection_dim, c.dropout_rate)
    self.motion_projection = ProjectionHead(c.projection_dim, c.dropout_rate)

  def text_features(self, input_ids, attention_mask, deterministic=True):
    """The projected [CLS] state of captions (B, L) (T5: the mean state of the real tokens).
    Returns (B, K) float32, not normalised."""
    h_bld = self.text(input_ids, attention_mask, deterministic)
    if self.t5:
      weights = attention_mask[..., None].astype(jnp.float32)
      pooled = (h_bld.astype(jnp.float32) * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)
    else:
      pooled = h_bld[:, 0]
    return self.text_projection(pooled, deterministic)

  def motion_features(self, motion, motion_mask, deterministic=True):
    """The projected mean of a motion's valid token states ([CLS] left out). Returns (B, K)
    float32, not normalised."""
    h_bnd, mask_bn = self.motion(motion, motion_mask, None, deterministic)
    weights = mask_bn[:, 1:, None].astype(jnp.float32)
    pooled = (h_bnd[:, 1:].astype(jnp.float32) * weights).sum(1) / jnp.maximum(
        weights.sum(1), 1.0)
    return self.motion_projection(pooled, deterministic)

  def embed_text(self, input_ids, attention_mask, vocab_mask_v=None):
    """What retrieval compares (`lexmo_jax.retrieval_encoders`): (B, K)."""
    del vocab_mask_v
    return self.text_features(input_ids, attention_mask)

  def embed_motion(self, motion, motion_mask, vocab_mask_v=None):
    del vocab_mask_v
    return self.motion_features(motion, motion_mask)

  def __call__(self, batch, deterministic=True):
    ids, am = batch["input_ids"], batch["attention_mask"]
    if not self.t5:  # DistilBERT's MLM head belongs to the checkpoints it is loaded from.
      self.text.mlm_logits(self.text(ids[:, :1], am[:, :1], True))
    return (self.text_features(ids, am, deterministic),
            self.motion_features(batch["motion"], batch["motion_mask"], deterministic))
