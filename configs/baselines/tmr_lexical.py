"""†TMR: TMR's encoders with a lexical head on each, the lexical vector in place of the dense
embedding, trained by LexCMLP's objective alone (`lexmo_jax.phases.tmr_lexical`): InfoNCE
over L2-normalised lexical vectors (learnable temperature from 0.05) plus FLOPS (1e-3,
warmed up over 1000 steps), with TMR's sizes, batch and optimiser
(`configs/baselines/tmr.py`).

  python -m lexmo_jax.main --config=configs/baselines/tmr_lexical.py:runlocal \
      --workdir=runs/tmr_lexical
"""
import ml_collections

from configs import lexcmlp
from configs.baselines import tmr

# LexCMLP's own terms: the contrastive loss over lexical vectors and the FLOPS regulariser
# (with the method's :runlocal softening of sparsity); its anchoring terms stay off.
LEXCMLP_FIELDS = ("temperature_init", "learn_temperature", "max_logit_scale", "flops_weight",
                  "flops_warmup_steps")


def get_config(arg=None):
  c = tmr.tmr_config("tmr_lexical", arg)
  c.tmr.lexical = True
  method = lexcmlp.get_config(arg).loss
  c.loss = ml_collections.ConfigDict({k: method[k] for k in LEXCMLP_FIELDS})
  return c
