"""Sequences of one to three actions, and the near-twins that make retrieval hard.

A Program is what a motion is made of: the actions, their parameters and their lengths.
Programs come in families: a base program and variants that differ from it in one
thing only (a direction, a side, a count, a speed, or the order of two actions), so
that only a model that reads the whole caption can tell the family members apart.
"""
import dataclasses

import numpy as np

from input_pipeline.synthetic import body, grounding
from input_pipeline.synthetic.actions import ACTIONS
from input_pipeline.synthetic.clip import (FPS, Style, concatenate, ease, smooth_noise,
                                           standing_pose)

# A clip of T frames gives T - 1 feature rows; HumanML3D's loaders use 40 to 196 rows.
MIN_FRAMES = 41
MAX_FRAMES = 197
BLEND_FRAMES = 10


@dataclasses.dataclass(frozen=True)
class Segment:
  """One action of a program: its name, parameters and length in frames."""
  action: str
  params: dict
  frames: int


@dataclasses.dataclass(frozen=True)
class Program:
  """The actions of one motion, in order."""
  segments: tuple[Segment, ...]

  @property
  def num_frames(self) -> int:
    return sum(s.frames for s in self.segments)

  def starts(self) -> list[int]:
    """First frame of every segment."""
    return [int(x) for x in np.cumsum([0] + [s.frames for s in self.segments[:-1]])]


def _frames(action: str, params: dict, rng: np.random.Generator) -> int:
  return max(int(round(ACTIONS[action].seconds(params) * FPS * rng.uniform(0.9, 1.1))), 12)


def _fit(segments: list[Segment]) -> Program | None:
  """The program, lengthened to the shortest allowed clip; None if too long."""
  total = sum(s.frames for s in segments)
  if total > MAX_FRAMES:
    return None
  if total < MIN_FRAMES:
    last = segments[-1]
    segments = segments[:-1] + [dataclasses.replace(last, frames=last.frames + MIN_FRAMES - total)]
  return Program(tuple(segments))


def _draw_action(rng: np.random.Generator, previous: str | None) -> str:
  names = [n for n in ACTIONS if n != previous]
  weights = np.array([ACTIONS[n].weight for n in names])
  return names[rng.choice(len(names), p=weights / weights.sum())]


def sample_program(rng: np.random.Generator) -> Program:
  """A random program of one to three actions that fits in 41..197 frames."""
  while True:
    count = rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])
    segments, previous = [], None
    for _ in range(count):
      name = _draw_action(rng, previous)
      params = ACTIONS[name].sample(rng)
      segments.append(Segment(name, params, _frames(name, params, rng)))
      previous = name
    if count == 1 and segments[0].action == "stand":
      continue
    if (program := _fit(segments)) is not None:
      return program


def vary(program: Program, rng: np.random.Generator) -> Program | None:
  """A near-twin of program: one visible parameter changed, or two actions swapped."""
  segments = list(program.segments)
  for _ in range(20):
    changes = [(i, q) for i, s in enumerate(segments) for q in ACTIONS[s.action].variants(s.params)]
    if len(segments) > 1 and rng.random() < 0.3:
      i = int(rng.integers(len(segments) - 1))
      if segments[i].action != segments[i + 1].action:
        swapped = segments[:i] + [segments[i + 1], segments[i]] + segments[i + 2:]
        if (out := _fit(swapped)) is not None:
          return out
    if not changes:
      return None
    i, params = changes[rng.integers(len(changes))]
    name = segments[i].action
    changed = segments[:i] + [Segment(name, params, _frames(name, params, rng))] + segments[i + 1:]
    if (out := _fit(changed)) is not None:
      return out
  return None


def sample_programs(num: int, rng: np.random.Generator) -> list[Program]:
  """num programs in families of one base program and up to two of its variants."""
  out = []
  while len(out) < num:
    base = sample_program(rng)
    out.append(base)
    for _ in range(rng.choice([0, 1, 2], p=[0.4, 0.35, 0.25])):
      if len(out) < num and (twin := vary(base, rng)) is not None:
        out.append(twin)
  return out


def perform(program: Program, rng: np.random.Generator) -> np.ndarray:
  """Joint positions (T, 22, 3) of one performance of program by a random performer.

  Consecutive actions blend over a few frames; the performer's body, standing pose,
  amplitude and small irregularities come from rng, so no two performances match.
  """
  style = Style(pose=standing_pose(rng), offsets=body.varied_offsets(rng),
                amplitude=rng.uniform(0.88, 1.12), rng=rng)
  clips = [ACTIONS[s.action].render(s.params, s.frames, style) for s in program.segments]
  for before, clip in zip(clips[:-1], clips[1:]):
    n = min(BLEND_FRAMES, clip.num_frames // 3)
    w = ease((np.arange(n) + 1) / (n + 1))[:, None, None]
    clip.angles[:n] = (1 - w) * before.angles[-1] + w * clip.angles[:n]
  whole = concatenate(clips)
  # Irregularity above the hips only: wobbling legs would make planted feet slide.
  upper = list(body.SPINE) + list(body.ARMS["left"]) + list(body.ARMS["right"])
  whole.angles[:, upper] += smooth_noise(rng, whole.num_frames, 0.02)[:, upper]
  return grounding.ground(whole, style.offsets)
