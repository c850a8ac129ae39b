"""†TMR: TMR's encoders with a lexical head on each, the lexical vector in place of the dense
embedding, trained by LexCMLP's objective alone (`lexmo_jax.phases.tmr_lexical`): InfoNCE
over L2-normalised lexical vectors (learnable temperature from 0.05) plus FLOPS (1e-3,
warmed up over 1000 steps), with TMR's sizes, batch and optimiser
(`configs/baselines/tmr.py`).

  python -m lexmo_jax.main --config=configs/baselines/tmr_lexical.py:runlocal \
      --workdir=runs/tmr_lexical
"""
import ml_collections

from configs import common
from configs.baselines import tmr


def get_config(arg=None):
  c = tmr.tmr_config("tmr_lexical", arg)
  c.tmr.lexical = True
  c.loss = ml_collections.ConfigDict()
  c.loss.temperature_init = 0.05
  c.loss.learn_temperature = True
  c.loss.max_logit_scale = 100.0
  c.loss.flops_weight = 1e-3
  c.loss.flops_warmup_steps = 1000
  if common.parse_arg(arg)["runlocal"]:
    # As the method's :runlocal LexCMLP: sparsity must not win before the sides align.
    c.loss.flops_weight = 1e-4
    c.loss.flops_warmup_steps = 300
  return c
