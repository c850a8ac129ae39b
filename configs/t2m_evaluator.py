"""T2M's text–motion matching evaluator, trained on a dataset folder (the synthetic default
with :runlocal) to score text-to-motion generators (`lexmo_jax.phases.t2m_evaluator`).

  python -m lexmo_jax.main --config=configs/t2m_evaluator.py:runlocal --workdir=runs/evaluator

Users with T2M's official checkpoint pass it to `evaluate --task=generation --evaluator`
instead of training one.
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("t2m_evaluator", arg)
  runlocal = common.parse_arg(arg)["runlocal"]
  c.evaluator = ml_collections.ConfigDict()
  # A GloVe text file, a folder of T2M's our_vab_* files, or '' for learned word vectors.
  c.evaluator.word_vectors = ""
  # Widths: T2M's (text GRU 512, motion GRU 1024, movement encoder 512, shared space 512),
  # which its checkpoint holds; :runlocal shrinks them to train in minutes on a CPU.
  c.evaluator.text_hidden = 128 if runlocal else 512
  c.evaluator.motion_hidden = 256 if runlocal else 1024
  c.evaluator.movement_hidden = 128 if runlocal else 512
  c.evaluator.embedding_dim = 128 if runlocal else 512
  c.loss = ml_collections.ConfigDict()
  c.loss.margin = 10.0  # T2M's negative_margin
  # T2M: batch 32, Adam lr 1e-4 without weight decay, gradients clipped to 0.5, 300 epochs.
  c.data.global_batch_size = 32
  c.optim.learning_rate = 1e-4
  c.optim.schedule = "constant"
  c.optim.warmup_steps = 0
  c.optim.weight_decay = 0.0
  c.optim.grad_clip_norm = 0.5
  c.total_steps = 200_000
  c.checkpoint_every = 5000
  if runlocal:
    c.total_steps = 1500
    c.log_every = 100
    c.checkpoint_every = 500
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 0
  return c
