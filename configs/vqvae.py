"""The motion VQ-VAE of the text-to-motion generator (T2M-GPT's first stage), trained on the
training motions alone (`lexmo_jax.phases.vqvae`).

  python -m lexmo_jax.main --config=configs/vqvae.py:runlocal --workdir=runs/vqvae

Then configs/generator.py starts from it.
"""
import ml_collections

from configs import common


def vqvae_section(runlocal: bool) -> ml_collections.ConfigDict:
  """The VQ-VAE's sizes (T2M-GPT's: width 512, 3 residual blocks per level, codes every 4
  frames, dilation growth 3, 512 codes of width 512); the generator task reads the same
  section, so both tasks state them once, here."""
  v = ml_collections.ConfigDict()
  v.width = 64 if runlocal else 512
  v.depth = 2 if runlocal else 3
  v.down_t = 2
  v.dilation_growth = 3
  v.codebook_size = 128 if runlocal else 512
  v.code_dim = 64 if runlocal else 512
  # Cosine lookup between l2-normalised latents and codes: keeps the codebook in use without
  # T2M-GPT's EMA update and dead-code reset (the codebook learns by its gradient here).
  v.normalise_codes = True
  return v


def get_config(arg=None):
  c = common.base_config("vqvae", arg)
  runlocal = common.parse_arg(arg)["runlocal"]
  c.vqvae = vqvae_section(runlocal)
  c.loss = ml_collections.ConfigDict()
  # T2M-GPT's weights: commitment β 0.02, joint-position term 0.5 (its "--loss-vel").
  c.loss.commitment = 0.02
  c.loss.velocity_weight = 0.5
  c.loss.codebook_weight = 1.0
  # T2M-GPT: batch 256 of 64-frame windows, lr 2e-4, 300k iterations.
  c.optim.learning_rate = 2e-4
  c.total_steps = 300_000
  c.checkpoint_every = 5000
  if runlocal:
    c.total_steps = 1500
    c.log_every = 100
    c.checkpoint_every = 500
    c.optim.learning_rate = 1e-3
  return c
