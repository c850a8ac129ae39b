"""The synthetic HumanML3D-format dataset: format, physics, determinism, captions."""
import pathlib
import re

import numpy as np
import pytest

from input_pipeline.synthetic import (__main__ as cli, actions, body, captions, composer,
                                      generate_dataset, grounding, tagging, writer)
from input_pipeline.synthetic.composer import Program, Segment
from input_pipeline.motion import features as motion_features
from input_pipeline.motion import skeleton

NUM = 20
POS = {"NOUN", "VERB", "ADJ", "ADV", "DET", "ADP", "NUM", "PRON", "CCONJ", "SCONJ", "PART",
       "AUX"}
COUNT_WORDS = {2: ("twice", "two", "2"), 3: ("three", "thrice", "3"), 4: ("four", "4"),
               5: ("five", "5")}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  out = tmp_path_factory.mktemp("synthetic") / "data"
  counts = generate_dataset(out, NUM, seed=7, workers=1)
  return out, counts


def _ids(out: pathlib.Path) -> dict[str, list[str]]:
  return {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}


def _lines(out: pathlib.Path, motion_id: str) -> list[list[str]]:
  return [line.split("#") for line in (out / "texts" / f"{motion_id}.txt").read_text().splitlines()]


def test_counts_and_splits(dataset):
  out, counts = dataset
  ids = _ids(out)
  assert counts["motions"] == counts["mirrored"] == NUM
  assert sum(len(v) for v in ids.values()) == 2 * NUM
  everything = [i for v in ids.values() for i in v]
  assert len(set(everything)) == 2 * NUM
  assert set(everything) == {f"{i:06d}" for i in range(NUM)} | {f"M{i:06d}" for i in range(NUM)}
  for split, members in ids.items():
    assert members, split
    for i in members:
      partner = i[1:] if i.startswith("M") else "M" + i
      assert partner in members, (split, i)
  assert len(ids["train"]) == 2 * round(0.8 * NUM)
  assert "synthetic" in (out / "README.txt").read_text().lower()
  assert "--seed 7" in (out / "README.txt").read_text()


def test_every_file_parses(dataset):
  out, _ = dataset
  for motion_id in [i for v in _ids(out).values() for i in v]:
    feats = np.load(out / "new_joint_vecs" / f"{motion_id}.npy")
    joints = np.load(out / "new_joints" / f"{motion_id}.npy")
    assert feats.dtype == np.float32 and joints.dtype == np.float32
    assert feats.ndim == 2 and feats.shape[1] == 263
    assert 40 <= feats.shape[0] <= 196
    assert joints.shape == (feats.shape[0], 22, 3)
    assert np.isfinite(feats).all() and np.isfinite(joints).all()
    np.testing.assert_allclose(joints, motion_features.features_to_joints(feats, 22), atol=1e-6)
    lines = _lines(out, motion_id)
    assert len(lines) >= 2
    for fields in lines:
      assert len(fields) == 4, fields
      text, tokens, start, end = fields
      assert text.strip()
      for token in tokens.split():
        word, pos = token.rsplit("/", 1)
        assert word and pos in POS, token
      start, end = float(start), float(end)
      if (start, end) != (0.0, 0.0):
        rows = int(end * 20) - int(start * 20)
        assert 0 <= start < end <= feats.shape[0] / 20
        assert rows >= 40


def test_mean_std_are_humanml3d_statistics_of_train(dataset):
  out, _ = dataset
  train = np.concatenate([np.load(out / "new_joint_vecs" / f"{i}.npy").astype(np.float64)
                          for i in _ids(out)["train"]])
  mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
  assert mean.shape == std.shape == (263,) and mean.dtype == std.dtype == np.float32
  np.testing.assert_allclose(mean, train.mean(0), rtol=1e-5, atol=1e-6)
  want = train.std(0)
  for a, b in writer.STD_GROUPS:
    want[a:b] = want[a:b].mean()
    assert np.all(std[a:b] == std[a]), (a, b)
  np.testing.assert_allclose(std, want, rtol=1e-4)
  assert (std > 0).all()


def test_constant_feature_group_gets_unit_std():
  feats = np.random.default_rng(0).normal(size=(50, 263))
  feats[:, 259:] = 1.0
  _, std = writer.normalisation([writer.moments(feats)])
  assert (std[259:] == 1.0).all()
  assert (std[:259] != 1.0).all()


