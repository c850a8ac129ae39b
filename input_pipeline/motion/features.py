"""HumanML3D / KIT-ML motion features, from joint positions and back.

`joints_to_features` follows HumanML3D's `motion_representation` (`process_file`
with its `Skeleton.inverse_kinematics_np`); `features_to_joints` is its
`recover_from_ric`. Layout of one frame's feature vector (J joints):

  root angular velocity about y (1) | root linear velocity xz (2) |
  root height (1) | ric: root-relative joint positions 3(J-1) |
  rot: 6D joint rotations 6(J-1) | local joint velocities 3J | foot contacts 4

J = 22 gives 263 dims (HumanML3D), J = 21 gives 251 (KIT-ML); the named slices are
`input_pipeline.dataset_kinds.feature_groups`. A clip of T frames gives T-1 feature rows.

The released features carry some quirks of that code, kept here on purpose so
that new clips look like the datasets' own (they are reproduced to ~1e-5 on a
real HumanML3D clip):
- the facing used for rotations and velocities is a Gaussian-smoothed
  (sigma 20 frames) direction from shoulders minus hips, except on the first
  frame, where it is the clip's initial +z facing;
- arm chains take their first rotation relative to the root, not the spine;
- the angular velocity is arcsin of the y part of the frame-to-frame turn, so
  on a frame where the heading passes 180 degrees its sign is flipped
  and `features_to_joints` turns the rest of the clip by twice that frame's turn.
"""
from collections.abc import Sequence

import numpy as np

from input_pipeline import dataset_kinds
from input_pipeline.dataset_kinds import DatasetKind, feature_dim, feature_groups
from input_pipeline.motion import quaternion as quat
from input_pipeline.motion import skeleton as skel

_UP = np.array([0.0, 1.0, 0.0])
# HumanML3D smooths the facing direction with scipy's gaussian_filter1d at
# sigma 20 frames and the default truncation of 4 sigma.
FACING_SIGMA = 20.0
FACING_RADIUS = int(4.0 * FACING_SIGMA + 0.5)


# ------------------------------------------------------------- validation --

def _what(name: str | None, default: str) -> str:
  return f"{name}: {default}" if name else default


# Joint counts of the SMPL family, whose first 22 joints are HumanML3D's body.
_SMPL_JOINT_COUNTS = {24: "SMPL", 52: "SMPL-H", 55: "SMPL-X"}
# Share of the frames whose pelvis→head direction lies mostly along z that marks z-up data.
_Z_UP_FRAME_SHARE = 0.5


def _check_joints(joints, body: DatasetKind, name: str | None,
                  check_up_axis: bool = True) -> np.ndarray:
  joints = np.asarray(joints)
  what = _what(name, "joints")
  if joints.ndim != 3 or joints.shape[-1] != 3:
    raise ValueError(f"{what} must have shape (T, J, 3), got {joints.shape}")
  count = joints.shape[1]
  if count != body.num_joints:
    fix = ""
    if body.name == "humanml3d" and count in _SMPL_JOINT_COUNTS:
      fix = (f"; these look like {_SMPL_JOINT_COUNTS[count]} joints: keep the first 22 SMPL "
             "body joints, joints[:, :22]")
    raise ValueError(f"{what} has {count} joints; {body.name} needs {body.num_joints} "
                     f"({', '.join(body.joint_names[:3])}, … in that order){fix}")
  if joints.shape[0] < 2:
    raise ValueError(f"{what} has {joints.shape[0]} frame(s); at least 2 are needed (the "
                     "features hold velocities between consecutive frames)")
  if not np.issubdtype(joints.dtype, np.number):
    raise ValueError(f"{what} must be numeric, got dtype {joints.dtype}")
  bad = ~np.isfinite(joints)
  if bad.any():
    frame = int(np.argwhere(bad)[0, 0])
    raise ValueError(f"{what} contains NaN or inf (first at frame {frame})")
  joints = joints.astype(np.float64)
  if check_up_axis:
    head = body.kinematic_chains[0][-1]
    spine = joints[:, head] - joints[:, 0]
    along_z = np.abs(spine[:, 2]) > 0.8 * np.linalg.norm(spine, axis=-1)
    if np.mean(along_z) > _Z_UP_FRAME_SHARE:
      raise ValueError(
          f"{what} are z-up: the pelvis→head direction lies along z in "
          f"{100 * np.mean(along_z):.0f}% of the frames, and {body.name} features need y up "
          "(a z-up body would give the features of a body lying on the floor). Rotate it "
          "first: joints[..., [0, 2, 1]] * [1, 1, -1] turns z-up into y-up; pass "
          "check_up_axis=False if the body really lies along z")
  return joints


