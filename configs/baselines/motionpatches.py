"""The dense MotionPatches baseline (Yu et al., CVPR 2024) with MotionPatches' recipe
(`lexmo_jax.phases.motionpatches`): ViT over motion patches + DistilBERT, projection heads to
256-d (dropout 0.5 on HumanML3D, 0 on KIT-ML), symmetric InfoNCE at temperature 0.07, Adam
(no weight decay) at 1e-4 for the motion tower and heads and 1e-5 for the text tower on
HumanML3D (1e-5 for all on KIT-ML), batch 128, 50 epochs, cosine decay.

  python -m lexmo_jax.main --config=configs/baselines/motionpatches.py:runlocal \
      --workdir=runs/motionpatches
  python -m lexmo_jax.main --config=configs/baselines/motionpatches.py \
      --workdir=runs/motionpatches --config.text.init=/path/to/distilbert-base-uncased

MotionPatches starts its ViT from ImageNet-21k and DistilBERT from its pre-training: pass
`--config.text.init`. Its cosine runs over twice the training length (the rate ends at half
its peak): here `optim.min_learning_rate_ratio` 0.5 stands for it.
"""
import ml_collections

from configs import common


def motionpatches_optim(c, kitml: bool) -> None:
  """MotionPatches' optimiser: per-tower rates, Adam, batch 128, 50 epochs, cosine to half."""
  c.data.global_batch_size = 128
  c.optim.learning_rate = 1e-5 if kitml else 1e-4
  c.optim.warmup_steps = 0
  c.optim.weight_decay = 0.0
  c.optim.min_learning_rate_ratio = 0.5
  text_scale = 1.0 if kitml else 0.1
  c.optim.lr_scale = ml_collections.ConfigDict(dict(
      text=text_scale, motion=1.0, text_projection=1.0, motion_projection=1.0,
      motion_head=1.0, temperature=1.0))
  # 50 epochs of HumanML3D's 23,384 training motions (KIT-ML: 4,888) at batch 128.
  c.total_steps = 1_950 if kitml else 9_150


def get_config(arg=None):
  opts = common.parse_arg(arg)
  c = common.base_config("motionpatches", arg)
  c.motionpatches = ml_collections.ConfigDict()
  c.motionpatches.projection_dim = 256
  c.motionpatches.dropout_rate = 0.0 if opts["kitml"] else 0.5
  c.loss = ml_collections.ConfigDict()
  c.loss.temperature = 0.07
  motionpatches_optim(c, bool(opts["kitml"]))
  c.checkpoint_every = 1000
  if opts["runlocal"]:
    common.shrink_for_runlocal_baseline(c)
  return c
