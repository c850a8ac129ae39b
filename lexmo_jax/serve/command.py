"""The serve command: checks its flags, starts indexing the gallery in the background and
serves the page at once (it shows the indexing progress until the gallery is ready).

  python -m lexmo_jax.serve --workdir=runs/demo/lexcmlp --split test --port 8080
  python -m lexmo_jax.serve --workdir=W --host 0.0.0.0   # reachable from other machines
"""
from __future__ import annotations

import errno
import logging
import os
import pathlib
import signal
import socket

DEFAULT_WORKDIR = "runs/demo/lexcmlp"
logger = logging.getLogger("lexmo_jax.serve")


def define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.search import engines  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", DEFAULT_WORKDIR, "A finished LexMMM or LexCMLP workdir.")
  flags.DEFINE_string("split", "test", "Dataset split whose motions form the gallery.")
  flags.DEFINE_string("index", "", "Index folder to load or write (default DIR/index/<split>, "
                      "shared with the search command).")
  flags.DEFINE_enum("engine", "auto", list(engines.ENGINES), "Search engine (as the search "
                    "command's --engine).")
  flags.DEFINE_string("host", "127.0.0.1", "Address to listen on; 127.0.0.1 keeps the app "
                      "on this machine, 0.0.0.0 opens it to the network.")
  flags.DEFINE_integer("port", 8080, "Port to listen on (0: any free port).")


def check_port(host: str, port: int) -> None:
  """Refuses a port outside 0..65535 or already taken, before anything loads."""
  if not 0 <= port <= 65535:
    raise ValueError(f"--port must lie in 0..65535, got {port}")
  with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
    try:
      s.bind((host, port))
    except OSError as e:
      if e.errno == errno.EADDRINUSE:
        raise ValueError(f"port {port} on {host} is already in use; pass another --port "
                         "(or --port 0 for any free one)") from None
      raise ValueError(f"cannot listen on {host}:{port} ({e.strerror})") from None


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.cli import fail, setup_logging  # pylint: disable=g-import-not-at-top
  from lexmo_jax.inference import LEXICAL_PHASES, load_config  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
  f = flags.FLAGS
  try:
    if not pathlib.Path(f.workdir).is_dir():
      hint = " (run `make demo` first)" if f.workdir == DEFAULT_WORKDIR else ""
      raise ValueError(f"--workdir {f.workdir} does not exist{hint}")
    phase = load_config(f.workdir).get("phase")
    if phase not in LEXICAL_PHASES:
      raise ValueError(f"--workdir {f.workdir} is a {phase!r} workdir; the demo reads the "
                       f"lexical vectors of a {' or '.join(LEXICAL_PHASES)} workdir")
    check_port(f.host, f.port)
  except ValueError as e:
    fail(str(e))
  from werkzeug.serving import make_server  # pylint: disable=g-import-not-at-top
  from lexmo_jax.serve.app import create_app  # pylint: disable=g-import-not-at-top
  from lexmo_jax.serve.explorer import Explorer  # pylint: disable=g-import-not-at-top
  explorer = Explorer(f.workdir, f.split, f.index, f.engine)
  server = make_server(f.host, f.port, create_app(explorer), threaded=True)
  host = f"[{f.host}]" if ":" in f.host else f.host
  print(f"serving {f.workdir} (split {f.split!r}) at http://{host}:{server.server_port}/ "
        "— Ctrl-C stops it", flush=True)
  signal.signal(signal.SIGINT, _stop_now)
  signal.signal(signal.SIGTERM, _stop_now)
  explorer.start()
  server.serve_forever()


def _stop_now(signum, frame) -> None:
  """Ctrl-C (or SIGTERM): one line and exit at once, 130 (143). Nothing is being written
  that needs finishing (the index is saved atomically), and an interpreter shutdown while
  the loader thread is inside XLA can abort."""
  del frame
  os.write(1, b"stopped\n")
  os._exit(128 + signum)
