"""Stepping gaits (walk, run, side-step, stepping on the spot) as foot placements.

Each foot alternates a stance, where it stays planted while the body passes over it,
and a swing to its next footprint. Planted feet are the clip's contacts, so
grounding.py moves the body exactly as far as the strides reach.
"""
import dataclasses

import numpy as np

from input_pipeline.synthetic import body, legs
from input_pipeline.synthetic.clip import FPS, Clip


@dataclasses.dataclass(frozen=True)
class Gait:
  """How a gait looks.

  Attributes:
    cadence: full cycles (two steps) per second.
    duty: fraction of a cycle a foot is planted (> 0.5 walks, < 0.5 runs with flight).
    swing_height: metres the ankle lifts mid-swing.
    heel_kick: metres the ankle swings back behind the body mid-swing (running).
    crouch: fraction of the full leg length the ankle stays below the hip in stance.
    width: extra sideways room between the feet, metres.
    arm_swing: shoulder pitch amplitude, radians.
    elbow: elbow bend, radians (negative bends the forearm forward).
    lean: forward pitch of the trunk, radians.
  """
  cadence: float = 0.9
  duty: float = 0.6
  swing_height: float = 0.08
  heel_kick: float = 0.0
  crouch: float = 0.97
  width: float = 0.0
  arm_swing: float = 0.25
  elbow: float = -0.3
  lean: float = 0.03


def _feet(velocity: np.ndarray, gait: Gait, offset: float) -> tuple[np.ndarray, ...]:
  """Footprint motion of one foot relative to its neutral spot.

  Args:
    velocity: (T, 2) body velocity (lateral, forward) in m/s.
    gait: the gait.
    offset: phase of this foot at frame 0, in cycles.

  Returns:
    (T, 2) horizontal displacement, (T,) lift in metres, (T,) swing progress in [0, 1]
    (0 while planted) and (T,) planted flags.
  """
  num_frames = velocity.shape[0]
  t = np.arange(num_frames) / FPS
  travelled = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity[1:], 0) / FPS])

  def at(times):
    return np.stack([np.interp(times, t, travelled[:, i]) for i in range(2)], -1)

  phase = gait.cadence * t + offset
  cycle = np.floor(phase)
  u = phase - cycle
  down = (cycle - offset) / gait.cadence
  up = (cycle + gait.duty - offset) / gait.cadence
  stride = at(up) - at(down)
  planted = u < gait.duty
  in_stance = stride / 2 - (at(t) - at(down))
  nxt_down = down + 1 / gait.cadence
  nxt_stride = at(nxt_down + gait.duty / gait.cadence) - at(nxt_down)
  progress = np.where(planted, 0.0, (u - gait.duty) / (1 - gait.duty))
  w = progress * progress * (3 - 2 * progress)
  in_swing = (1 - w)[:, None] * (-stride / 2) + w[:, None] * (nxt_stride / 2)
  place = np.where(planted[:, None], in_stance, in_swing)
  lift = np.sin(np.pi * progress)
  return place, lift, progress, planted


def stepping(pose: np.ndarray, velocity: np.ndarray, gait: Gait, offsets: np.ndarray,
             phase: float = 0.0) -> Clip:
  """A clip of stepping with the given body velocity.

  Args:
    pose: (22, 3) standing pose giving the upper body its style.
    velocity: (T, 2) body velocity (lateral +x is left, forward) in m/s; zero steps on
      the spot.
    gait: how the steps look.
    offsets: (22, 3) rest bone vectors of the body.
    phase: gait phase of the left foot at frame 0, in cycles.

  Returns:
    The clip (turn is zero; callers add turning).
  """
  num_frames = velocity.shape[0]
  angles = np.repeat(pose[None], num_frames, 0).astype(float)
  contacts = np.zeros((num_frames, body.NUM_JOINTS), bool)
  leg_length = np.linalg.norm(offsets[body.L_KNEE]) + np.linalg.norm(offsets[body.L_ANKLE])
  feet = {}
  for side, offset, sign in (("left", phase, 1.0), ("right", phase + 0.5, -1.0)):
    hip = body.LEGS[side][0]
    place, lift, progress, planted = _feet(velocity, gait, offset)
    spot = np.stack([offsets[hip, 0] + sign * gait.width + place[:, 0], place[:, 1]], -1)
    feet[side] = spot, lift, progress, planted, offset
  # Long strides must stay within reach of the planted legs: the hips sink at double
  # support, as they do in a real walk.
  depth = np.full(num_frames, gait.crouch * leg_length)
  for side, (spot, _, _, planted, _) in feet.items():
    across = spot - offsets[body.LEGS[side][0], [0, 2]]
    reach = np.sqrt(np.maximum((0.99 * leg_length)**2 - (across**2).sum(-1), 0.0))
    depth = np.where(planted, np.minimum(depth, reach), depth)
  speed = np.linalg.norm(velocity, axis=-1)
  scale = np.clip(speed / speed.max(), 0.0, 1.0) if speed.max() > 0 else 0.3
  for side, (spot, lift, progress, planted, offset) in feet.items():
    hip, _, _, foot = body.LEGS[side]
    ankle = np.zeros((num_frames, 3))
    ankle[:, 0] = spot[:, 0]
    ankle[:, 1] = offsets[hip, 1] - depth + gait.swing_height * lift
    ankle[:, 2] = spot[:, 1] - gait.heel_kick * lift
    toe_up = -0.25 * np.sin(np.pi * progress)
    for joint, value in legs.solve_leg(ankle, offsets, side, toe_up).items():
      angles[:, joint] = value
    contacts[:, foot] = planted
    # The arm swings against the leg of its side: back when that foot is in front.
    shoulder, elbow = body.ARMS[side][1:3]
    cycle = 2 * np.pi * (gait.cadence * np.arange(num_frames) / FPS + offset)
    angles[:, shoulder, 0] = pose[shoulder, 0] + gait.arm_swing * scale * np.cos(cycle)
    angles[:, elbow, 0] = gait.elbow - 0.1 * scale * np.sin(cycle)
  cycle = 2 * np.pi * (gait.cadence * np.arange(num_frames) / FPS + phase)
  angles[:, body.PELVIS, 1] = 0.06 * np.cos(cycle)
  angles[:, body.SPINE2, 1] = -0.05 * np.cos(cycle)
  angles[:, body.SPINE1, 0] += gait.lean
  angles[:, body.NECK, 0] -= 0.5 * gait.lean
  return Clip(angles, np.zeros(num_frames), contacts, velocity / FPS)

