"""The weak decoder of the lexicon bottleneck.

Two transformer layers read the embedded, heavily masked caption whose first ([CLS]) slot is
replaced by the bottleneck b. Being weak, it can only rebuild the caption if b (and so the
word distribution a) carries the caption's meaning.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lexmo_jax.models.lexical import LexicalHead
from lexmo_jax.models.transformer import Dtype, TransformerStack


class WeakDecoder(nn.Module):
  """LexMLM's weak decoder: a shallow transformer that rebuilds a masked caption from the
  bottleneck b in the first slot; logits (B, L, V) through the tied word embeddings."""
  vocab_size: int
  num_layers: int = 2
  num_heads: int = 12
  mlp_dim: int = 3072
  dropout_rate: float = 0.1
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, b_bd, embedded_bld, attention_mask_bl, embedding_vd,
               deterministic: bool = True):
    """Returns the caption's vocabulary logits (B, L, V)."""
    x_bld = embedded_bld.at[:, 0].set(b_bd.astype(embedded_bld.dtype))
    mask_bl = jnp.asarray(attention_mask_bl, bool).at[:, 0].set(True)
    x_bld = TransformerStack(
        self.num_layers, self.num_heads, self.mlp_dim, self.dropout_rate, pre_norm=False,
        layer_norm_eps=self.layer_norm_eps, dtype=self.dtype, name="layers")(
            x_bld, mask_bl, deterministic)
    return LexicalHead(self.vocab_size, tied=True, layer_norm_eps=self.layer_norm_eps,
                       dtype=self.dtype, name="head")(x_bld, embedding_vd)
