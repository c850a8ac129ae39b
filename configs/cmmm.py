"""Phase 2, CMMM: motion-only masked token modelling plus contrast between two masked views.

  python -m lexmo_jax.main --config=configs/cmmm.py:runlocal --workdir=runs/cmmm \
      --config.init_from=runs/lexmlm
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("cmmm", arg)
  c.loss = ml_collections.ConfigDict()
  c.loss.min_mask_rate = 0.5
  c.loss.max_mask_rate = 0.75
  c.loss.temperature = 0.1
  c.loss.reconstruction_weight = 1.0
  c.loss.contrastive_weight = 1.0
  if common.parse_arg(arg)["runlocal"]:
    c.total_steps = 200  # a motion-only step is cheap
  return c