def test_mirrored_clip_is_the_mirror_image(dataset):
  out, _ = dataset
  for i in range(3):
    a = np.load(out / "new_joints" / f"{i:06d}.npy")
    m = np.load(out / "new_joints" / f"M{i:06d}.npy")
    # Not exact: HumanML3D's facing rule (hips reversed) is not mirror-symmetric, so the
    # two clips' body frames differ by a small rotation.
    np.testing.assert_allclose(m, motion_features.mirror_joints(a, "humanml3d"), atol=0.05)
    assert np.abs(m - a).max() > 0.1


def test_mirroring_swaps_words(dataset):
  out, _ = dataset
  swapped = 0
  for i in range(NUM):
    source, mirror = _lines(out, f"{i:06d}"), _lines(out, f"M{i:06d}")
    assert len(source) == len(mirror)
    for a, b in zip(source, mirror):
      assert b[0] == captions.mirror_caption(a[0])
      assert a[2:] == b[2:]
      words_a, words_b = re.findall(r"\w+", a[0].lower()), re.findall(r"\w+", b[0].lower())
      assert words_a.count("left") == words_b.count("right")
      assert words_a.count("right") == words_b.count("left")
      assert words_a.count("clockwise") == words_b.count("counterclockwise")
      swapped += "left" in words_a or "right" in words_a
  assert swapped > 0
  assert captions.mirror_caption("Left hand, then turns clockwise to the right.") == (
      "Right hand, then turns counterclockwise to the left.")


def test_same_seed_gives_identical_bytes(dataset, tmp_path):
  out, _ = dataset
  again = tmp_path / "again"
  generate_dataset(again, NUM, seed=7, workers=2)
  files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
  assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
  for f in files:
    assert (out / f).read_bytes() == (again / f).read_bytes(), f
  other = tmp_path / "other"
  generate_dataset(other, 3, seed=8, workers=1)
  assert (other / "texts" / "000000.txt").read_text() != (out / "texts" / "000000.txt").read_text()


def _perform(segments, seed=0):
  program = Program(tuple(segments))
  return program, composer.perform(program, np.random.default_rng(seed))


def test_bone_lengths_are_kept():
  programs = composer.sample_programs(12, np.random.default_rng(3))
  for k, program in enumerate(programs):
    joints = composer.perform(program, np.random.default_rng(k))
    lengths = body.bone_lengths(joints)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-9)
    assert joints[..., 1].min() >= -1e-9
  target = skeleton.bone_lengths(skeleton.HUMANML3D_TARGET_SKELETON,
                                 skeleton.HUMANML3D_KINEMATIC_CHAINS)[1:]
  feats = motion_features.joints_to_features(joints, "humanml3d")
  recovered = motion_features.features_to_joints(feats, 22)
  np.testing.assert_allclose(body.bone_lengths(recovered),
                             np.broadcast_to(target, (len(feats), 21)), atol=1e-5)


def test_euler_matrix_is_a_rotation_in_the_stated_order():
  angles = np.random.default_rng(0).uniform(-3, 3, (10, 3))
  m = body.euler_to_matrix(angles)
  np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape),
                             atol=1e-12)
  a, b, c = angles[0]
  rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
  ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
  rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
  np.testing.assert_allclose(m[0], ry @ rz @ rx, atol=1e-12)


def test_feet_on_floor_and_steps_carry_the_body():
  walk = Segment("walk", {"direction": "forward", "speed": "normal", "steps": 6}, 90)
  wave = Segment("wave", {"side": "left", "count": 2, "speed": "normal"}, 40)
  program, joints = _perform([walk, wave])
  feet = [body.L_ANKLE, body.R_ANKLE, body.L_FOOT, body.R_FOOT]
  # Walking or standing, the lowest foot touches the floor in every frame.
  np.testing.assert_allclose(joints[:, feet, 1].min(1), 0.0, atol=1e-9)
  # The body travels forward (+z, the facing at the start) by the length of its strides.
  travel = joints[89, 0] - joints[0, 0]
  assert travel[2] > 2.0 and abs(travel[0]) < 0.3
  # While waving the feet stay where they are.
  np.testing.assert_allclose(joints[100:, feet], np.broadcast_to(joints[100, feet], (30, 4, 3)),
                             atol=0.02)
  # After the feature round trip (retargeting, floor at the lowest point) feet stay down.
  feats = motion_features.joints_to_features(joints, "humanml3d")
  recovered = motion_features.features_to_joints(feats, 22)
  assert recovered[:, feet, 1].min(1).max() < 0.02
  assert recovered[..., 1].min() > -1e-4


