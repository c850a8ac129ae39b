"""The pre-training phases, in order, and the tasks trained after them, found by name.

A phase (or a new task) is a module with
  make_phase(loss_config) -> Phase      its loss, trainable groups and data
  check_loss(loss_config, check)        refuses bad `config.loss` values at start
(`check` is a `lexmo_jax.config_validation.LossCheck`), a config file `configs/<name>.py`,
and one line in REGISTRY below.
"""
from __future__ import annotations

from lexmo_jax.phases import (captioning, cmmm, conditioning, generator, lexcmlp, lexmlm,
                              lexmmm, motionpatches, t2m_evaluator, tmr, tmr_lexical, vqvae)
from lexmo_jax.phases.base import Phase

REGISTRY = {
    "lexmlm": lexmlm,
    "cmmm": cmmm,
    "lexmmm": lexmmm,
    "lexcmlp": lexcmlp,
    # Tasks that start from a pre-trained workdir.
    "captioning": captioning,
    "conditioning": conditioning,
    "vqvae": vqvae,
    "generator": generator,
    "t2m_evaluator": t2m_evaluator,
    # The paper's baselines (`python -m lexmo_jax.reproduce`); †MotionPatches is a lexcmlp run.
    "motionpatches": motionpatches,
    "tmr": tmr,
    "tmr_lexical": tmr_lexical,
}
# The four pre-training phases, in order.
ORDER = ("lexmlm", "cmmm", "lexmmm", "lexcmlp")
KNOWN = tuple(REGISTRY)


def phase_module(name: str):
  """The module of the phase `name`; ValueError naming the known ones otherwise."""
  if name not in REGISTRY:
    raise ValueError(f"config.phase={name!r} is not a phase; expected one of {KNOWN}")
  return REGISTRY[name]


def get_phase(config) -> Phase:
  """The phase that `config.phase` names, shaped by its `config.loss`."""
  return phase_module(config.phase).make_phase(config.loss)
