"""`python -m lexmo_jax.serve`: see lexmo_jax.serve.command."""
from absl import flags

from lexmo_jax.cli import run
from lexmo_jax.serve import command

if __name__ == "__main__":
  __doc__ = command.__doc__  # --help's usage text
  command.define_flags()
  flags.adopt_module_key_flags(command)  # --help lists them
  run(command.main)
