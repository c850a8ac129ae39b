"""Actions that move the whole body over the floor: walks, runs, turns, jumps, crawls.

Each takes the action's parameters, its length in frames and the performer's style,
and returns a Clip. Left/right variants are made on the left and mirrored, so both
sides are exact mirror images of one another.
"""
import numpy as np

from input_pipeline.synthetic import body, gait, poses
from input_pipeline.synthetic.clip import (FPS, Clip, Style, animate, envelope, marks,
                                           ramp)

DIAGONAL = np.pi / 4
TURN_SIGN = {"left": 1.0, "right": -1.0, "counterclockwise": 1.0, "clockwise": -1.0}
WALK_SPEED = {"slow": 0.75, "normal": 1.15, "fast": 1.6}
WALK_CADENCE = {"slow": 0.75, "normal": 0.93, "fast": 1.08}
RUNS = {  # speed: (m/s, cycles per second, duty)
    "slow": (1.9, 1.3, 0.40), "normal": (2.6, 1.4, 0.35), "fast": (3.4, 1.55, 0.30)}


def _jitter(style: Style, spread: float = 0.06) -> float:
  return 1.0 + style.rng.uniform(-spread, spread)


def _gait_clip(style: Style, frames: int, heading: tuple[float, float], speed: float,
               g: gait.Gait, rise: float = 0.6) -> Clip:
  velocity = np.asarray(heading)[None] * speed * envelope(frames, int(rise * FPS))[:, None]
  return gait.stepping(style.pose, velocity, g, style.offsets,
                       phase=style.rng.uniform(-0.05, 0.05))


def walk_seconds(p: dict) -> float:
  return p["steps"] / (2 * WALK_CADENCE[p["speed"]]) + 1.0


def walk(p: dict, frames: int, style: Style) -> Clip:
  """Walking forward, backward or diagonally (turning 45 degrees into the first step)."""
  backward = p["direction"] == "backward"
  speed = WALK_SPEED[p["speed"]] * (0.6 if backward else 1.0) * _jitter(style)
  g = gait.Gait(cadence=WALK_CADENCE[p["speed"]] * _jitter(style),
                arm_swing=0.15 if backward else 0.25 * style.amplitude,
                lean=-0.03 if backward else 0.03 + 0.03 * (p["speed"] == "fast"))
  clip = _gait_clip(style, frames, (0.0, -1.0 if backward else 1.0), speed, g)
  if p["direction"] in ("forward_left", "forward_right"):
    sign = 1.0 if p["direction"] == "forward_left" else -1.0
    clip.turn = sign * DIAGONAL * ramp(frames, 0, int(0.8 * FPS))
  return clip


def run_seconds(p: dict) -> float:
  return p["steps"] / (2 * RUNS[p["speed"]][1]) + 1.0


def run(p: dict, frames: int, style: Style) -> Clip:
  """Jogging, running or sprinting, forward or backward."""
  speed, cadence, duty = RUNS[p["speed"]]
  backward = p["direction"] == "backward"
  g = gait.Gait(cadence=cadence * _jitter(style), duty=duty, swing_height=0.14,
                heel_kick=0.0 if backward else 0.16, crouch=0.92,
                arm_swing=0.5 * style.amplitude, elbow=-1.4,
                lean=-0.02 if backward else 0.08 + 0.04 * (p["speed"] == "fast"))
  scale = 0.6 if backward else 1.0
  return _gait_clip(style, frames, (0.0, -1.0 if backward else 1.0),
                    speed * scale * _jitter(style), g, rise=0.8)


SIDE_SPEED = {"slow": 0.25, "normal": 0.35, "fast": 0.5}
SIDE_CADENCE = {"slow": 0.7, "normal": 0.85, "fast": 1.05}


def side_step_seconds(p: dict) -> float:
  return p["count"] / SIDE_CADENCE[p["speed"]] + 0.8


def side_step(p: dict, frames: int, style: Style) -> Clip:
  """Stepping sideways, feet never crossing."""
  g = gait.Gait(cadence=SIDE_CADENCE[p["speed"]] * _jitter(style), duty=0.65,
                swing_height=0.06, width=0.1, arm_swing=0.0, lean=0.0)
  sign = TURN_SIGN[p["direction"]]
  return _gait_clip(style, frames, (sign, 0.0), SIDE_SPEED[p["speed"]] * _jitter(style), g,
                    rise=0.4)


