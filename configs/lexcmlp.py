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
  if common.parse_arg(arg)["runlocal"]:
    c.total_steps = 400
    # A short run: sparsity must not win before the two sides have found each other.
    c.loss.flops_weight = 1e-4
    c.loss.flops_warmup_steps = 300
  return c
