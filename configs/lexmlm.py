"""Phase 1, LexMLM: text-only masked language modelling through the lexicon bottleneck.

  python -m lexmo_jax.main --config=configs/lexmlm.py:runlocal --workdir=runs/lexmlm
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("lexmlm", arg)
  c.loss = ml_collections.ConfigDict()
  c.loss.encoder_mask_rate = 0.3
  c.loss.decoder_mask_rate = 0.5
  # How a word's chance of being masked follows its informativeness: idf | uniform.
  c.loss.word_weighting = "idf"
  c.loss.weighting_strength = 1.0
  # BERT's corruption of chosen tokens: [MASK], a random token, or kept.
  c.loss.replace_with_mask = 0.8
  c.loss.replace_with_random = 0.1
  c.loss.decoder_weight = 1.0
  return c