def turn_seconds(p: dict) -> float:
  return 0.6 + 1.2 * p["angle"] / 180


def turn(p: dict, frames: int, style: Style) -> Clip:
  """Turning on the spot by a given angle, stepping round."""
  g = gait.Gait(cadence=1.0 * _jitter(style), duty=0.65, swing_height=0.05, arm_swing=0.1)
  clip = gait.stepping(style.pose, np.zeros((frames, 2)), g, style.offsets)
  angle = np.deg2rad(p["angle"]) * _jitter(style, 0.04)
  clip.turn = TURN_SIGN[p["direction"]] * angle * ramp(frames, 2, frames - 3)
  return clip


def spin_seconds(p: dict) -> float:
  return 1.3 * p["count"] + 0.4


def spin(p: dict, frames: int, style: Style) -> Clip:
  """Spinning round on the spot with the arms out, once or more."""
  g = gait.Gait(cadence=1.5 * _jitter(style), duty=0.6, swing_height=0.06, arm_swing=0.0,
                elbow=-0.3)
  clip = gait.stepping(style.pose, np.zeros((frames, 2)), g, style.offsets)
  out = envelope(frames, int(0.3 * FPS))
  clip.angles[:, body.L_SHOULDER, 2] += 1.1 * style.amplitude * out
  clip.angles[:, body.R_SHOULDER, 2] -= 1.1 * style.amplitude * out
  clip.turn = TURN_SIGN[p["rotation"]] * 2 * np.pi * p["count"] * ramp(frames, 1, frames - 2)
  return clip


CIRCLE_RADIUS = 0.9


def circle_seconds(p: dict) -> float:
  return 2 * np.pi * CIRCLE_RADIUS / WALK_SPEED[p["speed"]] + 1.0


def walk_circle(p: dict, frames: int, style: Style) -> Clip:
  """Walking once round a circle, clockwise or counterclockwise."""
  g = gait.Gait(cadence=WALK_CADENCE[p["speed"]] * _jitter(style), arm_swing=0.22)
  clip = _gait_clip(style, frames, (0.0, 1.0), WALK_SPEED[p["speed"]] * _jitter(style), g)
  travelled = np.cumsum(envelope(frames, int(0.6 * FPS)))
  clip.turn = TURN_SIGN[p["rotation"]] * 2 * np.pi * travelled / travelled[-1]
  return clip


# --------------------------------------------------------------- airborne ---

def _feet_down(frames: int, flights: list[tuple[float, float]]) -> np.ndarray:
  contacts = np.zeros((frames, body.NUM_JOINTS), bool)
  contacts[:, [body.L_FOOT, body.R_FOOT]] = True
  t = np.arange(frames)
  for up, down in flights:
    contacts[(t > up) & (t < down)] = False
  return contacts


JUMP_DISTANCE = {"in_place": (0.0, 0.0), "forward": (0.0, 0.7), "backward": (0.0, -0.4),
                 "left": (0.45, 0.0), "right": (-0.45, 0.0)}


def jump_seconds(p: dict) -> float:
  return 1.15 * p["count"] + 0.2


def jump(p: dict, frames: int, style: Style) -> Clip:
  """Two-footed jumps, on the spot or in a direction, count times."""
  rest, amp = style.pose, style.amplitude
  edges = marks(frames, [0.1] + [1.15] * p["count"] + [0.1])
  keys, flights = [(0.0, rest)], []
  for k in range(p["count"]):
    a, b = edges[k + 1], edges[k + 2]
    at = lambda f: a + f * (b - a)
    keys += [(at(0.3), poses.crouch(rest, 0.9, arms=0.8)),
             (at(0.42), poses.crouch(rest, 0.0, toes=0.6, arms=-2.2)),
             (at(0.6), poses.crouch(rest, 0.3, toes=0.4, arms=-1.6)),
             (at(0.76), poses.crouch(rest, 0.1, toes=0.35, arms=-0.8)),
             (at(0.88), poses.crouch(rest, 0.75, arms=-0.4)),
             (at(1.0), rest)]
    flights.append((at(0.42), at(0.76)))
  angles = animate(frames, keys, rest, amp)
  drift = np.zeros((frames, 2))
  t = np.arange(frames)
  for up, down in flights:
    inside = (t > up) & (t <= down)
    drift[inside] = np.asarray(JUMP_DISTANCE[p["direction"]]) * _jitter(style) / inside.sum()
  return Clip(angles, np.zeros(frames), _feet_down(frames, flights), drift)


