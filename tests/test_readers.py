"""Tests of the HumanML3D / KIT-ML folder readers, on folders built in tmp_path."""
import hashlib
import logging
import pathlib
import shutil

import numpy as np
import pytest

from input_pipeline import dataset_kinds, humanml3d
from input_pipeline import skips

F = 263


def _caption(text: str, start: float = 0.0, end: float = 0.0) -> str:
  tokens = " ".join(f"{w}/X" for w in text.split())
  return f"{text}#{tokens}#{start}#{end}"


def _write(root: pathlib.Path, motion_id: str, frames: int | None, lines: list[str] | None,
           width: int = F, seed: int = 0) -> np.ndarray | None:
  motion = None
  if frames is not None:
    motion = np.random.default_rng(seed).normal(size=(frames, width)).astype(np.float32)
    np.save(root / "new_joint_vecs" / f"{motion_id}.npy", motion)
  if lines is not None:
    (root / "texts" / f"{motion_id}.txt").write_text("\n".join(lines) + "\n")
  return motion


def _make_root(tmp_path: pathlib.Path, width: int = F) -> pathlib.Path:
  root = tmp_path / "dataset"
  (root / "new_joint_vecs").mkdir(parents=True)
  (root / "texts").mkdir()
  np.save(root / "Mean.npy", np.linspace(-1, 1, width).astype(np.float32))
  np.save(root / "Std.npy", np.linspace(0.5, 2, width).astype(np.float32))
  return root


@pytest.fixture
def folder(tmp_path):
  """A fake HumanML3D folder with good clips and one broken item of every kind."""
  root = _make_root(tmp_path)
  motions = {}
  motions["000001"] = _write(root, "000001", 120, [
      _caption("a person walks forward"), _caption("someone walks ahead", float("nan"),
                                                   float("nan"))], seed=1)
  # Two captions of one span form one sub-clip item; a second span its own item.
  motions["000002"] = _write(root, "000002", 150, [
      _caption("a person jumps"), _caption("then waves", 2.0, 5.0),
      _caption("waves a hand", 2.0, 5.0), _caption("turns", 3.5, 6.5)], seed=2)
  # A clip longer than the training length is kept (the pipeline crops it), with its span.
  motions["000003"] = _write(root, "000003", 260, [
      _caption("long walk"), _caption("kicks", 1.0, 4.0)], seed=3)
  motions["M000001"] = _write(root, "M000001", 120, [_caption("a person walks forward")], seed=4)
  # Length-filter boundaries: 40 frames kept, 39 left out; 199 and 200 kept (no upper
  # limit unless one is given).
  for motion_id, frames in [("000040", 40), ("000039", 39), ("000199", 199), ("000200", 200)]:
    motions[motion_id] = _write(root, motion_id, frames, [_caption("squats")], seed=frames)
  # One malformed line among good ones: the file is kept.
  motions["000004"] = _write(root, "000004", 80, [
      "no hash fields here", _caption("sits down"), "bad#fields#x#y"], seed=5)
  # Broken items.
  _write(root, "100001", None, [_caption("no motion file")])
  good = root / "new_joint_vecs" / "000001.npy"
  (root / "new_joint_vecs" / "100002.npy").write_bytes(good.read_bytes()[:300])
  _write(root, "100002", None, [_caption("truncated")])
  (root / "new_joint_vecs" / "100003.npy").write_text("this is not numpy")
  _write(root, "100003", None, [_caption("not numpy")])
  nan = np.random.default_rng(6).normal(size=(60, F)).astype(np.float32)
  nan[10, 5] = np.nan
  np.save(root / "new_joint_vecs" / "100004.npy", nan)
  _write(root, "100004", None, [_caption("has nan")])
  _write(root, "100005", 60, [_caption("wrong width")], width=F - 1)
  _write(root, "100006", 10, [_caption("too few frames")])
  _write(root, "100007", 60, None)
  _write(root, "100008", 60, [])
  _write(root, "100009", 60, ["just text", "a#b#c", "x#y#notanumber#1.0"])
  _write(root, "100010", 60, None)
  (root / "texts" / "100010.txt").write_bytes(b"\xff\xfe caption#x#0.0#0.0\n")
  split = ["000001", "000002", "000003", "M000001", "000040", "000039", "000199", "000200",
           "000004", "100001", "100002", "100003", "100004", "100005", "100006", "100007",
           "100008", "100009", "100010", "000001", "does_not_exist"]
  (root / "train.txt").write_text("\n".join(split) + "\n")
  (root / "val.txt").write_text("100001\n100003\n100007\n")
  return root, motions


