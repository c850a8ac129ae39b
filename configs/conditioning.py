"""The conditioning task: a 512-d projection of the pre-trained text encoder for text-to-motion
generators (they read CLIP ViT-B/32's 512-d text vector), trained by InfoNCE against the
motion encoder on the training pairs, both encoders frozen (`lexmo_jax.phases.conditioning`).

  python -m lexmo_jax.main --config=configs/conditioning.py:runlocal \
      --workdir=runs/conditioning --config.init_from=runs/lexcmlp

Then `lexmo_jax.conditioning.TextConditioner.from_workdir("runs/conditioning")` gives the
pooled, token, lexical and projected (512-d) text features, and
`python -m lexmo_jax.export --workdir=runs/conditioning --out=OUT` writes them for PyTorch.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("conditioning", arg)
  runlocal = common.parse_arg(arg)["runlocal"]
  c.conditioning = ml_collections.ConfigDict()
  # The width generators read: CLIP ViT-B/32's text embedding (T2M-GPT, MoMask, MDM).
  c.conditioning.dim = 512
  c.loss = ml_collections.ConfigDict()
  # CLIP's starting temperature (its learned one ends near 0.01).
  c.loss.temperature = 0.07
  c.total_steps = 1000 if runlocal else 5000
  if runlocal:
    c.log_every = 100
    c.checkpoint_every = 500
  return c
