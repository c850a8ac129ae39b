"""Actions done standing on the spot: arm gestures, kicks, squats, bows, sitting down.

Each takes the action's parameters, its length in frames and the performer's style,
and returns a Clip. One-sided actions are made on the left and mirrored for the right.
"""
import numpy as np

from input_pipeline.synthetic import body, legs, poses
from input_pipeline.synthetic.clip import FPS, Clip, Style, animate, marks, still

TEMPO = {"slow": 1.4, "normal": 1.0, "fast": 0.7}


def _sided(clip: Clip, side: str) -> Clip:
  return clip.mirrored() if side == "right" else clip


def _arms(pose: np.ndarray, side: str) -> np.ndarray:
  """pose with a left-arm gesture applied to the arms the side asks for (left or both)."""
  return poses.both_arms(pose) if side == "both" else pose


def _on_feet(angles: np.ndarray) -> Clip:
  clip = still(angles[0], angles.shape[0])
  clip.angles = angles
  return clip


def _repeat_keys(edges: np.ndarray, count: int, beats: list[tuple[float, np.ndarray]]):
  """Keys of count repetitions of beats ((fraction of one repetition, pose) pairs)."""
  keys = []
  for k in range(count):
    a, b = edges[k + 1], edges[k + 2]
    keys += [(a + f * (b - a), pose) for f, pose in beats]
  return keys


def wave_seconds(p: dict) -> float:
  return (1.0 + 0.55 * p["count"]) * TEMPO[p["speed"]]


def wave(p: dict, frames: int, style: Style) -> Clip:
  """Raising a hand beside the head and waving it side to side count times."""
  rest = style.pose
  edges = marks(frames, [0.5] + [0.55] * p["count"] + [0.5])
  side = "left" if p["side"] == "right" else p["side"]
  up = poses.left_arm(rest, [-0.35, 0.0, 1.35], [0.0, 0.0, 1.55])
  out = poses.left_arm(rest, [-0.35, 0.0, 1.35], [0.0, 0.0, 1.05])
  inward = poses.left_arm(rest, [-0.35, 0.0, 1.35], [0.0, 0.0, 2.0])
  beats = [(0.25, _arms(out, side)), (0.75, _arms(inward, side)), (1.0, _arms(up, side))]
  keys = ([(0.0, rest), (edges[1], _arms(up, side))] + _repeat_keys(edges, p["count"], beats)
          + [(edges[-1], rest)])
  return _sided(_on_feet(animate(frames, keys, rest, style.amplitude)), p["side"])


def kick_seconds(p: dict) -> float:
  return (0.3 + 0.95 * p["count"]) * TEMPO[p["speed"]]