def test_planted_feet_do_not_slide():
  segment = Segment("run", {"direction": "forward", "speed": "normal", "steps": 8}, 70)
  clip = actions.ACTIONS["run"].render(segment.params, segment.frames, _style())
  joints = grounding.ground(clip, body.rest_offsets())
  for foot in (body.L_FOOT, body.R_FOOT):
    held = clip.contacts[1:, foot] & clip.contacts[:-1, foot]
    assert held.any()
    step = np.linalg.norm(joints[1:, foot] - joints[:-1, foot], axis=-1)[held]
    assert step.max() < 1e-6
    np.testing.assert_allclose(joints[1:, foot, 1][held], 0.0, atol=1e-9)
  # A run has flight phases: some frames have no foot on the floor.
  assert (~clip.contacts.any(1)).any()
  assert joints[:, [body.L_FOOT, body.R_FOOT], 1].min(1).max() > 0.01


def _style(seed=0):
  from input_pipeline.synthetic.clip import Style, standing_pose
  rng = np.random.default_rng(seed)
  return Style(standing_pose(rng), body.rest_offsets(), 1.0, rng)


def test_every_action_renders_with_its_frame_count():
  rng = np.random.default_rng(0)
  for name, kind in actions.ACTIONS.items():
    params = kind.sample(rng)
    frames = max(int(kind.seconds(params) * 20), 20)
    clip = kind.render(params, frames, _style())
    assert clip.angles.shape == (frames, 22, 3), name
    assert clip.contacts.any(1).any(), name
    joints = grounding.ground(clip, body.rest_offsets())
    assert np.isfinite(joints).all() and joints[..., 1].min() >= -1e-9, name


def test_turns_and_sides_move_the_way_they_say():
  left = actions.ACTIONS["turn"].render({"direction": "left", "angle": 90}, 40, _style())
  right = actions.ACTIONS["turn"].render({"direction": "right", "angle": 90}, 40, _style())
  assert left.turn[-1] == pytest.approx(-right.turn[-1]) and left.turn[-1] > 1.3
  jl = grounding.ground(actions.ACTIONS["side_step"].render(
      {"direction": "left", "count": 3, "speed": "normal"}, 80, _style()), body.rest_offsets())
  assert jl[-1, 0, 0] - jl[0, 0, 0] > 0.3  # +x is the body's left
  hand = actions.ACTIONS["raise_arms"].render(
      {"side": "right", "direction": "up", "count": 1, "speed": "normal"}, 40, _style())
  up = grounding.ground(hand, body.rest_offsets())[20]
  assert up[body.R_WRIST, 1] > up[body.HEAD, 1] > up[body.L_WRIST, 1]


def _captions(segments, n=12, seed=0):
  rng = np.random.default_rng(seed)
  return [captions.describe(segments, rng) for _ in range(n)]


def test_captions_carry_the_parameters():
  rng = np.random.default_rng(1)
  for name, kind in actions.ACTIONS.items():
    for _ in range(6):
      params = kind.sample(rng)
      for text in _captions([Segment(name, params, 40)], n=4, seed=int(rng.integers(1 << 30))):
        words = re.findall(r"[\w\-]+", text.lower())
        side = params.get("side")
        if side in ("left", "right"):
          assert side in words, (name, params, text)
        if side == "both":
          assert {"both", "arms", "hands"} & set(words), (name, params, text)
        if params.get("direction") in ("left", "right"):
          assert params["direction"] in words or params["direction"] + "ward" in words, text
        if "rotation" in params:
          assert params["rotation"] in words, (params, text)
        if params.get("count", 1) > 1:
          assert any(w in words for w in COUNT_WORDS[params["count"]]), (name, params, text)
        speed = params.get("speed", "normal")
        slow = {"slowly", "slow", "leisurely", "stroll", "strolls", "strolling", "jog", "jogs",
                "jogging", "easy"}
        fast = {"quickly", "fast", "rapidly", "briskly", "hurries", "hurrying", "sprints",
                "sprinting", "dashes", "dashing"}
        if speed == "slow":
          assert slow & set(words), (name, params, text)
        if speed == "fast":
          assert fast & set(words), (name, params, text)


