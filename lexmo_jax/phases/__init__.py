"""The four pre-training phases, in order."""
from __future__ import annotations

from lexmo_jax.phases import cmmm, lexcmlp, lexmlm, lexmmm
from lexmo_jax.phases.base import Phase

ORDER = ("lexmlm", "cmmm", "lexmmm", "lexcmlp")


def get_phase(config) -> Phase:
  """The phase that `config.phase` names, shaped by its config where a phase needs it."""
  name = config.phase
  if name == "lexmlm":
    return lexmlm.PHASE
  if name == "cmmm":
    return cmmm.PHASE
  if name == "lexmmm":
    return lexmmm.make_phase(config.loss.train_decoder)
  if name == "lexcmlp":
    return lexcmlp.make_phase(config.loss.temperature_init)
  raise ValueError(f"config.phase={name!r} is not a phase; expected one of {ORDER}")
