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
`--config.text.init`.

The text-encoder ablation (the paper's Table 5) swaps DistilBERT for a T5 encoder of T5 v1.1's
shapes (small, base, large, xl, xxl; FLAN-T5 shares them), its caption feature the mean of its
token states:

  python -m lexmo_jax.main --config=configs/baselines/motionpatches.py:text=t5-base \
      --workdir=runs/mp_t5_base --config.text.init=/path/to/t5-v1_1-base

With `:runlocal,text=t5-SIZE` the T5 tower keeps its size's block structure (gated GELU,
relative position buckets) at a CPU's scale (T5_RUNLOCAL_SHAPES), from random weights, over
the packaged word-piece vocabulary: no T5 weights exist on a machine without the Hub. Its cosine runs over twice the training length (the rate ends at half
its peak): here `optim.min_learning_rate_ratio` 0.5 stands for it.
"""
import ml_collections

from configs import common

TEXT_TOWERS = ("distilbert", "t5-small", "t5-base", "t5-large", "t5-xl", "t5-xxl")
# :runlocal T5 towers, (d_model, d_ff, layers, heads): deeper and wider with the size's name,
# in the proportions of T5 v1.1 (d_ff about 2.5 d_model), small enough for a CPU.
T5_RUNLOCAL_SHAPES = {
    "small": (64, 128, 2, 4),
    "base": (96, 256, 3, 4),
    "large": (128, 352, 6, 4),
    "xl": (256, 640, 6, 8),
    "xxl": (512, 1280, 6, 8),
}


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


def split_text_tower(arg: str | None) -> tuple[str, str]:
  """(the text tower named by a `text=NAME` token of `arg`, the rest of `arg`)."""
  tower, rest = "distilbert", []
  for token in filter(None, (arg or "").split(",")):
    key, _, value = token.partition("=")
    if key == "text":
      if value not in TEXT_TOWERS:
        raise ValueError(f"unknown text tower {value!r}; known: {', '.join(TEXT_TOWERS)}")
      tower = value
    else:
      rest.append(token)
  return tower, ",".join(rest)


def t5_text(c: ml_collections.ConfigDict, size: str, runlocal: bool) -> None:
  """Makes `c.text` a T5 v1.1 encoder of `size` (`lexmo_jax.models.t5_encoder`)."""
  from lexmo_jax.models import t5_encoder  # pylint: disable=g-import-not-at-top
  t5 = t5_encoder.t5_v1_1_config(size)
  c.text.model_type = "t5"
  c.text.layer_norm_eps = t5.layer_norm_epsilon
  c.text.t5 = ml_collections.ConfigDict(dict(
      feed_forward_proj=t5.feed_forward_proj,
      relative_attention_num_buckets=t5.relative_attention_num_buckets,
      relative_attention_max_distance=t5.relative_attention_max_distance))
  if runlocal:  # the packaged word-piece vocabulary, a CPU's widths
    d_model, d_ff, layers, heads = T5_RUNLOCAL_SHAPES[size]
    c.text.t5.d_kv = d_model // heads
  else:
    c.text.vocab_size = t5.vocab_size
    d_model, d_ff, layers, heads = t5.d_model, t5.d_ff, t5.num_layers, t5.num_heads
    c.text.t5.d_kv = t5.d_kv
  c.text.hidden_size, c.text.mlp_dim, c.text.num_layers, c.text.num_heads = (
      d_model, d_ff, layers, heads)


def get_config(arg=None):
  tower, arg = split_text_tower(arg)
  opts = common.parse_arg(arg)
  c = common.base_config("motionpatches", arg)
  if tower != "distilbert":
    t5_text(c, tower.removeprefix("t5-"), bool(opts["runlocal"]))
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