def _snapshot(root: pathlib.Path) -> dict[str, tuple[int, str]]:
  """mtime and content hash of every file and folder (a folder's mtime moves when
  anything is created in it)."""
  return {str(p.relative_to(root)): (
      p.stat().st_mtime_ns, "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
          for p in sorted([root, *root.rglob("*")])}


def test_dataset_kinds():
  assert dataset_kinds.get_kind("humanml3d").feature_dim == 263
  assert dataset_kinds.get_kind("kitml").feature_dim == 251
  assert dataset_kinds.get_kind("humanml3d").fps == 20.0 and dataset_kinds.get_kind("kitml").fps == 12.5
  groups = dataset_kinds.get_kind("humanml3d").feature_groups()
  assert groups["joint_positions"] == slice(4, 67)
  assert groups["joint_rotations"] == slice(67, 193)
  assert groups["joint_velocities"] == slice(193, 259)
  assert groups["foot_contacts"] == slice(259, 263)
  with pytest.raises(ValueError, match="unknown dataset kind"):
    dataset_kinds.get_kind("amass")


def test_load_split_items(folder):
  root, motions = folder
  pairs, _ = humanml3d.load_split(root, "train")
  ids = [p.item_id for p in pairs]
  assert ids == sorted(ids)
  assert ids == ["000001", "000002", "000002#2.0#5.0", "000002#3.5#6.5", "000003",
                 "000003#1.0#4.0", "000004", "000040", "000199", "000200", "M000001"]
  by_id = {p.item_id: p for p in pairs}
  # NaN bounds read as 0, i.e. the whole clip, as HumanML3D's loaders do.
  assert by_id["000001"].captions == ("a person walks forward", "someone walks ahead")
  assert by_id["000002"].captions == ("a person jumps",)
  span = by_id["000002#2.0#5.0"]
  assert span.captions == ("then waves", "waves a hand") and span.motion_id == "000002"
  np.testing.assert_array_equal(span.motion, motions["000002"][40:100])
  np.testing.assert_array_equal(by_id["000002#3.5#6.5"].motion, motions["000002"][70:130])
  np.testing.assert_array_equal(by_id["000003#1.0#4.0"].motion, motions["000003"][20:80])
  assert by_id["000004"].captions == ("sits down",)
  for p in pairs:
    assert p.motion.dtype == np.float32 and p.motion.shape[1] == F
    assert 40 <= len(p.motion)
  assert len(by_id["000003"].motion) == 260
  # With an upper limit given, long items are left out and counted.
  pairs, report = humanml3d.load_split(root, "train", max_length=200)
  assert {"000003", "000200"}.isdisjoint(p.item_id for p in pairs)
  assert report.counts[skips.MOTION_TOO_LONG] == 2
  np.testing.assert_array_equal(by_id["M000001"].motion, motions["M000001"])


def test_skip_report_counts_and_examples(folder):
  root, _ = folder
  _, report = humanml3d.load_split(root, "train")
  expected = {
      skips.MOTION_MISSING: 2,
      skips.MOTION_CORRUPT: 1,
      skips.MOTION_NOT_NUMPY: 1,
      skips.MOTION_NOT_FINITE: 1,
      skips.MOTION_WRONG_SHAPE: 1,
      skips.MOTION_TOO_SHORT: 2,
      skips.CAPTION_MISSING: 1,
      skips.CAPTION_EMPTY: 1,
      skips.CAPTION_MALFORMED: 1,
      skips.CAPTION_UNREADABLE: 1,
      skips.CAPTION_LINE_MALFORMED: 2,
      skips.DUPLICATE_ID: 1,
  }
  assert report.counts == expected
  examples = report.examples
  assert any("100001.npy" in e for e in examples[skips.MOTION_MISSING])
  assert any("does_not_exist.npy" in e for e in examples[skips.MOTION_MISSING])
  assert "100002.npy" in examples[skips.MOTION_CORRUPT][0]
  assert "100003.npy" in examples[skips.MOTION_NOT_NUMPY][0]
  assert "100004.npy" in examples[skips.MOTION_NOT_FINITE][0]
  assert "100005.npy" in examples[skips.MOTION_WRONG_SHAPE][0]
  assert "262" in examples[skips.MOTION_WRONG_SHAPE][0]
  assert sorted(examples[skips.MOTION_TOO_SHORT]) == sorted(
      [str(root / "new_joint_vecs" / "000039.npy") + ": 39 frames",
       str(root / "new_joint_vecs" / "100006.npy") + ": 10 frames"])
  assert "100007.txt" in examples[skips.CAPTION_MISSING][0]
  assert "100008.txt" in examples[skips.CAPTION_EMPTY][0]
  assert "100009.txt" in examples[skips.CAPTION_MALFORMED][0]
  assert "100010.txt" in examples[skips.CAPTION_UNREADABLE][0]
  assert "000001" in examples[skips.DUPLICATE_ID][0]
  assert report.total == sum(expected.values())
  assert set(report.problems) == set(expected) - skips.LENGTH_FILTER_REASONS
  summary = report.summary()
  for reason in expected:
    assert reason in summary


def test_examples_are_capped(tmp_path):
  root = _make_root(tmp_path)
  _write(root, "000001", 60, [_caption("walks")])
  ids = [f"9{i:05d}" for i in range(5)]
  (root / "train.txt").write_text("\n".join(["000001"] + ids) + "\n")
  _, report = humanml3d.load_split(root, "train")
  assert report.counts == {skips.MOTION_MISSING: 5}
  assert len(report.examples[skips.MOTION_MISSING]) == skips.MAX_EXAMPLES


def test_each_reason_is_logged_once(folder, caplog):
  root, _ = folder
  with caplog.at_level(logging.INFO, logger="lexmo_jax.data"):
    _, report = humanml3d.load_split(root, "train")
  messages = [r.getMessage() for r in caplog.records if r.name == "lexmo_jax.data"]
  for reason in report.counts:
    logged = [m for m in messages if f": {reason} (further" in m]
    assert len(logged) == 1, (reason, logged)
  missing = [m for m in messages if skips.MOTION_MISSING in m]
  assert "100001.npy" in missing[0]
  levels = {r.levelno for r in caplog.records if skips.MOTION_CORRUPT in r.getMessage()}
  assert levels == {logging.WARNING}


def test_folder_is_never_modified(folder):
  root, _ = folder
  before = _snapshot(root)
  humanml3d.load_split(root, "train")
  humanml3d.load_normalisation(root)
  with pytest.raises(humanml3d.DatasetError):
    humanml3d.load_split(root, "val")
  assert _snapshot(root) == before


def test_nothing_usable_raises_with_reasons(folder):
  root, _ = folder
  with pytest.raises(humanml3d.DatasetError) as info:
    humanml3d.load_split(root, "val")
  message = str(info.value)
  assert str(root) in message and "'val'" in message
  assert skips.MOTION_MISSING in message and skips.CAPTION_MISSING in message
  assert skips.MOTION_NOT_NUMPY in message
  assert issubclass(humanml3d.DatasetError, ValueError)


def test_missing_folder_explains_layout(tmp_path):
  with pytest.raises(humanml3d.DatasetError) as info:
    humanml3d.load_split(tmp_path / "nowhere", "train")
  message = str(info.value)
  for part in ("nowhere", "new_joint_vecs/", "texts/", "train.txt", "Mean.npy", "Std.npy",
               "python -m input_pipeline.synthetic --out DIR"):
    assert part in message
  (tmp_path / "texts").mkdir()
  with pytest.raises(humanml3d.DatasetError, match="has no new_joint_vecs/"):
    humanml3d.load_normalisation(tmp_path)


def test_missing_split_file(tmp_path):
  root = _make_root(tmp_path)
  (root / "train.txt").write_text("000001\n")
  with pytest.raises(humanml3d.DatasetError, match=r"test\.txt is missing.*train\.txt"):
    humanml3d.load_split(root, "test")


def test_max_items_and_length_arguments(folder):
  root, _ = folder
  pairs, _ = humanml3d.load_split(root, "train", max_items=2)
  assert [p.item_id for p in pairs] == ["000001", "000002", "000002#2.0#5.0", "000002#3.5#6.5"]
  pairs, report = humanml3d.load_split(root, "train", min_length=61, max_length=300)
  ids = {p.item_id for p in pairs}
  assert "000003" in ids and "000200" in ids and "000002#2.0#5.0" not in ids
  assert report.counts[skips.SPAN_TOO_SHORT] == 3
  with pytest.raises(ValueError, match="min_length"):
    humanml3d.load_split(root, "train", min_length=300, max_length=200)


def test_load_normalisation(folder):
  root, _ = folder
  mean, std = humanml3d.load_normalisation(root)
  assert mean.shape == std.shape == (F,) and mean.dtype == std.dtype == np.float32
  np.testing.assert_allclose(std, np.linspace(0.5, 2, F).astype(np.float32))


@pytest.mark.parametrize("name, values, problem", [
    ("Std.npy", np.ones(F - 1), r"shape \(262,\)"),
    ("Std.npy", np.where(np.arange(F) == 7, 0.0, 1.0), r"values below 1e-06 .* features 7 "
                                                       r"\(joint_positions\)"),
    ("Std.npy", np.where(np.arange(F) >= 259, 1e-8, 1.0), r"4 values below 1e-06 \(smallest "
                                                         r"1e-08\) at features 259–262 "
                                                         r"\(foot_contacts\)"),
    ("Std.npy", np.where(np.arange(F) < 2, -1.0, 1.0), r"features 0 \(root_angular_velocity\), "
                                                      r"1 \(root_linear_velocity\)"),
    ("Mean.npy", np.where(np.arange(F) == 3, np.nan, 0.0), "NaN or Inf values at features \\[3\\]"),
])
def test_bad_normalisation_names_file_and_problem(tmp_path, name, values, problem):
  root = _make_root(tmp_path)
  np.save(root / name, values.astype(np.float32))
  with pytest.raises(humanml3d.DatasetError, match=f"{name}.*{problem}"):
    humanml3d.load_normalisation(root)


def test_missing_normalisation(tmp_path):
  root = _make_root(tmp_path)
  (root / "Mean.npy").unlink()
  with pytest.raises(humanml3d.DatasetError, match=r"Mean\.npy is missing"):
    humanml3d.load_normalisation(root)
  (root / "Mean.npy").write_text("garbage")
  with pytest.raises(humanml3d.DatasetError, match=r"Mean\.npy is not a readable numpy"):
    humanml3d.load_normalisation(root)


def test_kitml_width_fps_and_min_length(tmp_path):
  root = _make_root(tmp_path, width=251)
  motion = _write(root, "00001", 100, [_caption("walks"), _caption("turns", 1.0, 3.0)], width=251)
  _write(root, "00002", 30, [_caption("short but kept for KIT-ML")], width=251)
  _write(root, "00003", 60, [_caption("HumanML3D width")], width=263)
  (root / "train.txt").write_text("00001\n00002\n00003\n")
  pairs, report = humanml3d.load_split(root, "train", kind="kitml")
  by_id = {p.item_id: p for p in pairs}
  assert sorted(by_id) == ["00001", "00001#1.0#3.0", "00002"]
  # 12.5 fps: seconds 1.0 to 3.0 are frames 12 to 37.
  np.testing.assert_array_equal(by_id["00001#1.0#3.0"].motion, motion[12:37])
  assert report.counts == {skips.MOTION_WRONG_SHAPE: 1}
  mean, _ = humanml3d.load_normalisation(root, kind="kitml")
  assert mean.shape == (251,)
  with pytest.raises(humanml3d.DatasetError, match=r"Mean\.npy has shape \(251,\)"):
    humanml3d.load_normalisation(root)


def test_real_humanml3d_sample(tmp_path, humanml3d_sample_dir):
  root = tmp_path / "real"
  (root / "new_joint_vecs").mkdir(parents=True)
  (root / "texts").mkdir()
  shutil.copy(humanml3d_sample_dir / "000612.npy", root / "new_joint_vecs" / "000612.npy")
  shutil.copy(humanml3d_sample_dir / "Mean.npy", root / "Mean.npy")
  shutil.copy(humanml3d_sample_dir / "Std.npy", root / "Std.npy")
  (root / "texts" / "000612.txt").write_text(
      "a person walks forward slowly.#a/DET person/NOUN walk/VERB forward/ADV slowly/ADV#0.0#0.0\n"
      "the person steps forward.#the/DET person/NOUN step/VERB forward/ADV#0.0#0.0\n"
      "a person takes a step.#a/DET person/NOUN take/VERB a/DET step/NOUN#0.5#5.0\n")
  (root / "test.txt").write_text("000612\n")
  pairs, report = humanml3d.load_split(root, "test")
  assert report.counts == {}
  raw = np.load(humanml3d_sample_dir / "000612.npy")
  assert raw.shape == (199, 263)
  whole, span = pairs
  assert whole.item_id == "000612" and span.item_id == "000612#0.5#5.0"
  assert whole.motion.dtype == np.float32 and whole.motion.shape == (199, 263)
  np.testing.assert_array_equal(whole.motion, raw.astype(np.float32))
  np.testing.assert_array_equal(span.motion, raw[10:100].astype(np.float32))
  mean, std = humanml3d.load_normalisation(root)
  z = (whole.motion - mean) / std
  # Real features are of the order of the real statistics.
  assert np.isfinite(z).all() and np.abs(z).mean() < 3.0


def test_tfds_builder_round_trip(tmp_path):
  from input_pipeline import pipeline  # pylint: disable=g-import-not-at-top
  from input_pipeline import tfds_builder  # pylint: disable=g-import-not-at-top
  from input_pipeline import tokenizer as tokenizer_lib  # pylint: disable=g-import-not-at-top
  root = _make_root(tmp_path)
  for i in range(6):
    _write(root, f"00000{i}", 50 + 20 * i, [_caption(f"walks {i}"), _caption("turns", 0.5, 3.0),
                                           _caption(f"spins {i}", 0.5, 3.0)], seed=i)
  (root / "train.txt").write_text("000000\n000001\n000002\n000003\nmissing\n")
  (root / "test.txt").write_text("000004\n000005\n")
  before = _snapshot(root)
  data_dir = tmp_path / "tfds"
  with pytest.raises(FileNotFoundError, match="run input_pipeline.tfds_builder.prepare"):
    tfds_builder.load_tfds_split(data_dir, "train")
  builder = tfds_builder.prepare(root, data_dir)
  assert sorted(builder.info.splits) == ["test", "train"]
  # 000000 lasts 2.5 s: its two lines of span 0.5-3.0 s end past it and are clamped (a
  # reported fault each).
  assert builder.info.metadata["skipped"]["train"] == {skips.MOTION_MISSING: 1,
                                                       skips.SPAN_END_CLAMPED: 2}
  assert _snapshot(root) == before
  mean, std = humanml3d.load_normalisation(root)
  for split in ("train", "test"):
    expected, _ = humanml3d.load_split(root, split)
    pairs, tf_mean, tf_std = tfds_builder.load_tfds_split(data_dir, split)
    np.testing.assert_array_equal(tf_mean, mean)
    np.testing.assert_array_equal(tf_std, std)
    assert [p.item_id for p in pairs] == [p.item_id for p in expected]
    for got, want in zip(pairs, expected):
      assert got.motion_id == want.motion_id and got.captions == want.captions
      assert got.motion.dtype == np.float32
      np.testing.assert_array_equal(got.motion, want.motion)
  with pytest.raises(humanml3d.DatasetError, match="'val' is not in the prepared dataset"):
    tfds_builder.load_tfds_split(data_dir, "val")
  # The training stream is the same whether its items come from the folder or TFDS.
  tok = tokenizer_lib.load_tokenizer()
  args = dict(global_batch_size=4, max_motion_length=64, max_text_length=8, seed=0)
  from_tfds = pipeline.TrainData(pairs, tf_mean, tf_std, tok, **args).batch(2)
  from_folder = pipeline.TrainData(expected, mean, std, tok, **args).batch(2)
  for key in from_folder:
    np.testing.assert_array_equal(from_tfds[key], from_folder[key])


def test_text_files_made_elsewhere_are_read_as_meant(tmp_path):
  """BOM, CRLF, blank lines and padded ids mean nothing; cp1252 bytes are named by offset."""
  root = _make_root(tmp_path)
  _write(root, "000001", 60, None, seed=1)
  (root / "texts" / "000001.txt").write_bytes(
      ("\ufeff" + _caption("a person walks") + "\r\n\r\n" + _caption("someone claps") + "\r\n")
      .encode("utf-8"))
  _write(root, "000002", 60, [_caption("a person jumps")], seed=2)
  _write(root, "000003", 60, None, seed=3)
  cp1252 = _caption("a person waves") + "\n" + _caption("then bows to the café")
  (root / "texts" / "000003.txt").write_bytes(cp1252.encode("cp1252"))
  (root / "train.txt").write_bytes("\ufeff000001\r\n\r\n \t000002\t \r\n000003\r\n".encode())
  assert humanml3d.read_split_ids(root, "train") == ["000001", "000002", "000003"]
  pairs, report = humanml3d.load_split(root, "train")
  assert [p.item_id for p in pairs] == ["000001", "000002"]
  assert pairs[0].captions == ("a person walks", "someone claps")
  assert report.counts == {skips.CAPTION_UNREADABLE: 1}
  offset = cp1252.encode("cp1252").index(b"\xe9")
  assert report.examples[skips.CAPTION_UNREADABLE] == [
      f"{root / 'texts' / '000003.txt'}: not UTF-8: byte 0xe9 at offset {offset}"]
  # A split file that is not UTF-8 is refused with its name and the offset.
  (root / "val.txt").write_bytes(b"000001\n00000\x92\n")
  with pytest.raises(humanml3d.DatasetError, match=r"val.txt is not UTF-8 text: byte 0x92 at "
                                                   r"offset 12"):
    humanml3d.read_split_ids(root, "val")


def test_caption_spans_that_do_not_fit_their_clip(tmp_path):
  """Spans are clamped where the meaning is clear, skipped otherwise, each fault reported
  with file, line, span and the clip's duration; no span duplicates the whole clip."""
  root = _make_root(tmp_path)
  # 100 frames at 20 fps: 5 s.
  _write(root, "000001", 100, [
      _caption("a person walks"),
      _caption("walks to the end", 1.0, 9.0),   # end past the clip: clamped to 5 s
      _caption("does nothing", 6.0, 8.0),       # starts after the clip ends: skipped
      _caption("backwards", 3.0, 2.0),          # start >= end: skipped
      _caption("before time", -1.0, 2.0),       # negative start: skipped
      _caption("the whole clip again", 0.0, 5.0),   # the whole clip: joins its item
      _caption("and past it", 0.0, 7.5),        # clamped, then the whole clip too
  ], seed=1)
  (root / "train.txt").write_text("000001\n")
  pairs, report = humanml3d.load_split(root, "train", min_length=10)
  assert [p.item_id for p in pairs] == ["000001", "000001#1.0#9.0"]
  assert pairs[0].captions == ("a person walks", "the whole clip again", "and past it")
  assert len(pairs[1].motion) == 80
  assert report.counts == {skips.SPAN_END_CLAMPED: 2, skips.SPAN_OUTSIDE_CLIP: 1,
                           skips.SPAN_EMPTY: 1, skips.SPAN_NEGATIVE_START: 1,
                           skips.SPAN_WHOLE_CLIP: 2}
  text = str(root / "texts" / "000001.txt")
  assert report.examples[skips.SPAN_OUTSIDE_CLIP] == [
      f"{text}: line 3: span #6#8 (the clip: 5 s, 100 frames at 20 fps)"]
  assert set(report.problems) == set(report.counts)
  # Only spans: a span over the whole clip becomes the clip's item, not a copy of it.
  _write(root, "000002", 100, [_caption("jumps", 0.0, 5.0), _caption("lands", 2.0, 4.0)],
         seed=2)
  (root / "val.txt").write_text("000002\n")
  pairs, _ = humanml3d.load_split(root, "val", min_length=10)
  assert [(p.item_id, p.captions) for p in pairs] == [("000002", ("jumps",)),
                                                      ("000002#2.0#4.0", ("lands",))]
