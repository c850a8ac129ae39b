"""`python -m lexmo_jax.search`: see lexmo_jax.search.cli."""
from absl import app

from lexmo_jax.search import cli

if __name__ == "__main__":
  cli.define_flags()
  app.run(cli.main)
