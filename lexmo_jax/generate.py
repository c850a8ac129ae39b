"""Generates motions from text with a trained text-to-motion generator.

  python -m lexmo_jax.generate --workdir=runs/demo/generation/generator_lexical \
      --text "a person jumps twice" --render out/ [--seed 0] [--guidance 2] [--temperature 1]

For the k-th text it writes, into the --render folder: `<name>.npy` (raw features in the
dataset's layout: HumanML3D's (T, 263) new_joint_vecs at 20 fps), `<name>_joints.npy`
((T, J, 3) joint positions in metres) and `<name>.gif` (the skeleton), <name> being k in two
digits and the text's first six words (`00_a_person_jumps_twice`). Several texts: --text "a person jumps" --text "someone waves".
"""
from __future__ import annotations

import pathlib
import re

from absl import flags

from lexmo_jax.cli import fail, run, setup_logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A generator workdir (configs/generator.py).")
_TEXT = flags.DEFINE_multi_string("text", [], "A text to generate a motion for; repeatable.")
_RENDER = flags.DEFINE_string("render", None, "Folder to write features, joints and GIFs to.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed (the same seed gives the same motion).")
_GUIDANCE = flags.DEFINE_float("guidance", None, "Classifier-free guidance scale (1 = none; "
                               "default: the workdir config's generator.guidance_scale).")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Sampling temperature (0 = greedy; "
                                  "default: the config's generator.temperature).")


def file_stem(text: str, index: int) -> str:
  """A file name from a text's first words: '01_a_person_jumps_twice'."""
  words = re.findall(r"[a-z0-9]+", text.lower())[:6]
  return f"{index:02d}_{'_'.join(words) or 'motion'}"


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  if not _WORKDIR.value:
    fail("--workdir is required (a generator workdir)")
  if not _TEXT.value:
    fail("--text is required: a sentence such as \"a person jumps twice\"")
  if _GUIDANCE.value is not None and _GUIDANCE.value < 0:
    fail(f"--guidance must be non-negative, got {_GUIDANCE.value}")
  if _TEMPERATURE.value is not None and _TEMPERATURE.value < 0:
    fail(f"--temperature must be non-negative, got {_TEMPERATURE.value}")
  import numpy as np  # pylint: disable=g-import-not-at-top
  from lexmo_jax import visualization  # pylint: disable=g-import-not-at-top
  from lexmo_jax.inference import WorkdirError  # pylint: disable=g-import-not-at-top
  from lexmo_jax.text_to_motion import TextToMotion  # pylint: disable=g-import-not-at-top
  try:
    generator = TextToMotion.from_workdir(_WORKDIR.value)
    motions = generator.generate(_TEXT.value, seed=_SEED.value,
                                 guidance_scale=_GUIDANCE.value, temperature=_TEMPERATURE.value)
  except (WorkdirError, ValueError, OSError) as e:
    fail(str(e))
  out = pathlib.Path(_RENDER.value) if _RENDER.value else None
  if out is not None:
    out.mkdir(parents=True, exist_ok=True)
  body = generator.kind
  for k, (text, features) in enumerate(zip(_TEXT.value, motions)):
    seconds = len(features) / body.fps
    print(f"\"{text}\": {len(features)} frames ({seconds:.1f} s), conditioned by "
          f"{generator.label}")
    if out is None:
      continue
    stem = out / file_stem(text, k)
    joints = generator.joints(features)
    np.save(stem.with_suffix(".npy"), features.astype(np.float32))
    np.save(stem.parent / f"{stem.name}_joints.npy", joints.astype(np.float32))
    gif = visualization.render_skeleton_gif(joints, stem.with_suffix(".gif"),
                                            body.kinematic_chains, fps=body.fps,
                                            title=text)
    print(f"  wrote {stem}.npy, {stem}_joints.npy, {gif}")
  if out is None:
    print("(pass --render DIR to write the features, joints and a skeleton GIF)")


if __name__ == "__main__":
  run(main)
