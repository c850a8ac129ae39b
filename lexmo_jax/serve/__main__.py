"""`python -m lexmo_jax.serve`: see lexmo_jax.serve.command."""
from lexmo_jax.cli import run
from lexmo_jax.serve import command

if __name__ == "__main__":
  command.define_flags()
  run(command.main)
