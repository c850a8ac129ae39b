"""`python -m lexmo_jax.search`: see lexmo_jax.search.cli."""
from lexmo_jax.cli import run
from lexmo_jax.search import cli

if __name__ == "__main__":
  cli.define_flags()
  run(cli.main)
