"""A clip of procedural motion before it is placed in the world, and tools to shape one.

A clip holds what an action decides (pose over time, turning, which joints bear the
weight); grounding.py turns it into joint positions.
"""
import dataclasses

import numpy as np

from input_pipeline import dataset_kinds
from input_pipeline.synthetic import body

# The synthetic dataset is HumanML3D-shaped: its frame rate is HumanML3D's (20 fps).
FPS = dataset_kinds.get_kind("humanml3d").fps


@dataclasses.dataclass
class Clip:
  """Procedural motion of T frames.

  Attributes:
    angles: (T, 22, 3) local Euler angles (body.py conventions).
    turn: (T,) heading in radians relative to the heading before the clip; > 0 is a
      turn to the body's left.
    contacts: (T, 22) bool, joints resting on the floor (bearing weight).
    drift: (T, 2) horizontal velocity in metres per frame, in the body frame
      (lateral +x is left, +z is forward): how the body travels while nothing
      touches the floor.
  """
  angles: np.ndarray
  turn: np.ndarray
  contacts: np.ndarray
  drift: np.ndarray

  @property
  def num_frames(self) -> int:
    return self.angles.shape[0]

  def mirrored(self) -> "Clip":
    """The mirror-image clip: left and right exchange, turns reverse."""
    return Clip(mirror_angles(self.angles), -self.turn,
                self.contacts[:, list(body.MIRROR)], self.drift * np.array([-1.0, 1.0]))


@dataclasses.dataclass(frozen=True)
class Style:
  """What makes one performer differ from another.

  Attributes:
    pose: (22, 3) the performer's relaxed standing pose.
    offsets: (22, 3) rest bone vectors of the performer's body.
    amplitude: factor on how far gestures go from the standing pose.
    rng: source of the performer's small irregularities.
  """
  pose: np.ndarray
  offsets: np.ndarray
  amplitude: float
  rng: np.random.Generator


def still(pose: np.ndarray, num_frames: int) -> Clip:
  """A clip that holds pose (22, 3) on both feet for num_frames frames."""
  contacts = np.zeros((num_frames, body.NUM_JOINTS), bool)
  contacts[:, [body.L_FOOT, body.R_FOOT]] = True
  return Clip(np.repeat(pose[None], num_frames, 0), np.zeros(num_frames), contacts,
              np.zeros((num_frames, 2)))


def concatenate(clips: list[Clip]) -> Clip:
  """Clips played one after the other; each turn continues from the last heading."""
  turns, heading = [], 0.0
  for c in clips:
    turns.append(heading + c.turn)
    heading = turns[-1][-1]
  return Clip(np.concatenate([c.angles for c in clips]), np.concatenate(turns),
              np.concatenate([c.contacts for c in clips]),
              np.concatenate([c.drift for c in clips]))


def ease(u: np.ndarray) -> np.ndarray:
  """Smootherstep on [0, 1]: zero velocity and acceleration at both ends."""
  u = np.clip(u, 0.0, 1.0)
  return u * u * u * (u * (6 * u - 15) + 10)


def ramp(num_frames: int, start: int, end: int) -> np.ndarray:
  """(num_frames,) weights easing from 0 at frame start to 1 at frame end."""
  t = np.arange(num_frames, dtype=float)
  return ease((t - start) / max(end - start, 1))


def envelope(num_frames: int, rise: int, fall: int | None = None) -> np.ndarray:
  """(num_frames,) weights easing in over rise frames and out over the last fall."""
  fall = rise if fall is None else fall
  return ramp(num_frames, 0, rise) * (1 - ramp(num_frames, num_frames - fall, num_frames))


def animate(num_frames: int, keys: list[tuple[float, np.ndarray]], rest: np.ndarray,
            amplitude: float = 1.0) -> np.ndarray:
  """Poses (num_frames, 22, 3) easing from key pose to key pose.

  Args:
    num_frames: length of the result.
    keys: (frame, (22, 3) pose) pairs in increasing frame order; before the first key
      and after the last the pose is held.
    rest: (22, 3) pose the amplitude is measured from.
    amplitude: scales every key's departure from rest.
  """
  t = np.arange(num_frames, dtype=float)
  times = [k[0] for k in keys]
  poses = [rest + amplitude * (k[1] - rest) for k in keys]
  out = np.repeat(poses[0][None], num_frames, 0)
  for (t0, p0), (t1, p1) in zip(zip(times, poses), zip(times[1:], poses[1:])):
    w = ease((t - t0) / max(t1 - t0, 1e-6))[:, None, None]
    inside = (t >= t0)[:, None, None]
    out = np.where(inside, p0 + w * (p1 - p0), out)
  return out


def marks(num_frames: int, seconds: list[float]) -> np.ndarray:
  """Frame boundaries (len(seconds) + 1,) of phases whose nominal lengths are seconds.

  The phases are stretched together to fill num_frames frames.
  """
  edges = np.concatenate([[0.0], np.cumsum(seconds)])
  return edges / edges[-1] * (num_frames - 1)


def mirror_angles(angles: np.ndarray) -> np.ndarray:
  """Angles (..., 22, 3) of the mirror-image pose: sides swap, yaw and roll flip sign."""
  out = angles[..., list(body.MIRROR), :].copy()
  out[..., 1:] *= -1
  return out


def standing_pose(rng: np.random.Generator | None = None) -> np.ndarray:
  """A relaxed upright pose (22, 3); rng adds a little personal variation."""
  pose = np.zeros((body.NUM_JOINTS, 3))
  jitter = (lambda s: rng.normal(0, s)) if rng is not None else (lambda s: 0.0)
  for side, sign in (("left", 1.0), ("right", -1.0)):
    hip, knee, ankle, _ = body.LEGS[side]
    collar, shoulder, elbow, _ = body.ARMS[side]
    hip_pitch, knee_pitch = -0.04 + jitter(0.02), 0.08 + abs(jitter(0.03))
    pose[hip] = [hip_pitch, sign * 0.05, sign * 0.02]
    pose[knee, 0] = knee_pitch
    pose[ankle] = [-hip_pitch - knee_pitch, 0.0, -sign * 0.02]
    pose[shoulder] = [0.05 + jitter(0.03), 0.0, sign * (0.14 + jitter(0.03))]
    pose[elbow, 0] = -0.2 + jitter(0.05)
  pose[body.SPINE1, 0] = 0.03
  pose[body.NECK, 0] = -0.05 + jitter(0.03)
  pose[body.HEAD, 0] = 0.05
  return pose


def smooth_noise(rng: np.random.Generator, num_frames: int, scale: float) -> np.ndarray:
  """(num_frames, 22, 3) slow random angle wobble (a few tenths of a hertz to 1 Hz)."""
  t = np.arange(num_frames)[:, None, None, None] / FPS
  freq = rng.uniform(0.2, 1.0, (1, body.NUM_JOINTS, 3, 3))
  phase = rng.uniform(0, 2 * np.pi, (1, body.NUM_JOINTS, 3, 3))
  amp = rng.normal(0, scale / np.sqrt(3), (1, body.NUM_JOINTS, 3, 3))
  return (amp * np.sin(2 * np.pi * freq * t + phase)).sum(-1)
