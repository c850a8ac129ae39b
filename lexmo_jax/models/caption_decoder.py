"""The motion captioner's text decoder.

A transformer decoder (causal self-attention, cross-attention, MLP; post-LN as BERT) writes a
caption word piece by word piece, reading a memory made from the motion:

  tokens  the motion encoder's token states ([CLS] included), projected to the text width;
  words   the K heaviest words of the motion's lexical vector, each slot the word's embedding
          (the text side's E) plus a projection of its weight: the method's readable handle.

`condition` chooses "tokens", "words" or "tokens+words". Input embeddings and the output
head's projection are the text side's word embeddings E (tied, as in BERT's MLM head), so the
decoder writes in the vocabulary the lexical space is made of.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lexmo_jax.models.lexical import LexicalHead
from lexmo_jax.models.transformer import CrossAttentionBlock, Dtype, dense, layer_norm

CONDITIONS = ("tokens", "words", "tokens+words")


def causal_mask(attention_mask_bl) -> jax.Array:
  """(B, L, L) bool: position t attends to the valid positions s ≤ t."""
  length = attention_mask_bl.shape[1]
  lower = jnp.tril(jnp.ones((length, length), bool))
  return lower[None] & attention_mask_bl.astype(bool)[:, None, :]


class CaptionDecoder(nn.Module):
  """Decoder logits (B, L, V) of caption prefixes given a motion's memory."""
  vocab_size: int
  width: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  condition: str = "tokens+words"
  dropout_rate: float = 0.0
  layer_norm_eps: float = 1e-12
  dtype: Dtype = jnp.float32

  def setup(self):
    if self.condition not in CONDITIONS:
      raise ValueError(f"condition {self.condition!r} is not one of {CONDITIONS}")
    d, eps = self.width, self.layer_norm_eps
    if "tokens" in self.condition:
      self.token_projection = dense(d, ("embed_proj", "embed"), "token_projection", self.dtype)
      self.token_norm = layer_norm("token_norm", eps, self.dtype)
    if "words" in self.condition:
      self.weight_projection = dense(d, ("embed_proj", "embed"), "weight_projection",
                                     self.dtype)
      self.word_norm = layer_norm("word_norm", eps, self.dtype)
    self.layers = [CrossAttentionBlock(self.num_heads, self.mlp_dim, self.dropout_rate, eps,
                                       self.dtype, name=f"layer_{i}")
                   for i in range(self.num_layers)]
    self.head = LexicalHead(self.vocab_size, tied=True, layer_norm_eps=eps, dtype=self.dtype)

  def memory(self, motion_states_bnd, motion_mask_bn, word_embeddings_bkd, word_weights_bk):
    """The memory the decoder attends to. Returns ((B, S, D), mask (B, S) bool).

    Args:
      motion_states_bnd: (B, N, D_motion) the motion encoder's token states.
      motion_mask_bn: (B, N) bool, its valid tokens.
      word_embeddings_bkd: (B, K, D) embeddings of the motion's K heaviest words.
      word_weights_bk: (B, K) their weights in the lexical vector (≥ 0; 0 = no word).
    """
    slots, masks = [], []
    if "tokens" in self.condition:
      tokens = self.token_projection(motion_states_bnd.astype(self.dtype))
      slots.append(self.token_norm(tokens))
      masks.append(motion_mask_bn.astype(bool))
    if "words" in self.condition:
      # The weight enters through a learnt direction added to the word's embedding.
      weight = self.weight_projection(word_weights_bk[..., None].astype(self.dtype))
      slots.append(self.word_norm(word_embeddings_bkd.astype(self.dtype) + weight))
      masks.append(word_weights_bk > 0)
    memory = jnp.concatenate(slots, axis=1)
    # A motion without any weighted word (and no token slots) still has a slot to attend to.
    mask = jnp.concatenate(masks, axis=1).at[:, 0].set(True)
    return memory, mask

  def __call__(self, embedded_bld, attention_mask_bl, memory_bsd, memory_mask_bs,
               embedding_vd, deterministic: bool = True, position=None, vocab_ids_k=None):
    """Next-word-piece logits at every position of the (embedded) caption prefix.

    Args:
      embedded_bld: (B, L, D) the caption's input embeddings (text side's `embed`).
      attention_mask_bl: (B, L) its valid positions.
      memory_bsd, memory_mask_bs: the motion memory (`memory`).
      embedding_vd: (V, D) the word embeddings the output head is tied to.
      position: None, or a (traced) index t: only that position's logits are formed.
      vocab_ids_k: None, or (K,) the word pieces the decoder may write (its output
        vocabulary); logits are then over those K pieces.
    Returns:
      (B, L, V) float32 logits, position t predicting word piece t + 1; (B, V) at
      `position`; K in place of V with `vocab_ids_k`.
    """
    x_bld = embedded_bld
    self_mask = causal_mask(attention_mask_bl)
    for layer in self.layers:
      x_bld = layer(x_bld, self_mask, memory_bsd, memory_mask_bs, deterministic)
    if position is not None:
      x_b1d = jnp.take(x_bld, position, axis=1)[:, None]
      return self.head(x_b1d, embedding_vd, vocab_ids_k=vocab_ids_k)[:, 0]
    return self.head(x_bld, embedding_vd, vocab_ids_k=vocab_ids_k)
