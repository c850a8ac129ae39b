"""HumanML3D/KIT-ML features: real clip 000612, clips with known answers, jax path, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline import dataset_kinds
from input_pipeline.motion import features as F
from input_pipeline.motion import quaternion as Q
from input_pipeline.motion import skeleton as S

KINDS = ("humanml3d", "kitml")


@pytest.fixture(scope="module")
def clip_612(humanml3d_sample_dir):
  return np.load(humanml3d_sample_dir / "000612.npy")


def _rest_pose(kind: str) -> np.ndarray:
  """The dataset's target bone lengths laid along the raw offsets, facing +z.

  T2M's KIT-ML face joints make the raw-offset pose face -z, hence the half
  turn for KIT-ML.
  """
  body = dataset_kinds.get_kind(kind)
  lengths = S.bone_lengths(body.target_skeleton, body.kinematic_chains)
  pose = S.skeleton_from_lengths(body.raw_offsets, body.kinematic_chains, lengths)
  if kind == "kitml":
    pose = pose * np.array([-1.0, 1.0, -1.0])
  return pose - pose[0] * np.array([1.0, 0.0, 1.0])


def _turn_about_y(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
  """Rotates (T, J, 3) points by angle[t] about +y (z turns towards +x)."""
  c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
  x, y, z = points[..., 0], points[..., 1], points[..., 2]
  return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def _parts(features: np.ndarray, num_joints: int) -> dict[str, np.ndarray]:
  return {k: features[:, s] for k, s in dataset_kinds.feature_groups(num_joints).items()}


def _unit_speed(kind: str) -> float:
  return 1000.0 if kind == "kitml" else 1.0  # KIT-ML is in millimetres.


# ------------------------------------------------------------- skeleton ----

def test_target_skeleton_is_the_sample_file(humanml3d_sample_dir):
  example = np.load(humanml3d_sample_dir / "skeleton_example_smplh52.npy")
  np.testing.assert_array_equal(S.HUMANML3D_TARGET_SKELETON, example[:22])


@pytest.mark.parametrize("kind", KINDS)
def test_skeleton_facts_are_consistent(kind):
  body = dataset_kinds.get_kind(kind)
  j = body.num_joints
  assert body.raw_offsets.shape == body.target_skeleton.shape == (j, 3)
  assert sorted({i for c in body.kinematic_chains for i in c}) == list(range(j))
  assert (body.parents[1:] >= 0).all() and body.parents[0] == -1
  np.testing.assert_array_equal(np.linalg.norm(body.raw_offsets[1:], axis=-1), 1.0)
  assert sorted(body.mirror_permutation) == list(range(j))
  perm = np.array(body.mirror_permutation)
  np.testing.assert_array_equal(perm[perm], np.arange(j))
  # Mirroring must swap the face and foot joints with their partners.
  face = body.face_joints
  assert (perm[face[0]], perm[face[2]]) == (face[1], face[3])
  np.testing.assert_array_equal(perm[list(body.foot_left)], body.foot_right)
  assert body.feature_dim == dataset_kinds.feature_dim(j) == {22: 263, 21: 251}[j]
  lengths = S.bone_lengths(body.target_skeleton, body.kinematic_chains)
  assert lengths[0] == 0 and (lengths[1:] > 0).all()


def test_kitml_target_is_millimetres_and_stands_on_the_floor():
  body = dataset_kinds.get_kind("kitml")
  assert body.target_skeleton[:, 1].min() == 0.0
  height = body.target_skeleton[:, 1].max()
  assert 1400.0 < height < 2000.0


def test_bone_lengths_of_a_known_chain():
  joints = np.array([[0, 0, 0], [3, 4, 0], [3, 4, 2]], dtype=float)
  lengths = S.bone_lengths(joints[None], [[0, 1, 2]])
  np.testing.assert_allclose(lengths, [[0.0, 5.0, 2.0]])


def test_get_kind_rejects_unknown_kind():
  with pytest.raises(ValueError, match="unknown dataset kind .amass."):
    dataset_kinds.get_kind("amass")


# --------------------------------------------------------- real clip -------

def _repair_heading_flips(features: np.ndarray) -> tuple[np.ndarray, list[int]]:
  """Undoes the arcsin sign flip on rows where the heading passes 180 degrees.

  A flipped row has a rate of the opposite sign to both neighbours, and with
  its sign restored the integrated half-angle crosses pi/2 on that row.
  """
  fixed = features.copy()
  rate = fixed[:, 0]
  rows = []
  for t in range(1, len(rate) - 1):
    half_angle = rate[:t].sum()
    restored = half_angle - rate[t]
    isolated = np.sign(rate[t - 1]) == np.sign(rate[t + 1]) == -np.sign(rate[t])
    crosses = np.floor(half_angle / np.pi + 0.5) != np.floor(restored / np.pi + 0.5)
    if isolated and crosses:
      rate[t] = -rate[t]
      rows.append(t)
  return fixed, rows


def _with_last_frame(features: np.ndarray, joints: np.ndarray) -> np.ndarray:
  """Appends the frame recover_from_ric drops, from the last local velocities."""
  facing, _ = F.root_trajectory(features)
  j = joints.shape[1]
  step = features[-1, dataset_kinds.feature_groups(j)["joint_velocities"]].reshape(j, 3)
  last = joints[-1] + Q.qrot(np.broadcast_to(Q.qinv(facing[-1]), (j, 4)), step)
  return np.concatenate([joints, last[None]])


def test_recovered_612_has_target_bones_floor_and_start(clip_612):
  joints = F.features_to_joints(clip_612)
  assert joints.shape == (199, 22, 3)
  body = dataset_kinds.get_kind("humanml3d")
  lengths = S.bone_lengths(joints, body.kinematic_chains)
  target = S.bone_lengths(body.target_skeleton, body.kinematic_chains)
  np.testing.assert_allclose(lengths, np.broadcast_to(target, lengths.shape), atol=1e-4)
  # Feet on the floor: nothing below it, and the feet touch it.
  assert joints[..., 1].min() > -1e-4
  feet = list(body.foot_left + body.foot_right)
  assert joints[:, feet, 1].min() < 1e-4
  np.testing.assert_allclose(joints[0, 0, [0, 2]], 0.0, atol=1e-7)
  # The first frame faces +z: its hips and shoulders point right along -x.
  r_hip, l_hip, sdr_r, sdr_l = body.face_joints
  across = joints[0, r_hip] - joints[0, l_hip] + joints[0, sdr_r] - joints[0, sdr_l]
  assert abs(across[2]) < 1e-4 * np.linalg.norm(across[[0, 2]]) and across[0] < 0


def test_612_features_are_reproduced_from_its_joints(clip_612):
  repaired, rows = _repair_heading_flips(clip_612)
  assert rows == [142]  # 000612 turns past 180 degrees once
  joints = _with_last_frame(repaired, F.features_to_joints(repaired))
  again = F.joints_to_features(joints)
  assert again.shape == clip_612.shape and again.dtype == np.float32
  got, want = _parts(again, 22), _parts(clip_612, 22)
  tolerance = {"root_angular_velocity": 1e-5, "root_linear_velocity": 1e-5,
               "root_height": 1e-5, "joint_positions": 1e-5, "joint_rotations": 1e-4,
               "joint_velocities": 1e-5}
  for part, atol in tolerance.items():
    np.testing.assert_allclose(got[part], want[part], atol=atol, err_msg=part)
  np.testing.assert_array_equal(got["foot_contacts"], want["foot_contacts"])


def test_612_plain_round_trip(clip_612):
  """joints_to_features(features_to_joints(x)) on rows that neither the heading
  flip (row 142) nor the dropped last frame reach through the facing filter."""
  again = F.joints_to_features(F.features_to_joints(clip_612))
  assert again.shape == (198, 263)
  reach = F.FACING_RADIUS
  rows = slice(0, 142 - reach)
  got, want = _parts(again[rows], 22), _parts(clip_612[rows], 22)
  for part in ("root_angular_velocity", "root_linear_velocity", "root_height",
               "joint_velocities"):
    np.testing.assert_allclose(got[part], want[part], atol=1e-3, err_msg=part)
  np.testing.assert_allclose(got["joint_positions"], want["joint_positions"], atol=1e-2)
  np.testing.assert_allclose(got["joint_rotations"], want["joint_rotations"], atol=2e-2)
  contacts = dataset_kinds.feature_groups(22)["foot_contacts"]
  assert (again[:, contacts] == clip_612[:198, contacts]).mean() >= 0.99


# ------------------------------------------------- clips with known answers --

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("speed,contact", [(0.02, 1.0), (0.1, 0.0)])
def test_walking_straight_along_z(kind, speed, contact):
  body = dataset_kinds.get_kind(kind)
  pose = _rest_pose(kind)
  speed = speed * _unit_speed(kind)
  # KIT-ML's contact threshold is in squared millimetres per frame.
  threshold = 0.002 * _unit_speed(kind) ** 2
  t = 30
  joints = pose[None] + np.arange(t)[:, None, None] * np.array([0.0, 0.0, speed])
  got = _parts(F.joints_to_features(joints, kind, feet_threshold=threshold),
               body.num_joints)
  np.testing.assert_allclose(got["root_angular_velocity"], 0.0, atol=1e-7)
  np.testing.assert_allclose(got["root_linear_velocity"],
                             np.tile([0.0, speed], (t - 1, 1)), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(got["root_height"], pose[0, 1], rtol=1e-6)
  ric = (pose[1:] - pose[0] * np.array([1.0, 0.0, 1.0])).reshape(-1)
  np.testing.assert_allclose(got["joint_positions"], np.tile(ric, (t - 1, 1)), rtol=1e-6, atol=1e-4)
  np.testing.assert_allclose(got["joint_velocities"],
                             np.tile([0.0, 0.0, speed], (t - 1, body.num_joints)),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(got["foot_contacts"], contact)
  np.testing.assert_allclose(got["joint_rotations"], got["joint_rotations"][:1].repeat(t - 1, 0),
                             atol=1e-6)
  if kind == "humanml3d":
    # Every bone lies along its raw offset, so every rotation is the identity.
    np.testing.assert_allclose(got["joint_rotations"],
                               np.tile([1.0, 0, 0, 0, 1.0, 0], (t - 1, 21)), atol=1e-6)
  recovered = F.features_to_joints(F.joints_to_features(joints, kind), body.num_joints)
  np.testing.assert_allclose(recovered, joints[:-1], rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_static_pose_has_zero_velocities(kind):
  body = dataset_kinds.get_kind(kind)
  joints = np.repeat(_rest_pose(kind)[None], 12, axis=0)
  got = _parts(F.joints_to_features(joints, kind), body.num_joints)
  for part in ("root_angular_velocity", "root_linear_velocity", "joint_velocities"):
    np.testing.assert_array_equal(got[part], 0.0)
  np.testing.assert_array_equal(got["foot_contacts"], 1.0)
  np.testing.assert_allclose(got["joint_positions"], got["joint_positions"][:1].repeat(11, 0), atol=1e-6)


def test_turning_in_place_at_a_known_rate():
  """A body turning left at omega rad/frame: rate -omega/2 in HumanML3D's
  half-angle convention, wherever the facing filter does not reach the ends."""
  pose, omega, t = _rest_pose("humanml3d"), 0.01, 200
  joints = _turn_about_y(np.repeat(pose[None], t, axis=0), omega * np.arange(t))
  got = _parts(F.joints_to_features(joints), 22)
  inner = slice(F.FACING_RADIUS, t - 1 - F.FACING_RADIUS)
  np.testing.assert_allclose(got["root_angular_velocity"][inner], -omega / 2, atol=1e-6)
  np.testing.assert_allclose(got["root_linear_velocity"], 0.0, atol=1e-6)
  ric = (pose[1:] - pose[0] * np.array([1.0, 0.0, 1.0])).reshape(-1)
  np.testing.assert_allclose(got["joint_positions"][inner], np.tile(ric, (inner.stop - inner.start, 1)),
                             atol=1e-5)
  step = _turn_about_y(pose[None], np.array([omega]))[0] - pose
  np.testing.assert_allclose(got["joint_velocities"][inner],
                             np.tile(step.reshape(-1), (inner.stop - inner.start, 1)),
                             atol=1e-6)
  np.testing.assert_allclose(F.features_to_joints(F.joints_to_features(joints)),
                             joints[:-1], atol=1e-5)


def test_turning_past_180_degrees_flips_one_rate_like_humanml3d():
  pose, omega, t = _rest_pose("humanml3d"), 0.03, 200
  joints = _turn_about_y(np.repeat(pose[None], t, axis=0), omega * np.arange(t))
  rate = F.joints_to_features(joints)[:, 0]
  inner = rate[F.FACING_RADIUS:t - 1 - F.FACING_RADIUS]
  flipped = np.flatnonzero(inner > 0)
  # The heading passes pi between frames 104 and 105.
  assert (flipped + F.FACING_RADIUS).tolist() == [104]
  np.testing.assert_allclose(np.abs(inner), omega / 2, atol=1e-6)


def test_kitml_features_keep_millimetres():
  pose = _rest_pose("kitml")
  joints = pose[None] + np.arange(10)[:, None, None] * np.array([0.0, 0.0, 20.0])
  features = F.joints_to_features(joints, "kitml")
  assert features.shape == (9, 251) and features.dtype == np.float32
  np.testing.assert_allclose(features[:, 3], pose[0, 1], rtol=1e-6)
  # 20 mm per frame is far above KIT-ML's 0.05 mm^2 contact threshold.
  np.testing.assert_array_equal(features[:, -4:], 0.0)


def test_retargeting_scales_the_root_path_by_leg_length(clip_612):
  joints = F.features_to_joints(clip_612[:40])
  scaled = joints * 1.7
  np.testing.assert_allclose(F.joints_to_features(scaled), F.joints_to_features(joints),
                             atol=1e-5)


def test_custom_target_skeleton_sets_the_bone_lengths(clip_612):
  body = dataset_kinds.get_kind("humanml3d")
  target = body.target_skeleton * 1.25
  features = F.joints_to_features(F.features_to_joints(clip_612[:40]), target_skeleton=target)
  recovered = F.features_to_joints(features)
  lengths = S.bone_lengths(recovered, body.kinematic_chains)
  want = S.bone_lengths(target, body.kinematic_chains)
  np.testing.assert_allclose(lengths, np.broadcast_to(want, lengths.shape), atol=1e-5)


# ---------------------------------------------------------------- mirror ----

@pytest.mark.parametrize("kind", KINDS)
def test_mirror_twice_is_identity_and_negates_x(kind):
  rng = np.random.default_rng(0)
  joints = rng.normal(size=(5, dataset_kinds.get_kind(kind).num_joints, 3))
  mirrored = F.mirror_joints(joints, kind)
  np.testing.assert_array_equal(F.mirror_joints(mirrored, kind), joints)
  np.testing.assert_array_equal(mirrored[:, 0, 0], -joints[:, 0, 0])
  np.testing.assert_array_equal(mirrored[:, 0, 1:], joints[:, 0, 1:])


def test_mirrored_clip_has_mirrored_features(clip_612):
  """With left-right symmetric bones, features of the mirror image are the
  mirror of the features: turns and sideways motion change sign."""
  body = dataset_kinds.get_kind("humanml3d")
  perm = list(body.mirror_permutation)
  lengths = S.bone_lengths(body.target_skeleton, body.kinematic_chains)
  symmetric = S.skeleton_from_lengths(body.raw_offsets, body.kinematic_chains,
                                      (lengths + lengths[perm]) / 2)
  joints = F.features_to_joints(
      F.joints_to_features(F.features_to_joints(clip_612), target_skeleton=symmetric))
  got = _parts(F.joints_to_features(F.mirror_joints(joints), target_skeleton=symmetric), 22)
  want = _parts(F.joints_to_features(joints, target_skeleton=symmetric), 22)
  flip_x = np.array([-1.0, 1.0, 1.0])
  np.testing.assert_allclose(got["root_angular_velocity"], -want["root_angular_velocity"],
                             atol=1e-5)
  np.testing.assert_allclose(got["root_linear_velocity"],
                             want["root_linear_velocity"] * np.array([-1.0, 1.0]), atol=1e-5)
  np.testing.assert_allclose(got["root_height"], want["root_height"], atol=1e-5)
  ric = np.concatenate([np.zeros((len(joints) - 1, 1, 3)),
                        want["joint_positions"].reshape(-1, 21, 3)], axis=1)
  np.testing.assert_allclose(got["joint_positions"].reshape(-1, 21, 3),
                             (ric[:, perm] * flip_x)[:, 1:], atol=1e-5)
  velocity = want["joint_velocities"].reshape(-1, 22, 3)
  np.testing.assert_allclose(got["joint_velocities"].reshape(-1, 22, 3),
                             velocity[:, perm] * flip_x, atol=1e-5)
  np.testing.assert_array_equal(got["foot_contacts"], want["foot_contacts"][:, [2, 3, 0, 1]])


# ------------------------------------------------------------------ jax -----

def test_jax_recovery_under_jit_equals_numpy(clip_612):
  want = F.features_to_joints(clip_612)
  recover = jax.jit(F.features_to_joints, static_argnums=1)
  got = recover(jnp.asarray(clip_612, jnp.float32), 22)
  assert isinstance(got, jax.Array) and got.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
  batch = np.stack([clip_612[:100], clip_612[99:199]]).astype(np.float32)
  got = np.asarray(recover(jnp.asarray(batch), 22))
  assert got.shape == (2, 100, 22, 3)
  np.testing.assert_allclose(got[0], F.features_to_joints(batch[0]), atol=1e-5)
  np.testing.assert_allclose(got[1], F.features_to_joints(batch[1]), atol=1e-5)


def test_jax_recovery_of_kitml_features():
  joints = _rest_pose("kitml")[None] + np.arange(8)[:, None, None] * np.array([0, 0, 15.0])
  features = F.joints_to_features(joints, "kitml")
  got = jax.jit(lambda f: F.features_to_joints(f, 21))(jnp.asarray(features))
  np.testing.assert_allclose(np.asarray(got), F.features_to_joints(features, 21), rtol=1e-6,
                             atol=1e-3)


def test_quaternions_agree_between_numpy_and_jax():
  rng = np.random.default_rng(1)
  q = rng.normal(size=(7, 4))
  q /= np.linalg.norm(q, axis=-1, keepdims=True)
  v = rng.normal(size=(7, 3))
  np.testing.assert_allclose(np.asarray(Q.qrot(jnp.asarray(q), jnp.asarray(v))),
                             Q.qrot(q, v), atol=1e-5)
  # qrot by q then by its inverse is the identity, and qmul composes rotations.
  np.testing.assert_allclose(Q.qrot(Q.qinv(q), Q.qrot(q, v)), v, atol=1e-12)
  r = rng.normal(size=(7, 4))
  r /= np.linalg.norm(r, axis=-1, keepdims=True)
  np.testing.assert_allclose(Q.qrot(Q.qmul(q, r), v), Q.qrot(q, Q.qrot(r, v)), atol=1e-12)
  np.testing.assert_allclose(Q.to_matrix(q) @ v[..., None], Q.qrot(q, v)[..., None], atol=1e-12)
  a, b = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
  np.testing.assert_allclose(Q.qrot(Q.qbetween(a, b), a / np.linalg.norm(a, axis=-1)[:, None]),
                             b / np.linalg.norm(b, axis=-1)[:, None], atol=1e-12)
  # Opposite vectors still give a rotation taking one onto the other.
  np.testing.assert_allclose(Q.qrot(Q.qbetween(a, -a), a), -a, atol=1e-12)
  both = np.concatenate([b, -a])
  np.testing.assert_allclose(
      np.asarray(jax.jit(Q.qbetween)(jnp.asarray(np.concatenate([a, a])), jnp.asarray(both))),
      Q.qbetween(np.concatenate([a, a]), both), atol=1e-5)


def test_facing_filter_matches_scipy():
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(2).normal(size=(150, 3))
  np.testing.assert_allclose(F._smooth_over_time(x),
                             ndimage.gaussian_filter1d(x, 20, axis=0, mode="nearest"),
                             atol=1e-12)


# ---------------------------------------------------------------- errors ----

@pytest.mark.parametrize("joints,message", [
    (np.zeros((10, 66)), "shape"),
    (np.zeros((10, 21, 3)), "21 joints"),
    (np.zeros((10, 24, 3)), r"24 joints.*SMPL joints: keep the first 22 .*joints\[:, :22\]"),
    (np.zeros((10, 52, 3)), r"SMPL-H joints"),
    (np.zeros((1, 22, 3)), "at least 2"),
])
def test_bad_joints_are_rejected(joints, message):
  with pytest.raises(ValueError, match=message):
    F.joints_to_features(joints, name="clip_7.npy")


def test_z_up_joints_are_refused_with_the_fix(clip_612):
  joints = F.features_to_joints(clip_612)
  z_up = np.stack([joints[..., 0], -joints[..., 2], joints[..., 1]], axis=-1)
  with pytest.raises(ValueError, match=r"clip_7\.npy: joints are z-up.*joints\[\.\.\., \[0, 2, 1\]\] "
                                       r"\* \[1, 1, -1\]"):
    F.joints_to_features(z_up, name="clip_7.npy")
  fixed = z_up[..., [0, 2, 1]] * np.array([1, 1, -1])
  np.testing.assert_allclose(F.joints_to_features(fixed), F.joints_to_features(joints),
                             atol=1e-5)


def test_millimetres_give_the_features_of_metres(clip_612):
  joints = F.features_to_joints(clip_612)
  np.testing.assert_allclose(F.joints_to_features(joints * 1000.0),
                             F.joints_to_features(joints), atol=1e-4)


def test_nan_joints_name_the_source_and_frame():
  joints = np.repeat(_rest_pose("humanml3d")[None], 5, axis=0)
  joints[3, 4, 1] = np.nan
  with pytest.raises(ValueError, match=r"clip_7\.npy.*NaN.*frame 3"):
    F.joints_to_features(joints, name="clip_7.npy")


def test_collapsed_bone_is_rejected():
  joints = np.repeat(_rest_pose("humanml3d")[None], 5, axis=0)
  joints[2, 4] = joints[2, 1]
  with pytest.raises(ValueError, match="bone 1->4 has zero length at frame 2"):
    F.joints_to_features(joints)


def test_bad_target_skeleton_is_rejected():
  with pytest.raises(ValueError, match="target_skeleton"):
    F.joints_to_features(np.repeat(_rest_pose("humanml3d")[None], 3, axis=0),
                         target_skeleton=np.zeros((21, 3)))


@pytest.mark.parametrize("features,num_joints,message", [
    (np.zeros((10, 251)), 22, "263"),
    (np.zeros((10, 263)), 21, "251"),
    (np.zeros((263,)), 22, "shape"),
    (np.zeros((10, 263)), 24, "num_joints"),
    (np.full((10, 263), np.nan), 22, "NaN"),
])
def test_bad_features_are_rejected(features, num_joints, message):
  with pytest.raises(ValueError, match=message):
    F.features_to_joints(features, num_joints)


def test_mirror_rejects_wrong_joint_count():
  with pytest.raises(ValueError, match="21, 3"):
    F.mirror_joints(np.zeros((4, 22, 3)), "kitml")
