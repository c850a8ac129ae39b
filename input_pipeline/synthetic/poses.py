"""Key poses that several actions share, built from a performer's standing pose.

All arm poses are for the left arm; `both_arms` copies the left arm's pose to the right
as its mirror image, and whole clips are mirrored for right-handed variants.
"""
import numpy as np

from input_pipeline.synthetic import body
from input_pipeline.synthetic.clip import mirror_angles


def crouch(pose: np.ndarray, depth: float, toes: float = 0.0, arms: float = 0.0,
           legs_apart: float = 0.0) -> np.ndarray:
  """A copy of pose (22, 3) with both knees bent by depth (0 straight, 1 deep).

  Feet stay flat unless toes > 0 rises onto the toes; arms swings both arms (> 0 back,
  < 0 forward and up); legs_apart spreads the legs sideways, radians.
  """
  out = pose.copy()
  for side, sign in (("left", 1.0), ("right", -1.0)):
    hip, knee, ankle, _ = body.LEGS[side]
    out[hip, 0] = pose[hip, 0] - 0.9 * depth
    out[hip, 2] = pose[hip, 2] + sign * legs_apart
    out[knee, 0] = pose[knee, 0] + 1.7 * depth
    out[ankle, 0] = -(out[hip, 0] + out[knee, 0]) + toes
    out[ankle, 2] = -out[hip, 2]
    out[body.ARMS[side][1], 0] = pose[body.ARMS[side][1], 0] + arms
  out[body.SPINE1, 0] = pose[body.SPINE1, 0] + 0.45 * depth
  out[body.NECK, 0] = pose[body.NECK, 0] - 0.3 * depth
  return out


def bend_forward(pose: np.ndarray, amount: float) -> np.ndarray:
  """A copy of pose bowing the trunk forward at the hips by amount radians.

  The legs stay upright and the arms keep hanging straight down.
  """
  out = pose.copy()
  out[body.PELVIS, 0] = pose[body.PELVIS, 0] + 0.6 * amount
  for side in ("left", "right"):
    out[body.LEGS[side][0], 0] = pose[body.LEGS[side][0], 0] - 0.6 * amount
    out[body.ARMS[side][1], 0] = pose[body.ARMS[side][1], 0] - amount
  out[body.SPINE1, 0] = pose[body.SPINE1, 0] + 0.25 * amount
  out[body.SPINE2, 0] = pose[body.SPINE2, 0] + 0.15 * amount
  out[body.NECK, 0] = pose[body.NECK, 0] - 0.2 * amount
  return out


def left_arm(pose: np.ndarray, shoulder=None, elbow=None) -> np.ndarray:
  """A copy of pose with the left shoulder and elbow set to (3,) angles where given."""
  out = pose.copy()
  if shoulder is not None:
    out[body.L_SHOULDER] = shoulder
  if elbow is not None:
    out[body.L_ELBOW] = elbow
  return out


def both_arms(pose: np.ndarray) -> np.ndarray:
  """A copy of pose whose right arm mirrors its left arm."""
  out = pose.copy()
  mirrored = mirror_angles(pose)
  right = list(body.ARMS["right"])
  out[right] = mirrored[right]
  return out


def arm_up(pose: np.ndarray) -> np.ndarray:
  """Left arm raised straight overhead."""
  return left_arm(pose, [-2.95, 0.0, 0.15], [-0.1, 0.0, 0.0])


def arm_forward(pose: np.ndarray) -> np.ndarray:
  """Left arm raised straight ahead at shoulder height."""
  return left_arm(pose, [-1.5, 0.0, 0.05], [-0.1, 0.0, 0.0])


def arm_sideways(pose: np.ndarray) -> np.ndarray:
  """Left arm raised out to the side at shoulder height."""
  return left_arm(pose, [0.0, 0.0, 1.5], [-0.1, 0.0, 0.0])


def all_fours(rest: np.ndarray) -> np.ndarray:
  """On hands and knees, trunk level, looking ahead."""
  out = rest.copy()
  out[body.PELVIS, 0] = 1.35
  out[body.SPINE1, 0] = 0.05
  out[body.SPINE2, 0] = 0.05
  out[body.NECK, 0] = -0.75
  out[body.HEAD, 0] = -0.45
  for side, sign in (("left", 1.0), ("right", -1.0)):
    hip, knee, ankle, _ = body.LEGS[side]
    out[hip] = [-1.35, 0.0, sign * 0.05]
    out[knee] = [1.5, 0.0, 0.0]
    out[ankle] = [1.1, 0.0, 0.0]
    shoulder, elbow = body.ARMS[side][1:3]
    out[shoulder] = [-1.5, 0.0, sign * 0.1]
    out[elbow] = [-0.1, 0.0, 0.0]
  return out
