"""A browser demo over a finished workdir: type a sentence or keywords and watch the motions
that match, with the words that made each match; open a motion for its description and its
nearest motions; upload a motion file to have it described and searched.

  python -m lexmo_jax.serve --workdir=runs/demo/lexcmlp [--split test] [--port 8080]

`explorer` answers (framework-free, JSON-ready), `app` is the Flask app, `command` the flags.
"""
