"""Command line: python -m input_pipeline.synthetic --out DIR --num-motions N --seed S."""
import pathlib
import sys
import time

import numpy as np

from input_pipeline import command_line
from input_pipeline.synthetic import writer
from input_pipeline.synthetic.clip import FPS
from input_pipeline.synthetic.dataset import generate_dataset


def render_preview(out_dir: pathlib.Path, motion_id: str, path: pathlib.Path | None = None,
                   stride: int = 1) -> pathlib.Path:
  """Renders DIR/new_joints/<motion_id>.npy to a GIF titled with its first caption.

  stride > 1 draws every stride-th frame only (faster, same playback speed).
  """
  from input_pipeline.motion import skeleton
  from input_pipeline.motion.drawing import render_skeleton_gif

  joints_file = out_dir / "new_joints" / f"{motion_id}.npy"
  if not joints_file.is_file():
    raise FileNotFoundError(f"{joints_file}: no such motion; --preview takes an id from "
                            f"{out_dir / 'train.txt'}, val.txt or test.txt")
  text_file = out_dir / "texts" / f"{motion_id}.txt"
  title = text_file.read_text().splitlines()[0].split("#")[0] if text_file.is_file() else ""
  path = path or out_dir / "previews" / f"{motion_id}.gif"
  path.parent.mkdir(parents=True, exist_ok=True)
  return render_skeleton_gif(np.load(joints_file), path, skeleton.HUMANML3D_KINEMATIC_CHAINS,
                             fps=FPS, title=title, stride=stride)


def main(argv: list[str] | None = None) -> int:
  parser = command_line.ArgumentParser(
      prog="python -m input_pipeline.synthetic",
      description="Write a synthetic motion-language dataset in HumanML3D's folder format.")
  parser.add_argument("--out", required=True, type=pathlib.Path, help="output folder")
  parser.add_argument("--num-motions", type=int, default=2000,
                      help="motions to generate (each also gets a mirrored M copy)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace a synthetic dataset already in --out")
  parser.add_argument("--preview", metavar="ID", help="also render this motion to a GIF")
  parser.add_argument("--preview-out", type=pathlib.Path, metavar="PATH",
                      help="where to write the preview (default DIR/previews/ID.gif)")
  parser.add_argument("--preview-stride", type=int, default=1, metavar="N",
                      help="draw every N-th frame of the preview")
  args = parser.parse_args(argv)
  if args.num_motions < 1:
    parser.error(f"--num-motions must be positive, got {args.num_motions}")
  if writer.holds_dataset(args.out) and not args.overwrite:
    print(f"error: {args.out} already holds a synthetic dataset (workdirs trained on it read "
          "its splits and Mean/Std); pass --overwrite to replace it, or choose another --out",
          file=sys.stderr)
    return 2
  start = time.perf_counter()
  try:
    counts = generate_dataset(args.out, args.num_motions, args.seed, workers=args.workers)
  except (FileExistsError, NotADirectoryError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  summary = ", ".join(f"{k} {v}" for k, v in counts.items())
  print(f"wrote {args.out} in {time.perf_counter() - start:.1f}s: {summary}")
  if args.preview:
    try:
      path = render_preview(args.out, args.preview, args.preview_out, args.preview_stride)
      print(f"preview: {path}")
    except (FileNotFoundError, ValueError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
