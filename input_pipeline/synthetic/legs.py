"""Two-bone leg solver: joint angles that put an ankle where the gait wants it.

Works in the pelvis frame of body.py (left +x, up +y, forward +z) with a rest leg
hanging straight down, so the knee always bends forward, as a human knee does.
"""
import numpy as np

from input_pipeline.synthetic import body


def solve_leg(ankle: np.ndarray, offsets: np.ndarray, side: str,
              foot_pitch: np.ndarray | float = 0.0) -> dict[int, np.ndarray]:
  """Angles of one leg that reach ankle targets.

  Args:
    ankle: (T, 3) ankle targets in the pelvis frame, relative to the pelvis joint.
    offsets: (22, 3) rest bone vectors of the body.
    side: "left" or "right".
    foot_pitch: (T,) or scalar pitch of the foot in the pelvis frame; 0 keeps the sole
      parallel to the pelvis' ground plane, > 0 points the toes down.

  Returns:
    {joint index: (T, 3) Euler angles} for the hip, knee and ankle of that side.
  """
  hip, knee, ankle_joint, _ = body.LEGS[side]
  thigh = np.linalg.norm(offsets[knee])
  shank = np.linalg.norm(offsets[ankle_joint])
  target = ankle - offsets[hip]
  dist = np.linalg.norm(target, axis=-1)
  # A fully straight knee makes the solution jump between frames; stop just short.
  reach = np.clip(dist, abs(thigh - shank) + 1e-3, 0.999 * (thigh + shank))
  target = target * (reach / np.maximum(dist, 1e-9))[:, None]
  inner = np.clip((thigh**2 + shank**2 - reach**2) / (2 * thigh * shank), -1.0, 1.0)
  knee_flex = np.pi - np.arccos(inner)
  # The bent leg before the hip turns: down and, below the knee, back.
  leg_y = -(thigh + shank * np.cos(knee_flex))
  leg_z = -shank * np.sin(knee_flex)
  x, y, z = target[:, 0], target[:, 1], target[:, 2]
  lateral = np.hypot(x, y)
  roll = np.arctan2(x, -y)
  pitch = np.arctan2(z, -lateral) - np.arctan2(leg_z, leg_y)
  pitch = (pitch + np.pi) % (2 * np.pi) - np.pi
  zeros = np.zeros_like(roll)
  return {
      hip: np.stack([pitch, zeros, roll], -1),
      knee: np.stack([knee_flex, zeros, zeros], -1),
      ankle_joint: np.stack([foot_pitch - pitch - knee_flex, zeros, -roll], -1),
  }
