"""Phase 4, LexCMLP: contrastive alignment of motion and text lexical vectors, with FLOPS
sparsity on each side.

  python -m lexmo_jax.main --config=configs/lexcmlp.py:runlocal --workdir=runs/lexcmlp \
      --config.init_from=runs/lexmmm
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("lexcmlp", arg)
  c.loss = ml_collections.ConfigDict()
  c.loss.temperature_init = 0.05
  c.loss.learn_temperature = True
  c.loss.max_logit_scale = 100.0
  c.loss.flops_weight = 1e-3
  # The FLOPS weight grows quadratically to its value over these steps (SPLADE's warm-up).
  c.loss.flops_warmup_steps = 1000
  # Anchors that keep the coordinates on their words while the sides align (beyond the
  # paper; 0 turns each off): the text head still predicts each caption word as itself,
  # and the motion's word distribution still matches its caption's informative words.
  c.loss.text_self_prediction_weight = 0.0
  c.loss.motion_bag_of_words_weight = 0.0
  # L1 on the weights of words outside the caption's informative words, on both sides
  # (beyond the paper; 0 = off). Softmax anchors fix which words rank first, not how far the
  # rest sit below: without it a vector keeps hundreds of words at nearly the same weight.
  c.loss.off_caption_weight = 0.0
  # Informativeness of caption words for the motion anchor (as in LexMMM).
  c.loss.word_weighting = "agreement"
  c.loss.weighting_strength = 1.0
  # Words the captions' own POS tags (HumanML3D's word/POS field) mostly give another tag
  # than these weigh 0: function words say nothing about the motion. () = no gate.
  c.loss.content_pos = ("NOUN", "VERB", "ADJ", "ADV", "PROPN")
  if common.parse_arg(arg)["runlocal"]:
    c.total_steps = 400
    # A short run: sparsity must not win before the two sides have found each other.
    c.loss.flops_weight = 1e-4
    c.loss.flops_warmup_steps = 300
    # A text encoder trained from random weights for a few hundred steps: keep both sides'
    # coordinates on their words while they align.
    c.loss.text_self_prediction_weight = 1.0
    c.loss.motion_bag_of_words_weight = 1.0
    c.loss.off_caption_weight = 0.01
  return c
