"""Captions motion files with a trained captioner and shows each motion's heaviest words.

  python -m lexmo_jax.caption --workdir=runs/demo/captioning --motion clip.npy [--beam 4]
  python -m lexmo_jax.caption --workdir=runs/demo/captioning --motion a.npy,b.npy --beam 1

A motion file is raw features in the dataset's layout (HumanML3D's new_joint_vecs: (T, 263),
20 fps). --beam 1 is greedy decoding; the default is the workdir config's caption.beam_size.
"""
from __future__ import annotations

from absl import flags

from input_pipeline import dataset_kinds

from lexmo_jax.cli import fail, run, setup_logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A captioning workdir "
                               "(configs/captioning.py).")
_MOTION = flags.DEFINE_list("motion", [], "Motion feature files (.npy), comma-separated.")
_BEAM = flags.DEFINE_integer("beam", None, "Beam size; 1 = greedy (default: the config's).")
_WORDS = flags.DEFINE_integer("words", 10, "How many of the motion's heaviest words to show.")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  if not _WORKDIR.value:
    fail("--workdir is required (a captioning workdir)")
  if not _MOTION.value:
    fail("--motion is required: one or more .npy feature files, comma-separated")
  if _WORDS.value < 0:
    fail(f"--words must be non-negative, got {_WORDS.value}")
  from lexmo_jax.captioner import Captioner  # pylint: disable=g-import-not-at-top
  from lexmo_jax.inference import MotionFileError, WorkdirError, read_motion_file  # pylint: disable=g-import-not-at-top
  try:
    captioner = Captioner.from_workdir(_WORKDIR.value)
    beam, _, _ = captioner.decoding(_BEAM.value)
    motions = [read_motion_file(path, captioner.kind) for path in _MOTION.value]
    captions = captioner.caption_motions(motions, beam_size=beam)
    vectors = captioner.encode_motions(motions) if _WORDS.value else None
  except (WorkdirError, MotionFileError, ValueError, OSError) as e:
    fail(str(e))
  decoding = "greedy" if beam == 1 else f"beam {beam}"
  for i, (path, motion, caption) in enumerate(zip(_MOTION.value, motions, captions)):
    seconds = len(motion) / dataset_kinds.get_kind(captioner.kind).fps
    print(f"{path} ({len(motion)} frames, {seconds:.1f} s; {decoding})")
    print(f"  caption:   {caption}")
    if vectors is not None:
      words = ", ".join(f"{w} {v:.2f}" for w, v in captioner.description(vectors[i], _WORDS.value))
      print(f"  words:     {words or '(none)'}")


if __name__ == "__main__":
  run(main)
