"""Tests of `python -m input_pipeline.check`, on folders built in tmp_path."""
import hashlib
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from input_pipeline import check, dataset_kinds

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _make_folder(tmp_path: pathlib.Path, width: int = 263, n: int = 6) -> pathlib.Path:
  root = tmp_path / "dataset"
  (root / "new_joint_vecs").mkdir(parents=True)
  (root / "texts").mkdir()
  rng = np.random.default_rng(0)
  mean = rng.normal(size=width).astype(np.float32)
  std = rng.uniform(0.5, 2, size=width).astype(np.float32)
  np.save(root / "Mean.npy", mean)
  np.save(root / "Std.npy", std)
  ids = [f"{i:06d}" for i in range(n)]
  for i, motion_id in enumerate(ids):
    z = rng.normal(size=(60 + i, width))
    np.save(root / "new_joint_vecs" / f"{motion_id}.npy", (z * std + mean).astype(np.float32))
    (root / "texts" / f"{motion_id}.txt").write_text(
        "a person walks#a/DET person/NOUN walk/VERB#0.0#0.0\n"
        "a person waves#a/DET person/NOUN wave/VERB#0.5#2.5\n")
  (root / "new_joint_vecs" / "broken.npy").write_text("not numpy")
  (root / "texts" / "broken.txt").write_text("walks#walk/VERB#0.0#0.0\n")
  (root / "train.txt").write_text("\n".join(ids[:4] + ["broken", "ghost"]) + "\n")
  (root / "val.txt").write_text(ids[4] + "\n")
  (root / "test.txt").write_text(ids[5] + "\n")
  return root


def _hashes(root: pathlib.Path) -> dict[str, str]:
  return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
          for p in sorted(root.rglob("*")) if p.is_file()}


def test_usable_folder_report(tmp_path, capsys):
  root = _make_folder(tmp_path)
  before = _hashes(root)
  assert check.main([str(root)]) == 0
  out = capsys.readouterr().out
  assert "[train] 6 ids listed, 8 usable items (4 clips, 4 caption spans), 8 captions" in out
  assert "[val] 1 ids listed, 2 usable items" in out
  assert "1 x motion file is not a numpy .npy file" in out and "broken.npy" in out
  assert "1 x motion file missing" in out and "ghost.npy" in out
  for group in ("root_angular_velocity", "joint_rotations", "foot_contacts"):
    assert group in out
  assert "suspicious" not in out
  assert out.rstrip().endswith("USABLE for training")
  assert _hashes(root) == before


def test_feature_statistics_match_generated_z_scores(tmp_path):
  root = _make_folder(tmp_path, n=6)
  from input_pipeline import humanml3d  # pylint: disable=g-import-not-at-top
  pairs, _ = humanml3d.load_split(root, "train")
  mean, std = humanml3d.load_normalisation(root)
  stats = check.feature_statistics(pairs, mean, std, dataset_kinds.get_kind("humanml3d"))
  assert [g.name for g in stats][0] == "root_angular_velocity"
  joint_rotations = next(g for g in stats if g.name == "joint_rotations")
  # The features were drawn as mean + std * N(0, 1).
  assert abs(joint_rotations.mean_z) < 0.05 and abs(joint_rotations.std_z - 1) < 0.05
  assert abs(joint_rotations.mean_abs_z - np.sqrt(2 / np.pi)) < 0.05
  assert joint_rotations.outlier_fraction < 1e-3


def test_wrong_statistics_are_flagged(tmp_path, capsys):
  root = _make_folder(tmp_path)
  np.save(root / "Std.npy", np.full(263, 0.01, np.float32))
  assert check.main([str(root)]) == 0
  assert "suspicious" in capsys.readouterr().out


def test_unusable_folders_exit_1(tmp_path, capsys):
  assert check.main([str(tmp_path / "missing")]) == 1
  assert "does not exist" in capsys.readouterr().out
  root = _make_folder(tmp_path)
  (root / "train.txt").write_text("broken\nghost\n")
  assert check.main([str(root)]) == 1
  out = capsys.readouterr().out
  assert "[train] PROBLEM" in out and "no usable motion-caption item" in out
  assert out.rstrip().endswith("NOT USABLE for training")


@pytest.mark.parametrize("tiny", [0.0, 1e-8])
def test_bad_std_exits_1(tmp_path, capsys, tiny):
  root = _make_folder(tmp_path)
  std = np.ones(263, np.float32)
  std[259:263] = tiny
  np.save(root / "Std.npy", std)
  assert check.main([str(root)]) == 1
  out = capsys.readouterr().out
  assert "Std.npy" in out and "259–262 (foot_contacts)" in out and "below 1e-06" in out


def test_table_columns_stay_aligned_with_extreme_values(tmp_path, capsys):
  root = _make_folder(tmp_path)
  np.save(root / "Std.npy", np.full(263, 2e-6, np.float32))
  assert check.main([str(root)]) == 0
  rows = [l for l in capsys.readouterr().out.splitlines()
          if l.startswith("  ") and l.split()[0] in ("group", "joint_rotations", "foot_contacts")]
  ends = {len(l.split("  <-")[0]) for l in rows}
  assert len(rows) == 3 and len(ends) == 1, rows


def test_kitml_kind(tmp_path, capsys):
  root = _make_folder(tmp_path, width=251)
  assert check.main([str(root), "--kind", "kitml"]) == 0
  assert "kind kitml: 251 features" in capsys.readouterr().out
  assert check.main([str(root)]) == 1
  assert "shape (251,)" in capsys.readouterr().out


def test_command_line(tmp_path, humanml3d_sample_dir):
  root = _make_folder(tmp_path)
  shutil.copy(humanml3d_sample_dir / "000612.npy", root / "new_joint_vecs" / "000612.npy")
  (root / "texts" / "000612.txt").write_text("a person walks forward#a/DET#0.0#0.0\n")
  with open(root / "train.txt", "a") as f:
    f.write("000612\n")
  result = subprocess.run([sys.executable, "-m", "input_pipeline.check", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  assert "[train] 7 ids listed, 9 usable items" in result.stdout


def test_long_clips_are_reported_as_cropped_short_ones_as_dropped(tmp_path, capsys):
  root = _make_folder(tmp_path)
  rng = np.random.default_rng(1)
  np.save(root / "new_joint_vecs" / "000000.npy", rng.normal(size=(250, 263)).astype(np.float32))
  np.save(root / "new_joint_vecs" / "000001.npy", rng.normal(size=(30, 263)).astype(np.float32))
  assert check.main([str(root)]) == 0
  out = capsys.readouterr().out
  assert ("[train] lengths: 1 items longer than 196 frames, randomly cropped to it for "
          "training; 2 dropped by the length limits") in out, out
  # Dropped: 000001's clip (30 frames) and its span 0.5-2.5 s, clamped to the clip's end
  # (20 frames). With an upper limit, 000000 (250 frames) is dropped too.
  assert check.main([str(root), "--crop-length=100", "--max-length=240"]) == 0
  out = capsys.readouterr().out
  assert "[train] lengths: 0 items longer than 100 frames" in out and "3 dropped" in out, out
