"""Phase 3, LexMMM: the motion lexical head learns to say which words describe a motion,
by letting the (frozen) weak decoder rebuild the paired caption from the motion bottleneck.

  python -m lexmo_jax.main --config=configs/lexmmm.py:runlocal --workdir=runs/lexmmm \
      --config.init_from=runs/cmmm
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("lexmmm", arg)
  c.loss = ml_collections.ConfigDict()
  # The weak decoder's caption is heavily masked: the rate is a share of the informative
  # words only (function words weigh 0 and are never masked), so 1.0 masks every content
  # word, about 60% of a caption's tokens, and the decoder can only get them from b.
  c.loss.decoder_mask_rate = 1.0
  c.loss.word_weighting = "agreement"
  c.loss.weighting_strength = 1.0
  # Words the captions' own POS tags (HumanML3D's word/POS field) mostly give another tag
  # than these weigh 0: function words say nothing about the motion. () = no gate.
  c.loss.content_pos = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
  # The weak decoder stays as LexMLM left it, so the motion must speak its language.
  c.loss.train_decoder = False
  # Cross-entropy between the motion's word distribution and its caption's words (see
  # lexmo_jax/phases/lexmmm.py for why); 0 = the decoder objective alone.
  c.loss.bag_of_words_weight = 1.0
  if common.parse_arg(arg)["runlocal"]:
    c.total_steps = 100
  return c