def hop_seconds(p: dict) -> float:
  return 0.6 * p["count"] + 0.8


def hop(p: dict, frames: int, style: Style) -> Clip:
  """Hopping on one leg (the other held up behind), on the spot or forward."""
  rest, amp = style.pose, style.amplitude
  edges = marks(frames, [0.4] + [0.6] * p["count"] + [0.4])
  raised = rest.copy()
  raised[body.R_HIP, 0] = -0.35
  raised[body.R_KNEE, 0] = 1.5
  raised[body.R_ANKLE, 0] = 0.4
  raised[body.L_SHOULDER, 2] += 0.35
  raised[body.R_SHOULDER, 2] -= 0.35
  raised[body.SPINE1, 2] = 0.06

  def on_left(depth, toes=0.0):
    out = raised.copy()
    out[body.L_HIP, 0] = rest[body.L_HIP, 0] - 0.8 * depth
    out[body.L_KNEE, 0] = rest[body.L_KNEE, 0] + 1.5 * depth
    out[body.L_ANKLE, 0] = -(out[body.L_HIP, 0] + out[body.L_KNEE, 0]) + toes
    out[body.SPINE1, 0] = rest[body.SPINE1, 0] + 0.3 * depth
    return out

  keys, flights = [(0.0, rest), (edges[1], on_left(0.1))], []
  for k in range(p["count"]):
    a, b = edges[k + 1], edges[k + 2]
    at = lambda f: a + f * (b - a)
    keys += [(at(0.3), on_left(0.6)), (at(0.42), on_left(0.0, 0.5)),
             (at(0.62), on_left(0.15, 0.4)), (at(0.78), on_left(0.1, 0.3)),
             (at(0.9), on_left(0.5)), (at(1.0), on_left(0.15))]
    flights.append((at(0.42), at(0.78)))
  keys.append((edges[-1], rest))
  angles = animate(frames, keys, rest, amp)
  contacts = _feet_down(frames, flights)
  t = np.arange(frames)
  contacts[(t > edges[1] - 3) & (t < edges[-2] + 3), body.R_FOOT] = False
  drift = np.zeros((frames, 2))
  if p["direction"] == "forward":
    for up, down in flights:
      inside = (t > up) & (t <= down)
      drift[inside] = np.array([0.0, 0.3]) * _jitter(style) / inside.sum()
  clip = Clip(angles, np.zeros(frames), contacts, drift)
  return clip if p["side"] == "left" else clip.mirrored()


def jumping_jacks_seconds(p: dict) -> float:
  return 0.95 * p["count"] + 0.2


def jumping_jacks(p: dict, frames: int, style: Style) -> Clip:
  """Jumping jacks: hop out to a wide stance with the arms overhead, hop back."""
  rest, amp = style.pose, style.amplitude
  edges = marks(frames, [0.1] + [0.95] * p["count"] + [0.1])

  def jack(depth, toes, spread):
    out = poses.crouch(rest, depth, toes=toes, legs_apart=0.22 * spread)
    out[body.L_SHOULDER, 2] = rest[body.L_SHOULDER, 2] + 2.7 * spread
    out[body.R_SHOULDER, 2] = rest[body.R_SHOULDER, 2] - 2.7 * spread
    return out

  keys, flights = [(0.0, rest)], []
  for k in range(p["count"]):
    a, b = edges[k + 1], edges[k + 2]
    at = lambda f: a + f * (b - a)
    keys += [(at(0.12), jack(0.35, 0.0, 0.0)), (at(0.2), jack(0.0, 0.45, 0.4)),
             (at(0.36), jack(0.25, 0.2, 1.0)), (at(0.55), jack(0.3, 0.0, 1.0)),
             (at(0.64), jack(0.0, 0.45, 0.6)), (at(0.8), jack(0.3, 0.2, 0.0)),
             (at(1.0), rest)]
    flights += [(at(0.2), at(0.36)), (at(0.64), at(0.8))]
  angles = animate(frames, keys, rest, amp)
  return Clip(angles, np.zeros(frames), _feet_down(frames, flights), np.zeros((frames, 2)))