def _check_target(target, body: DatasetKind) -> np.ndarray:
  if target is None:
    return body.target_skeleton
  target = np.asarray(target, dtype=np.float64)
  if target.shape != (body.num_joints, 3):
    raise ValueError(
        f"target_skeleton must have shape ({body.num_joints}, 3), got {target.shape}")
  if not np.isfinite(target).all():
    raise ValueError("target_skeleton contains NaN or inf")
  lengths = skel.bone_lengths(target, body.kinematic_chains)[1:]
  if (lengths <= 0).any():
    raise ValueError("target_skeleton has a zero-length bone")
  return target


# ---------------------------------------------------------------- helpers --

def _unit(v: np.ndarray) -> np.ndarray:
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _bone_directions(joints: np.ndarray, body: DatasetKind, what: str) -> np.ndarray:
  """Unit parent->child directions (T, J, 3); the root row is unused."""
  parent = body.parents
  bones = joints - joints[:, np.maximum(parent, 0)]
  norms = np.linalg.norm(bones, axis=-1)
  zero = (norms[:, 1:] < 1e-12)
  if zero.any():
    frame, j = np.argwhere(zero)[0]
    raise ValueError(
        f"{what}: bone {int(parent[j + 1])}->{j + 1} has zero length at frame {frame}")
  norms[:, 0] = 1.0
  return bones / norms[..., None]


def _smooth_over_time(x: np.ndarray) -> np.ndarray:
  """Gaussian filter along axis 0 with edge replication (scipy's mode='nearest')."""
  r = FACING_RADIUS
  taps = np.arange(-r, r + 1, dtype=np.float64)
  kernel = np.exp(-0.5 * (taps / FACING_SIGMA) ** 2)
  kernel /= kernel.sum()
  padded = np.concatenate([np.repeat(x[:1], r, axis=0), x, np.repeat(x[-1:], r, axis=0)])
  windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * r + 1, axis=0)
  return windows @ kernel


def _facing_rotation(joints: np.ndarray, body: DatasetKind, *, hips_reversed: bool,
                     smooth: bool, what: str) -> np.ndarray:
  """Per-frame rotation about y turning the body's facing to +z: (T, 4).

  HumanML3D's inverse kinematics unpacks its (r_hip, l_hip, sdr_r, sdr_l)
  indices as (l_hip, r_hip, ...), so there the hip vector enters with the
  opposite sign and the facing comes from shoulders minus hips; its released
  rotations and velocities depend on that, so it is kept (hips_reversed).
  """
  r_hip, l_hip, sdr_r, sdr_l = body.face_joints
  hips = joints[:, r_hip] - joints[:, l_hip]
  across = (-hips if hips_reversed else hips) + joints[:, sdr_r] - joints[:, sdr_l]
  forward = np.cross(_UP, _unit(across))
  if smooth:
    forward = _smooth_over_time(forward)
  horizontal = np.linalg.norm(forward, axis=-1)
  if not (horizontal > 1e-8).all():
    frame = int(np.argmin(horizontal))
    raise ValueError(
        f"{what}: facing direction is undefined at frame {frame} (hip and shoulder "
        f"lines give no horizontal left-right axis)")
  # The rotation taking the heading onto +z, written with atan2 so that a body
  # facing exactly -z is defined; elsewhere it equals HumanML3D's qbetween.
  heading = np.arctan2(forward[:, 0], forward[:, 2])
  return quat.about_y(-0.5 * heading)


def _inverse_kinematics(joints: np.ndarray, body: DatasetKind, what: str) -> np.ndarray:
  """Local joint rotations (T, J, 4) taking raw offsets onto the bones.

  As in HumanML3D, every chain starts from the root's rotation, including the
  arm chains that branch off the spine.
  """
  root = _facing_rotation(joints, body, hips_reversed=True, smooth=True, what=what)
  # The released features were made with the first frame's root rotation set
  # to identity (the clip was already turned to face +z from that frame), so
  # the first angular velocity carries the jump to the smoothed facing.
  root[0] = np.array([1.0, 0.0, 0.0, 0.0])
  directions = _bone_directions(joints, body, what)
  local = np.zeros(joints.shape[:-1] + (4,))
  local[:, 0] = root
  for chain in body.kinematic_chains:
    parent_rotation = root
    for child in chain[1:]:
      raw = np.broadcast_to(body.raw_offsets[child], directions[:, child].shape)
      world = quat.qbetween(raw, directions[:, child])
      local[:, child] = quat.qmul(quat.qinv(parent_rotation), world)
      parent_rotation = world
  return local


