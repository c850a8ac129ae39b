"""†MotionPatches: the method's own encoders (MotionPatches' ViT and DistilBERT) and lexical
heads, the lexical vector in place of the dense embedding, trained by LexCMLP's objective
alone from scratch (no LexMLM, CMMM or LexMMM before it, none of the anchoring terms the
method's :runlocal LexCMLP adds), with MotionPatches' optimiser
(`configs/baselines/motionpatches.py`).

  python -m lexmo_jax.main --config=configs/baselines/motionpatches_lexical.py:runlocal \
      --workdir=runs/motionpatches_lexical
"""
from configs import common
from configs import lexcmlp
from configs.baselines import motionpatches


def get_config(arg=None):
  opts = common.parse_arg(arg)
  c = lexcmlp.get_config(arg)
  c.loss.text_self_prediction_weight = 0.0
  c.loss.motion_bag_of_words_weight = 0.0
  c.loss.off_caption_weight = 0.0
  motionpatches.motionpatches_optim(c, bool(opts["kitml"]))
  c.checkpoint_every = 1000
  if opts["runlocal"]:
    common.shrink_for_runlocal_baseline(c)
  return c