def kick(p: dict, frames: int, style: Style) -> Clip:
  """Kicking with one leg, to the front or to the side, count times."""
  rest = style.pose
  edges = marks(frames, [0.15] + [0.95] * p["count"] + [0.15])
  front = p["direction"] == "forward"
  chamber, strike = rest.copy(), rest.copy()
  for pose, hip, knee in ((chamber, 1.0, 1.7), (strike, 1.4, 0.1)):
    if front:
      pose[body.L_HIP] = [-hip, 0.0, 0.05]
    else:
      pose[body.L_HIP] = [-0.25 * hip, 0.0, 0.8 * hip]
      pose[body.SPINE1, 2] = 0.25 * hip
    pose[body.L_KNEE, 0] = knee
    pose[body.L_ANKLE, 0] = 0.4
    pose[body.SPINE1, 0] = rest[body.SPINE1, 0] - (0.15 if front else 0.0)
    pose[body.L_SHOULDER, 2] += 0.3
    pose[body.R_SHOULDER, 2] -= 0.4
  beats = [(0.3, chamber), (0.45, strike), (0.62, chamber), (0.95, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats) + [(edges[-1], rest)]
  clip = _on_feet(animate(frames, keys, rest, style.amplitude))
  t = np.arange(frames)
  for k in range(p["count"]):
    a, b = edges[k + 1], edges[k + 2]
    clip.contacts[(t > a + 0.1 * (b - a)) & (t < a + 0.9 * (b - a)), body.L_FOOT] = False
  return _sided(clip, p["side"])


def punch_seconds(p: dict) -> float:
  return (0.8 + 0.5 * p["count"]) * TEMPO[p["speed"]]


def punch(p: dict, frames: int, style: Style) -> Clip:
  """Raising the fists and punching straight ahead with one hand, count times."""
  rest = style.pose
  edges = marks(frames, [0.4] + [0.5] * p["count"] + [0.4])
  guard = poses.both_arms(poses.left_arm(rest, [-0.55, 0.25, 0.3], [-2.1, 0.0, 0.0]))
  strike = poses.left_arm(guard, [-1.5, 0.0, 0.05], [-0.1, 0.0, 0.0])
  strike[body.SPINE2, 1] = -0.3
  strike[body.SPINE1, 0] = rest[body.SPINE1, 0] + 0.1
  keys = ([(0.0, rest), (edges[1], guard)]
          + _repeat_keys(edges, p["count"], [(0.4, strike), (1.0, guard)])
          + [(edges[-1], rest)])
  return _sided(_on_feet(animate(frames, keys, rest, style.amplitude)), p["side"])


def squat_seconds(p: dict) -> float:
  return (0.2 + 1.6 * p["count"]) * TEMPO[p["speed"]]


def squat(p: dict, frames: int, style: Style) -> Clip:
  """Deep squats with the arms held out in front, count times."""
  rest = style.pose
  edges = marks(frames, [0.1] + [1.6] * p["count"] + [0.1])
  low = poses.crouch(rest, 1.1, arms=-1.3)
  low[body.SPINE1, 0] += 0.15
  beats = [(0.45, low), (0.55, low), (1.0, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats)
  return _on_feet(animate(frames, keys, rest, style.amplitude))


def sit_seconds(p: dict) -> float:
  return 2.4 + (1.2 if p["stand_up"] else 0.0)


def sit_down(p: dict, frames: int, style: Style) -> Clip:
  """Sitting down on a chair-high seat, and standing back up if asked."""
  rest = style.pose
  phases = [1.3, 1.1] + ([1.2] if p["stand_up"] else [])
  edges = marks(frames, phases)
  seated = rest.copy()
  for side in ("left", "right"):
    hip, knee, ankle, _ = body.LEGS[side]
    seated[hip, 0], seated[knee, 0], seated[ankle, 0] = -1.5, 1.5, 0.0
    shoulder, elbow = body.ARMS[side][1:3]
    seated[shoulder, 0], seated[elbow, 0] = -0.45, -0.7
  seated[body.SPINE1, 0] = 0.1
  lowering = poses.crouch(rest, 0.7)
  lowering[body.SPINE1, 0] += 0.35
  keys = [(0.0, rest), (edges[1] * 0.55, lowering), (edges[1], seated), (edges[2], seated)]
  if p["stand_up"]:
    keys += [(edges[2] + 0.45 * (edges[3] - edges[2]), lowering), (edges[3], rest)]
  return _on_feet(animate(frames, keys, rest, 1.0))


def throw_seconds(p: dict) -> float:
  return (0.2 + 1.4 * p["count"]) * TEMPO[p["speed"]]


def throw(p: dict, frames: int, style: Style) -> Clip:
  """Overarm throws with one hand: wind up behind the head, whip forward."""
  rest = style.pose
  edges = marks(frames, [0.1] + [1.4] * p["count"] + [0.1])
  wind = poses.left_arm(rest, [-2.7, 0.0, 0.35], [-1.7, 0.0, 0.0])
  wind[body.SPINE2, 1] = 0.4
  wind[body.SPINE1, 0] = -0.1
  release = poses.left_arm(rest, [-1.3, 0.0, 0.1], [-0.25, 0.0, 0.0])
  release[body.SPINE2, 1] = -0.35
  release[body.SPINE1, 0] = 0.25
  follow = poses.left_arm(rest, [0.1, 0.0, -0.15], [-0.3, 0.0, 0.0])
  follow[body.SPINE2, 1] = -0.4
  follow[body.SPINE1, 0] = 0.35
  beats = [(0.4, wind), (0.55, release), (0.68, follow), (1.0, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats)
  return _sided(_on_feet(animate(frames, keys, rest, style.amplitude)), p["side"])


def bow_seconds(p: dict) -> float:
  return (0.2 + 1.7 * p["count"]) * TEMPO[p["speed"]]


def bow(p: dict, frames: int, style: Style) -> Clip:
  """Bowing forward from the hips and coming back up, count times."""
  rest = style.pose
  edges = marks(frames, [0.1] + [1.7] * p["count"] + [0.1])
  low = poses.bend_forward(rest, 0.95)
  beats = [(0.35, low), (0.6, low), (1.0, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats)
  return _on_feet(animate(frames, keys, rest, style.amplitude))


ARM_RAISE = {"up": poses.arm_up, "forward": poses.arm_forward, "sideways": poses.arm_sideways}


def raise_arms_seconds(p: dict) -> float:
  return 1.8 * p["count"] * TEMPO[p["speed"]]


def raise_arms(p: dict, frames: int, style: Style) -> Clip:
  """Raising one or both arms up, forward or to the side, and lowering them again."""
  rest = style.pose
  side = "left" if p["side"] == "right" else p["side"]
  raised = _arms(ARM_RAISE[p["direction"]](rest), side)
  edges = marks(frames, [0.0] + [1.8] * p["count"] + [0.0])
  beats = [(0.33, raised), (0.66, raised), (1.0, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats)
  return _sided(_on_feet(animate(frames, keys, rest, style.amplitude)), p["side"])


def stretch_seconds(p: dict) -> float:
  return 3.4 * TEMPO[p["speed"]]


def stretch(p: dict, frames: int, style: Style) -> Clip:
  """Stretching both arms overhead and leaning the trunk over to one side."""
  rest = style.pose
  edges = marks(frames, [0.7, 0.8, 0.5, 0.7, 0.7])
  up = poses.both_arms(poses.arm_up(rest))
  lean = up.copy()
  # A positive roll tilts upward bones toward the body's right; leaning left is negative.
  for joint, amount in ((body.SPINE1, 0.2), (body.SPINE2, 0.2), (body.SPINE3, 0.15)):
    lean[joint, 2] = -amount
  keys = [(0.0, rest), (edges[1], up), (edges[2], lean), (edges[3], lean), (edges[4], up),
          (edges[5], rest)]
  return _sided(_on_feet(animate(frames, keys, rest, style.amplitude)), p["side"])


def clap_seconds(p: dict) -> float:
  return (0.8 + 0.4 * p["count"]) * TEMPO[p["speed"]]


def clap(p: dict, frames: int, style: Style) -> Clip:
  """Clapping the hands together in front of the chest count times."""
  rest = style.pose
  edges = marks(frames, [0.4] + [0.4] * p["count"] + [0.4])
  apart = poses.both_arms(poses.left_arm(rest, [-1.0, -0.2, 0.2], [-1.0, 0.0, 0.0]))
  together = poses.both_arms(poses.left_arm(rest, [-1.05, -0.6, 0.15], [-0.8, 0.0, 0.0]))
  keys = ([(0.0, rest), (edges[1], apart)]
          + _repeat_keys(edges, p["count"], [(0.5, together), (1.0, apart)])
          + [(edges[-1], rest)])
  return _on_feet(animate(frames, keys, rest, style.amplitude))


def circles_seconds(p: dict) -> float:
  return (1.0 + 0.8 * p["count"]) * TEMPO[p["speed"]]


def arm_circles(p: dict, frames: int, style: Style) -> Clip:
  """Circling one or both outstretched arms forward or backward count times."""
  rest = style.pose
  side = "left" if p["side"] == "right" else p["side"]
  edges = marks(frames, [0.5, 0.8 * p["count"], 0.5])
  raised = _arms(poses.arm_sideways(rest), side)
  angles = animate(frames, [(0.0, rest), (edges[1], raised), (edges[2], raised),
                            (edges[3], rest)], rest, style.amplitude)
  t = np.arange(frames, dtype=float)
  turning = np.clip((t - edges[1]) / (edges[2] - edges[1]), 0.0, 1.0)
  sense = 1.0 if p["direction"] == "forward" else -1.0
  phase = sense * 2 * np.pi * p["count"] * turning
  gain = np.sin(np.pi * turning) ** 0.3
  # The hand goes forward over the top for forward circles: pitch < 0 while rising.
  arms = [("left", 1.0)] + ([("right", -1.0)] if side == "both" else [])
  for arm, sign in arms:
    shoulder = body.ARMS[arm][1]
    angles[:, shoulder, 0] += -0.5 * gain * np.sin(phase)
    angles[:, shoulder, 2] += sign * 0.5 * gain * (np.cos(phase) - 1)
  return _sided(_on_feet(angles), p["side"])


def lunge_seconds(p: dict) -> float:
  return 2.3 * p["count"] * TEMPO[p["speed"]]


def _lunge_legs(style: Style, reach: float, depth: float) -> np.ndarray:
  """Pose with the left foot reach metres ahead, the right behind, hips lowered."""
  out = style.pose.copy()
  length = (np.linalg.norm(style.offsets[body.L_KNEE])
            + np.linalg.norm(style.offsets[body.L_ANKLE]))
  hip_y = style.offsets[body.L_HIP, 1]
  for side, z, toes in (("left", reach, 0.0), ("right", -0.8 * reach, 0.9 * reach)):
    hip = body.LEGS[side][0]
    # A heel lifted onto the toes raises the ankle as the foot pitches down.
    ankle = np.array([[style.offsets[hip, 0], hip_y - depth * length + 0.1 * toes, z]])
    for joint, value in legs.solve_leg(ankle, style.offsets, side, toes).items():
      out[joint] = value[0]
  out[body.SPINE1, 0] = style.pose[body.SPINE1, 0] - 0.05
  return out


def lunge(p: dict, frames: int, style: Style) -> Clip:
  """Lunging forward onto one leg, sinking low, and stepping back, count times."""
  rest = style.pose
  edges = marks(frames, [0.0] + [2.3] * p["count"] + [0.0])
  lifted = rest.copy()
  lifted[body.L_HIP, 0], lifted[body.L_KNEE, 0] = -0.7, 0.9
  lifted[body.L_ANKLE, 0] = -0.2
  step = _lunge_legs(style, 0.45, 0.92)
  low = _lunge_legs(style, 0.45, 0.68)
  beats = [(0.12, lifted), (0.24, step), (0.45, low), (0.58, low), (0.76, step),
           (0.88, lifted), (1.0, rest)]
  keys = [(0.0, rest)] + _repeat_keys(edges, p["count"], beats)
  clip = _on_feet(animate(frames, keys, rest, 1.0))
  t = np.arange(frames)
  for k in range(p["count"]):
    a, b = edges[k + 1], edges[k + 2]
    airborne = ((t > a + 0.03 * (b - a)) & (t < a + 0.23 * (b - a))) | (
        (t > a + 0.77 * (b - a)) & (t < a + 0.97 * (b - a)))
    clip.contacts[airborne, body.L_FOOT] = False
  return _sided(clip, p["side"])


def pick_up_seconds(p: dict) -> float:
  return 2.8 * TEMPO[p["speed"]]


def pick_up(p: dict, frames: int, style: Style) -> Clip:
  """Bending down to pick something up from the floor with one hand."""
  rest = style.pose
  edges = marks(frames, [1.0, 0.4, 1.0, 0.4])
  low = poses.crouch(poses.bend_forward(rest, 1.1), 1.0)
  low = poses.left_arm(low, [-1.5, 0.0, 0.1], [-0.05, 0.0, 0.0])
  grab = poses.left_arm(low, [-1.45, 0.0, 0.1], [-0.3, 0.0, 0.0])
  holding = poses.left_arm(rest, [-0.7, 0.0, 0.1], [-1.2, 0.0, 0.0])
  keys = [(0.0, rest), (edges[1], low), (edges[2], grab), (edges[3], holding),
          (edges[4], holding)]
  return _sided(_on_feet(animate(frames, keys, rest, 1.0)), p["side"])


def stand_seconds(p: dict) -> float:
  return 2.0


def stand(p: dict, frames: int, style: Style) -> Clip:
  """Standing still, only breathing and shifting slightly."""
  t = np.arange(frames) / FPS
  angles = np.repeat(style.pose[None], frames, 0)
  angles[:, body.SPINE1, 0] += 0.02 * np.sin(2 * np.pi * 0.3 * t)
  angles[:, body.NECK, 1] += 0.1 * np.sin(2 * np.pi * 0.2 * t + style.rng.uniform(0, 6))
  return _on_feet(angles)