def _retarget(joints: np.ndarray, body: DatasetKind, target: np.ndarray,
              what: str) -> np.ndarray:
  """HumanML3D's uniform_skeleton: target bone lengths, scaled root path.

  Its inverse then forward kinematics keeps every bone's direction and swaps
  in the target length, which is what is done here directly.
  """
  src_lengths = skel.bone_lengths(joints[0], body.kinematic_chains)
  tgt_lengths = skel.bone_lengths(target, body.kinematic_chains)
  leg = list(body.lower_legs)
  scale = tgt_lengths[leg].sum() / src_lengths[leg].sum()
  directions = _bone_directions(joints, body, what)
  out = np.zeros_like(joints)
  out[:, 0] = joints[:, 0] * scale
  for chain in body.kinematic_chains:
    for parent, child in zip(chain[:-1], chain[1:]):
      out[:, child] = out[:, parent] + directions[:, child] * tgt_lengths[child]
  return out


def _foot_contacts(joints: np.ndarray, feet: Sequence[int], threshold: float) -> np.ndarray:
  step = joints[1:, list(feet)] - joints[:-1, list(feet)]
  return ((step**2).sum(-1) < threshold).astype(np.float64)


# --------------------------------------------------------------- features --

def joints_to_features(joints, kind: str = "humanml3d", target_skeleton=None,
                       feet_threshold: float | None = None, *,
                       name: str | None = None, check_up_axis: bool = True) -> np.ndarray:
  """HumanML3D's feature vectors of a clip of joint positions.

  Args:
    joints: (T, J, 3) positions, y up, T >= 2; J = 22 for "humanml3d" (the first 22 SMPL
      joints), 21 for "kitml". Any length unit: the clip is retargeted to the target
      skeleton's bone lengths, so metres and millimetres give the same features.
    kind: "humanml3d" or "kitml".
    target_skeleton: (J, 3) pose whose bone lengths the clip is retargeted to;
      the dataset's standard skeleton when None.
    feet_threshold: squared per-frame foot displacement below which a foot is
      in contact; the dataset's value (0.002 HumanML3D, 0.05 KIT-ML) when None.
    name: what the joints are (a file path), used in error messages.
    check_up_axis: refuse clips whose pelvis→head direction lies along z in most frames
      (z-up data); False for a clip that really lies along z.
  Returns:
    (T-1, 263) or (T-1, 251) float32 features.
  Raises:
    ValueError: wrong shape or joint count (with the fix for SMPL-family arrays), fewer
      than 2 frames, non-finite values, z-up data.
  """
  body = dataset_kinds.get_kind(kind)
  what = _what(name, "joints")
  positions = _check_joints(joints, body, name, check_up_axis)
  target = _check_target(target_skeleton, body)
  threshold = body.feet_threshold if feet_threshold is None else float(feet_threshold)

  positions = _retarget(positions, body, target, what)
  positions[..., 1] -= positions[..., 1].min()
  positions = positions - positions[0, 0] * np.array([1.0, 0.0, 1.0])
  face_first = _facing_rotation(positions[:1], body, hips_reversed=False, smooth=False,
                                what=what)
  positions = quat.qrot(np.broadcast_to(face_first, positions.shape[:-1] + (4,)), positions)

  local = _inverse_kinematics(positions, body, what)
  rotations = quat.to_cont6d(local[:, 1:]).reshape(len(local), -1)
  facing = local[:, 0]
  num_joints = body.num_joints
  facing_j = np.broadcast_to(facing[:, None], positions.shape[:-1] + (4,))

  root_step = quat.qrot(facing[1:], positions[1:, 0] - positions[:-1, 0])
  turn = quat.qmul(facing[1:], quat.qinv(facing[:-1]))
  angular_velocity = np.arcsin(np.clip(turn[:, 2:3], -1.0, 1.0))

  centred = positions - positions[:, :1] * np.array([1.0, 0.0, 1.0])
  ric = quat.qrot(facing_j, centred)
  root_height = ric[:, 0, 1:2]

  local_velocity = quat.qrot(facing_j[:-1], positions[1:] - positions[:-1])

  out = np.concatenate([
      angular_velocity,
      root_step[:, [0, 2]],
      root_height[:-1],
      ric[:-1, 1:].reshape(-1, 3 * (num_joints - 1)),
      rotations[:-1],
      local_velocity.reshape(-1, 3 * num_joints),
      _foot_contacts(positions, body.foot_left, threshold),
      _foot_contacts(positions, body.foot_right, threshold),
  ], axis=-1)
  if not np.isfinite(out).all():
    raise ValueError(f"{what}: features are not finite (degenerate pose?)")
  return out.astype(np.float32)


