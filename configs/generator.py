"""The text-to-motion generator (T2M-GPT's second stage): a causal transformer writes a
motion's VQ-VAE codes from its caption's text condition (`lexmo_jax.phases.generator`).

  python -m lexmo_jax.main --config=configs/generator.py:runlocal --workdir=runs/generator \
      --config.init_from=runs/vqvae --config.generator.condition=lexical \
      --config.generator.text_encoder=runs/conditioning

`generator.condition`: 'lexical' (the pre-trained text encoder's 512-d projection, from a
conditioning workdir) or 'sentence' (a sentence-transformers folder; '' = the packaged
all-MiniLM-L6-v2, the offline stand-in for CLIP). Then:

  python -m lexmo_jax.generate --workdir=runs/generator --text "a person jumps twice" --render out
  python -m lexmo_jax.evaluate --task=generation --workdir=runs/generator --evaluator=runs/t2m_evaluator
"""
import ml_collections

from configs import common
from configs.vqvae import vqvae_section


def get_config(arg=None):
  c = common.base_config("generator", arg)
  runlocal = common.parse_arg(arg)["runlocal"]
  c.vqvae = vqvae_section(runlocal)
  c.generator = ml_collections.ConfigDict()
  c.generator.condition = "lexical"
  c.generator.text_encoder = ""
  # T2M-GPT's transformer: width 1024, 16 heads, MLP 4×, and 18 blocks (its "base" and
  # "head" stacks of 9 each, here one stack).
  c.generator.width = 128 if runlocal else 1024
  c.generator.num_layers = 3 if runlocal else 18
  c.generator.num_heads = 4 if runlocal else 16
  c.generator.mlp_dim = 4 * c.generator.width
  c.generator.dropout_rate = 0.1
  # Sampling: classifier-free guidance scale s (logits = uncond + s·(cond − uncond); 1 =
  # conditional only), temperature (0 = greedy), top-k (0 = all), fewest codes.
  c.generator.guidance_scale = 2.0
  c.generator.temperature = 1.0
  c.generator.top_k = 0
  c.generator.min_codes = 1
  c.loss = ml_collections.ConfigDict()
  # Rows trained with the null condition (for classifier-free guidance; MoMask drops 10%).
  c.loss.condition_drop = 0.1
  # Input codes kept (T2M-GPT's pkeep 0.5 on HumanML3D: the rest replaced at random).
  c.loss.code_keep = 0.5
  # T2M-GPT: batch 128, lr 1e-4, 300k iterations.
  c.data.global_batch_size = 128
  c.optim.learning_rate = 1e-4
  c.total_steps = 300_000
  c.checkpoint_every = 5000
  if runlocal:
    c.data.global_batch_size = 32
    c.total_steps = 1500
    c.log_every = 100
    c.checkpoint_every = 500
    c.optim.learning_rate = 1e-3
  return c
