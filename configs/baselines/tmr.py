"""The dense TMR baseline (Petrovich et al., ICCV 2023) with TMR's recipe
(`lexmo_jax.phases.tmr`): ACTOR-style encoders of latent width 256 (6 layers, 4 heads, MLP
1024, dropout 0.1) over a frozen text encoder's token features and over the motion's frames,
a motion decoder, loss weights recons 1, KL 1e-5, latent 1e-5, contrastive 0.1, temperature
0.1, negatives filtered above 0.80 (TMR's [0, 1] scale), AdamW at 1e-4, batch 32, 500 epochs.

  python -m lexmo_jax.main --config=configs/baselines/tmr.py:runlocal --workdir=runs/tmr
  python -m lexmo_jax.main --config=configs/baselines/tmr.py --workdir=runs/tmr \
      --config.text.init=/path/to/distilbert-base-uncased

TMR reads DistilBERT's token states: `text.init` names a local Hugging Face folder (the text
sizes follow it). `:runlocal` reads the packaged all-MiniLM-L6-v2 instead (no DistilBERT can
be fetched here), shrinks the ACTOR stacks and trains on μ itself (`loss.sample_factor=0`:
a few hundred steps cannot get past TMR's posterior noise).
"""
import ml_collections

from configs import common


def tmr_config(phase: str, arg=None) -> ml_collections.ConfigDict:
  """The fields TMR and †TMR share (`configs/baselines/tmr_lexical.py`)."""
  opts = common.parse_arg(arg)
  c = common.base_config(phase, arg)
  c.tmr = ml_collections.ConfigDict()
  c.tmr.latent_dim = 256
  c.tmr.num_layers = 6
  c.tmr.num_heads = 4
  c.tmr.mlp_dim = 1024
  c.tmr.dropout_rate = 0.1
  c.tmr.lexical = False
  # Sentence encoder of the negative filter ('' = the packaged all-MiniLM-L6-v2; TMR:
  # all-mpnet-base-v2).
  c.tmr.sentence_encoder = ""
  c.data.global_batch_size = 32
  c.optim.learning_rate = 1e-4
  c.optim.schedule = "constant"
  c.optim.warmup_steps = 0
  c.optim.weight_decay = 0.01  # torch.optim.AdamW's default, which TMR keeps
  # 500 epochs of HumanML3D's 23,384 training motions at batch 32.
  c.total_steps = 365_000
  c.checkpoint_every = 5000
  c.text.dropout_rate = 0.0  # frozen: features as TMR extracts them
  if opts["runlocal"]:
    common.text_from_packaged_minilm(c)
    c.tmr.latent_dim = 64
    c.tmr.num_layers = 2
    c.tmr.mlp_dim = 256
    c.tmr.dropout_rate = 0.0
    c.total_steps = 400
    c.optim.learning_rate = 5e-4
    c.optim.warmup_steps = 30
    c.checkpoint_every = 200
  return c


def get_config(arg=None):
  c = tmr_config("tmr", arg)
  c.loss = ml_collections.ConfigDict()
  c.loss.recons_weight = 1.0
  c.loss.kl_weight = 1e-5
  c.loss.latent_weight = 1e-5
  c.loss.contrastive_weight = 0.1
  c.loss.temperature = 0.1
  c.loss.threshold_selfsim = 0.80
  # The latent vectors in training are μ + sample_factor · σ · ε (TMR's `fact`, 1).
  c.loss.sample_factor = 1.0
  if common.parse_arg(arg)["runlocal"]:
    # A few hundred steps are too few for TMR's posterior: with σ near 1 the noise swamps
    # the differences between the μ of different inputs, and the contrastive term stays at
    # chance (measured: R@1 at chance after 400 steps). The tiny run trains on μ itself.
    c.loss.sample_factor = 0.0
  return c