def _check_features(features, num_joints: int):
  if num_joints not in (21, 22):
    raise ValueError(f"num_joints must be 22 (humanml3d) or 21 (kitml), got {num_joints}")
  expected = feature_dim(num_joints)
  shape = tuple(features.shape)
  if len(shape) < 2 or shape[-1] != expected:
    raise ValueError(
        f"features must have shape (..., T, {expected}) for {num_joints} joints, got {shape}")
  if shape[-2] < 1:
    raise ValueError("features have no frames")
  if isinstance(features, np.ndarray) and not np.isfinite(features).all():
    raise ValueError("features contain NaN or inf")


def root_trajectory(features):
  """HumanML3D's recover_root_rot_pos: integrated root facing and position.

  Args:
    features: (..., T, F) numpy or jax array.
  Returns:
    facing (..., T, 4), the rotation taking world to the body frame, and root
    position (..., T, 3); the first frame faces +z with its root above the origin.
  """
  xp = quat.array_namespace(features)
  # The first frame's zeros are shaped from the features, so that a 1-frame clip works too.
  rate = features[..., :-1, 0]
  angle = xp.concatenate([xp.zeros_like(features[..., :1, 0]), xp.cumsum(rate, axis=-1)],
                         axis=-1)
  facing = quat.about_y(angle)
  step = features[..., :-1, 1:3]
  step = xp.concatenate([xp.zeros_like(features[..., :1, 1:3]), step], axis=-2)
  step = xp.stack([step[..., 0], xp.zeros_like(step[..., 0]), step[..., 1]], axis=-1)
  position = xp.cumsum(quat.qrot(quat.qinv(facing), step), axis=-2)
  position = xp.stack([position[..., 0], features[..., 3], position[..., 2]], axis=-1)
  return facing, position


def features_to_joints(features, num_joints: int = 22):
  """Joint positions read off features (HumanML3D's recover_from_ric).

  Works on numpy arrays and on jax arrays (also under jax.jit); the result is
  of the same kind and dtype. Shapes are checked for both, NaN only for numpy.
  Like HumanML3D's new_joints, it gives T frames for T feature rows: the clip's
  last frame is only implied by the last local velocities.

  Args:
    features: (..., T, F) with F = feature_dim(num_joints); leading batch
      dimensions are allowed.
    num_joints: 22 (HumanML3D) or 21 (KIT-ML).
  Returns:
    (..., T, J, 3) joint positions.
  """
  xp = quat.array_namespace(features)
  if xp is np:
    features = np.asarray(features)
  _check_features(features, num_joints)
  facing, root = root_trajectory(features)
  ric = features[..., feature_groups(num_joints)["joint_positions"]]
  ric = ric.reshape(ric.shape[:-1] + (num_joints - 1, 3))
  inverse = xp.broadcast_to(quat.qinv(facing)[..., None, :], ric.shape[:-1] + (4,))
  world = quat.qrot(inverse, ric)
  world = world + xp.stack(
      [root[..., 0], xp.zeros_like(root[..., 0]), root[..., 2]], axis=-1)[..., None, :]
  return xp.concatenate([root[..., None, :], world], axis=-2)


def mirror_joints(joints, kind: str = "humanml3d") -> np.ndarray:
  """Left-right mirror image of a clip, as HumanML3D makes its "M" clips.

  Negates x and swaps left and right joints.

  Args:
    joints: (..., J, 3) positions.
    kind: "humanml3d" or "kitml".
  Returns:
    (..., J, 3) mirrored positions, same dtype.
  """
  body = dataset_kinds.get_kind(kind)
  joints = np.asarray(joints)
  if joints.ndim < 2 or joints.shape[-1] != 3 or joints.shape[-2] != body.num_joints:
    raise ValueError(
        f"joints must have shape (..., {body.num_joints}, 3) for {kind}, got {joints.shape}")
  mirrored = joints[..., list(body.mirror_permutation), :].copy()
  mirrored[..., 0] *= -1
  return mirrored