# ---------------------------------------------------------------- on floor ---

CRAWL_SPEED = {"slow": 1.35, "normal": 1.0, "fast": 0.75}


def crawl_seconds(p: dict) -> float:
  return 2.4 + 1.3 * p["steps"] * CRAWL_SPEED[p["speed"]]


def crawl(p: dict, frames: int, style: Style) -> Clip:
  """Getting down on hands and knees, crawling forward, getting back up."""
  rest, amp = style.pose, style.amplitude
  cycles = p["steps"]
  edges = marks(frames, [1.2, 1.3 * cycles * CRAWL_SPEED[p["speed"]], 1.2])
  fours = poses.all_fours(rest)
  kneel = poses.crouch(rest, 0.9)
  kneel[body.PELVIS, 0] = 0.5
  t = np.arange(frames, dtype=float)
  angles = animate(frames, [(0.0, rest), (edges[1] * 0.55, kneel), (edges[1], fours),
                            (edges[2], fours), (edges[2] + (edges[3] - edges[2]) * 0.45, kneel),
                            (edges[3], rest)], rest, 1.0)
  moving = (t >= edges[1]) & (t <= edges[2])
  phase = 2 * np.pi * cycles * np.clip((t - edges[1]) / (edges[2] - edges[1]), 0, 1)
  gain = envelope(frames, 4) * moving
  thigh = np.linalg.norm(style.offsets[body.L_KNEE])
  arm = np.linalg.norm(style.offsets[body.L_ELBOW]) + np.linalg.norm(style.offsets[body.L_WRIST])
  swing = 0.3 * amp
  contacts = np.zeros((frames, body.NUM_JOINTS), bool)
  standing = t < edges[1] * 0.7
  rising = t > edges[2] + (edges[3] - edges[2]) * 0.3
  contacts[standing | rising, body.L_FOOT] = True
  contacts[standing | rising, body.R_FOOT] = True
  for side, offset in (("left", 0.0), ("right", np.pi)):
    hip, knee = body.LEGS[side][:2]
    shoulder, elbow, wrist = body.ARMS["right" if side == "left" else "left"][1:]
    wave = np.cos(phase + offset)
    # The knee and the opposite hand move as a pair and bear weight while sliding back.
    angles[:, hip, 0] += gain * swing * wave
    angles[:, shoulder, 0] += gain * swing * thigh / arm * wave
    lifted = np.sin(phase + offset) > 0
    angles[:, elbow, 0] -= gain * 0.25 * np.maximum(np.sin(phase + offset), 0)
    down = ~(standing | rising) & ~(moving & lifted)
    contacts[down, knee] = True
    contacts[down, wrist] = True
  return Clip(angles, np.zeros(frames), contacts, np.zeros((frames, 2)))


DANCE_SPEED = {"slow": 1.3, "normal": 1.0, "fast": 0.75}


def dance_seconds(p: dict) -> float:
  return 1.1 * p["beats"] * DANCE_SPEED[p["speed"]] + 0.6


def dance(p: dict, frames: int, style: Style) -> Clip:
  """Dance steps: stepping side to side with swaying raised arms."""
  cadence = 1 / (1.1 * DANCE_SPEED[p["speed"]])
  t = np.arange(frames) / FPS
  velocity = np.zeros((frames, 2))
  gain = envelope(frames, int(0.3 * FPS))
  velocity[:, 0] = 0.5 * style.amplitude * np.sin(2 * np.pi * cadence * t) * gain
  g = gait.Gait(cadence=cadence, duty=0.65, swing_height=0.07, width=0.08, arm_swing=0.0,
                elbow=-1.0)
  clip = gait.stepping(style.pose, velocity, g, style.offsets)
  sway = np.sin(2 * np.pi * cadence * t)
  clip.angles[:, body.L_SHOULDER, 2] += gain * (1.5 + 0.5 * sway) * style.amplitude
  clip.angles[:, body.R_SHOULDER, 2] -= gain * (1.5 - 0.5 * sway) * style.amplitude
  clip.angles[:, body.PELVIS, 2] += 0.08 * sway * gain
  clip.angles[:, body.SPINE2, 2] -= 0.12 * sway * gain
  clip.angles[:, body.NECK, 2] += 0.06 * sway * gain
  return clip
