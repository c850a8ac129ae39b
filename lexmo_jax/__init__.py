"""lexmo_jax: a shared motion–language space in which captions and 3D human motions are both
sparse vectors over a word vocabulary.

The encode API (as TMR's: captions and motion files in, vectors out):

  import lexmo_jax
  model = lexmo_jax.load("runs/demo/lexcmlp")                  # a LexMMM/LexCMLP workdir
  texts = model.encode_texts(["a person jumps", "a person walks forward"])   # (2, V) ≥ 0
  motions = model.encode_motion_files(["data/synthetic/new_joint_vecs/000003.npy"])  # (1, V)
  print(model.description(motions[0], 5), lexmo_jax.similarity(texts, motions))

`load` returns a `lexmo_jax.inference.LexicalModel`: `encode_texts`, `encode_motions` (raw
(T, F) arrays), `encode_motion_files` (.npy features or (T, J, 3) joint positions) give
lexical vectors, one weight per vocabulary word (`model.vocab`); `text_features` and
`motion_features` the dense pooled states; `description` a vector's heaviest words (forms of
one word added), `top_words` its heaviest coordinates one by one.
`similarity(a, b)` is the (N, M) cosine matrix the retrieval metrics rank by.
"""
from __future__ import annotations

import input_pipeline  # noqa: F401  (quiets TensorFlow's start-up notices before any import)

__all__ = ["load", "similarity"]


def load(workdir):
  """The lexical model of a finished LexMMM or LexCMLP workdir (`inference.LexicalModel`).

  Raises:
    WorkdirError: not a workdir, no finished checkpoint, or a phase without lexical heads.
  """
  from lexmo_jax.inference import LexicalModel  # pylint: disable=g-import-not-at-top
  return LexicalModel.from_workdir(workdir)


def similarity(a, b):
  """(N, M) cosine similarities between the rows of `a` (N, V) and of `b` (M, V)."""
  from lexmo_jax.evaluate import similarity as cosine  # pylint: disable=g-import-not-at-top
  return cosine(a, b)
