"""The 22-joint HumanML3D (SMPL) skeleton and its forward kinematics.

World axes follow HumanML3D: y up, a body at rest faces +z and its left side is +x.
A pose is given as per-joint Euler angles (pitch about x, yaw about y, roll about z)
in the parent's frame; at rest every joint frame is aligned with the world axes, so
for every joint "pitch" is a sagittal rotation and "roll" a frontal one:
  * pitch > 0 swings a downward bone backward (knee flexion) and tilts an upward bone
    forward (bowing); pitch < 0 swings a downward bone forward (hip or shoulder flexion).
  * roll > 0 swings a downward bone toward +x (the body's left).
  * yaw > 0 turns toward +x (the body's left), i.e. counterclockwise seen from above.
"""
import numpy as np

from input_pipeline.motion import skeleton

NUM_JOINTS = 22

(PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3,
 L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW,
 R_ELBOW, L_WRIST, R_WRIST) = range(NUM_JOINTS)

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Left/right partner of every joint (itself for the spine).
MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)

LEGS = {"left": (L_HIP, L_KNEE, L_ANKLE, L_FOOT), "right": (R_HIP, R_KNEE, R_ANKLE, R_FOOT)}
ARMS = {"left": (L_COLLAR, L_SHOULDER, L_ELBOW, L_WRIST),
        "right": (R_COLLAR, R_SHOULDER, R_ELBOW, R_WRIST)}
SPINE = (SPINE1, SPINE2, SPINE3, NECK, HEAD)

# Rest pose directions: upright, arms hanging, thighs and shanks exactly vertical so
# that the two-bone leg solver in legs.py is exact.
_REST_DIRECTIONS = np.array([
    [0.0, 0.0, 0.0],
    [0.058, -0.088, -0.005],
    [-0.058, -0.088, -0.005],
    [0.0, 0.130, -0.020],
    [0.0, -0.392, 0.0],
    [0.0, -0.392, 0.0],
    [0.0, 0.143, 0.010],
    [0.0, -0.429, 0.0],
    [0.0, -0.429, 0.0],
    [0.0, 0.057, 0.005],
    [0.0, -0.060, 0.133],
    [0.0, -0.060, 0.133],
    [0.0, 0.215, -0.040],
    [0.075, 0.115, -0.010],
    [-0.075, 0.115, -0.010],
    [0.0, 0.095, 0.040],
    [0.125, -0.030, -0.010],
    [-0.125, -0.030, -0.010],
    [0.0, -0.260, 0.0],
    [0.0, -0.260, 0.0],
    [0.0, -0.268, 0.0],
    [0.0, -0.268, 0.0],
])


def _target_lengths() -> np.ndarray:
  """Bone lengths (22,) of HumanML3D's retargeting skeleton, left and right averaged.

  Matching them keeps the dataset's retargeting step close to the identity.
  """
  lengths = skeleton.bone_lengths(skeleton.HUMANML3D_TARGET_SKELETON,
                                  skeleton.HUMANML3D_KINEMATIC_CHAINS)
  return 0.5 * (lengths + lengths[list(MIRROR)])


_norms = np.linalg.norm(_REST_DIRECTIONS, axis=-1, keepdims=True)
_REST_OFFSETS = _REST_DIRECTIONS / np.maximum(_norms, 1e-12) * _target_lengths()[:, None]


def rest_offsets() -> np.ndarray:
  """Bone vectors from each joint's parent at rest, (22, 3); row 0 is zero."""
  return _REST_OFFSETS.copy()


def varied_offsets(rng: np.random.Generator, spread: float = 0.03) -> np.ndarray:
  """Rest offsets (22, 3) of a random body: overall size and limb proportions vary.

  Left and right bones get the same factor so the body stays symmetric and its mirror
  image is as plausible as itself.
  """
  size = 1.0 + rng.uniform(-spread, spread)
  per_bone = 1.0 + rng.uniform(-spread / 2, spread / 2, NUM_JOINTS)
  per_bone = 0.5 * (per_bone + per_bone[list(MIRROR)])
  return _REST_OFFSETS * (size * per_bone)[:, None]


def bone_lengths(joints: np.ndarray) -> np.ndarray:
  """Lengths (..., 21) of the bones of joint positions (..., 22, 3)."""
  child = np.arange(1, NUM_JOINTS)
  parent = np.asarray(PARENTS[1:])
  return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
  """Rotation matrices (..., 3, 3) = Ry(yaw) @ Rz(roll) @ Rx(pitch) of (..., 3) angles."""
  a, b, c = angles[..., 0], angles[..., 1], angles[..., 2]
  ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
  # Closed form of the product, cheaper than three batched matmuls.
  m = np.empty(angles.shape[:-1] + (3, 3))
  m[..., 0, 0] = cb * cc
  m[..., 0, 1] = -cb * sc * ca + sb * sa
  m[..., 0, 2] = cb * sc * sa + sb * ca
  m[..., 1, 0] = sc
  m[..., 1, 1] = cc * ca
  m[..., 1, 2] = -cc * sa
  m[..., 2, 0] = -sb * cc
  m[..., 2, 1] = sb * sc * ca + cb * sa
  m[..., 2, 2] = -sb * sc * sa + cb * ca
  return m


def yaw_matrix(yaw: np.ndarray) -> np.ndarray:
  """Rotations (..., 3, 3) about the vertical axis by yaw (...,) radians."""
  zeros = np.zeros(np.shape(yaw) + (1,))
  return euler_to_matrix(np.concatenate([zeros, np.asarray(yaw)[..., None], zeros], -1))


def forward_kinematics(angles: np.ndarray, heading: np.ndarray, root: np.ndarray,
                       offsets: np.ndarray) -> np.ndarray:
  """Joint positions of a posed skeleton.

  Args:
    angles: (T, 22, 3) local Euler angles; row 0 orients the pelvis in the body frame.
    heading: (T,) facing direction, yaw in radians about +y.
    root: (T, 3) pelvis positions.
    offsets: (22, 3) rest bone vectors (from rest_offsets or varied_offsets).

  Returns:
    (T, 22, 3) joint positions. Bone lengths equal the norms of offsets exactly.
  """
  local = euler_to_matrix(angles)
  frames = [yaw_matrix(heading) @ local[:, PELVIS]]
  positions = [root]
  for j in range(1, NUM_JOINTS):
    p = PARENTS[j]
    positions.append(positions[p] + frames[p] @ offsets[j])
    frames.append(frames[p] @ local[:, j])
  return np.stack(positions, axis=1)