def test_captions_are_paraphrases_in_order():
  walk = Segment("walk", {"direction": "forward", "speed": "slow", "steps": 5}, 60)
  turn = Segment("turn", {"direction": "left", "angle": 90}, 30)
  texts = _captions([walk, turn], n=20)
  assert len(set(texts)) >= 10
  for text in texts:
    low = text.lower()
    assert "left" in low
    walked = min(low.find(w) for w in ("walk", "stroll", "step", "move") if w in low)
    assert walked < low.find("turn"), text
  program = Program((walk, turn, Segment("jump", {"direction": "in_place", "count": 2}, 45)))
  lines = captions.caption_program(program, np.random.default_rng(0))
  whole = [t for t, s, e in lines if (s, e) == (0, 0)]
  assert 2 <= len(whole) == len({t.lower().rstrip(".") for t in whole})


def test_near_twins_differ_in_one_thing():
  rng = np.random.default_rng(5)
  seen = 0
  for _ in range(60):
    base = composer.sample_program(rng)
    twin = composer.vary(base, rng)
    if twin is None:
      continue
    seen += 1
    a = [(s.action, {k: v for k, v in s.params.items() if k not in actions.HIDDEN})
         for s in base.segments]
    b = [(s.action, {k: v for k, v in s.params.items() if k not in actions.HIDDEN})
         for s in twin.segments]
    assert len(a) == len(b)
    if sorted(map(repr, a)) == sorted(map(repr, b)):
      assert a != b  # the order of two actions was swapped
    else:
      differ = [(x, y) for x, y in zip(a, b) if x != y]
      assert len(differ) == 1 and differ[0][0][0] == differ[0][1][0]
      changed = [k for k in differ[0][0][1] if differ[0][0][1][k] != differ[0][1][1][k]]
      assert len(changed) == 1
    assert composer.MIN_FRAMES <= twin.num_frames <= composer.MAX_FRAMES
  assert seen > 40


def test_tagging_and_span_seconds():
  assert tagging.tag("A man walks forward, then jumps twice.") == (
      "a/DET man/NOUN walk/VERB forward/ADV then/ADV jump/VERB twice/ADV")
  assert tagging.tag("someone does two jumps") == "someone/PRON do/VERB two/NUM jump/NOUN"
  for frame in range(400):
    assert int(float(writer.seconds(frame)) * 20) == frame
  with pytest.raises(ValueError, match="#"):
    writer.caption_line("a # b", 0, 0)


def test_bad_arguments_are_reported(tmp_path):
  with pytest.raises(ValueError, match="num_motions"):
    generate_dataset(tmp_path / "x", 0)
  foreign = tmp_path / "foreign"
  foreign.mkdir()
  (foreign / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match=str(foreign)):
    generate_dataset(foreign, 2)
  a_file = tmp_path / "file"
  a_file.write_text("")
  with pytest.raises(NotADirectoryError, match=str(a_file)):
    generate_dataset(a_file, 2)
  assert cli.main(["--out", str(foreign), "--num-motions", "2"]) == 2


def test_command_line_writes_dataset_and_preview(tmp_path, capsys):
  out = tmp_path / "cli"
  gif = tmp_path / "clip.gif"
  assert cli.main(["--out", str(out), "--num-motions", "2", "--seed", "3", "--preview",
                   "M000001", "--preview-out", str(gif), "--preview-stride", "10"]) == 0
  assert (out / "new_joint_vecs" / "M000001.npy").is_file()
  assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
  assert "wrote" in capsys.readouterr().out
  assert cli.main(["--out", str(out), "--num-motions", "2", "--preview", "999999",
                   "--overwrite"]) == 2
  assert "999999" in capsys.readouterr().err


def test_a_dataset_is_replaced_only_with_overwrite(tmp_path, capsys):
  out = tmp_path / "data"
  assert cli.main(["--out", str(out), "--num-motions", "2", "--seed", "3"]) == 0
  before = (out / "Mean.npy").read_bytes()
  capsys.readouterr()
  assert cli.main(["--out", str(out), "--num-motions", "3", "--seed", "4"]) == 2
  assert capsys.readouterr().err.strip() == (
      f"error: {out} already holds a synthetic dataset (workdirs trained on it read its splits "
      "and Mean/Std); pass --overwrite to replace it, or choose another --out")
  assert (out / "Mean.npy").read_bytes() == before
  assert cli.main(["--out", str(out), "--num-motions", "3", "--seed", "4", "--overwrite"]) == 0
  assert (out / "Mean.npy").read_bytes() != before
