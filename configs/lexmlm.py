"""Phase 1, LexMLM: text-only masked language modelling through the lexicon bottleneck.

  python -m lexmo_jax.main --config=configs/lexmlm.py:runlocal --workdir=runs/lexmlm
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("lexmlm", arg)
  c.loss = ml_collections.ConfigDict()
  c.loss.encoder_mask_rate = 0.3
  # The weak decoder's caption is heavily masked: the rate is a share of the informative
  # words only (function words weigh 0 and are never masked), so 1.0 masks every content
  # word, about 60% of a caption's tokens, and the decoder can only get them from b.
  c.loss.decoder_mask_rate = 1.0
  # How a word's chance of being masked follows its informativeness: agreement (how much
  # more often it comes back in another caption of the same motion) | idf | uniform.
  c.loss.word_weighting = "agreement"
  c.loss.weighting_strength = 1.0
  # Words the captions' own POS tags (HumanML3D's word/POS field) mostly give another tag
  # than these weigh 0: function words say nothing about the motion. () = no gate.
  c.loss.content_pos = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
  # BERT's corruption of chosen tokens: [MASK], a random token, or kept.
  c.loss.replace_with_mask = 0.8
  c.loss.replace_with_random = 0.1
  c.loss.decoder_weight = 1.0
  # The head also predicts every unmasked word piece as itself, as BERT's head learns from
  # the tokens it leaves unchanged: what makes a lexical vector weigh the caption's own
  # words. Beyond the paper (which starts from a pre-trained head); 0 turns it off.
  c.loss.self_prediction_weight = 1.0
  if common.parse_arg(arg)["runlocal"]:
    # From random weights in 150 steps: the head must learn to name words quickly, and the
    # weak decoder to read the bottleneck once the head's words mean something.
    c.optim.learning_rate = 3e-3
    c.optim.lr_scale.text_decoder = 3.0
  return c
