"""`python -m lexmo_jax.search`: see lexmo_jax.search.cli."""
from absl import flags

from lexmo_jax.cli import run
from lexmo_jax.search import cli

if __name__ == "__main__":
  __doc__ = cli.__doc__  # --help's usage text
  cli.define_flags()
  flags.adopt_module_key_flags(cli)  # --help lists them
  run(cli.main)
