"""The catalogue of actions: their parameters, nominal lengths and how to render them.

An action is a name plus a parameter dict. Parameters named in HIDDEN shape the motion
(how many strides a walk takes) but are never put into words; every other parameter
appears in every caption of the action, so a caption pins the motion down.
"""
import dataclasses
from collections.abc import Callable

import numpy as np

from input_pipeline.synthetic import gestures, locomotion
from input_pipeline.synthetic.clip import Clip, Style

SPEEDS = ("slow", "normal", "fast")
SIDES = ("left", "right")
HIDDEN = ("steps", "beats")


@dataclasses.dataclass(frozen=True)
class ActionKind:
  """One kind of action.

  Attributes:
    name: the action's name.
    options: parameter name -> the values it may take.
    seconds: nominal length in seconds of an action with these parameters.
    render: (parameters, frames, style) -> Clip of exactly that many frames.
    weight: how often the action is drawn, relative to the others.
    allowed: which parameter combinations make sense.
  """
  name: str
  options: dict[str, tuple]
  seconds: Callable[[dict], float]
  render: Callable[[dict, int, Style], Clip]
  weight: float = 1.0
  allowed: Callable[[dict], bool] = lambda p: True

  def sample(self, rng: np.random.Generator) -> dict:
    """Random allowed parameters."""
    while True:
      p = {k: v[rng.integers(len(v))] for k, v in self.options.items()}
      if self.allowed(p):
        return p

  def variants(self, params: dict) -> list[dict]:
    """Allowed parameter sets that differ from params in one visible parameter."""
    out = []
    for key, values in self.options.items():
      if key in HIDDEN:
        continue
      for v in dict.fromkeys(values):
        if v != params[key] and self.allowed(q := {**params, key: v}):
          out.append(q)
    return out


def _kinds() -> dict[str, ActionKind]:
  loc, ges = locomotion, gestures
  kinds = [
      ActionKind("walk", {"direction": ("forward", "forward", "backward", "forward_left",
                                        "forward_right"),
                          "speed": SPEEDS, "steps": (3, 4, 5, 6, 7, 8)},
                 loc.walk_seconds, loc.walk, 3.0),
      ActionKind("run", {"direction": ("forward", "forward", "backward"), "speed": SPEEDS,
                         "steps": (4, 5, 6, 7, 8, 10)},
                 loc.run_seconds, loc.run, 1.5,
                 lambda p: p["direction"] == "forward" or p["speed"] == "slow"),
      ActionKind("side_step", {"direction": SIDES, "count": (2, 3, 4), "speed": SPEEDS},
                 loc.side_step_seconds, loc.side_step, 1.2),
      ActionKind("turn", {"direction": SIDES, "angle": (45, 90, 90, 180)},
                 loc.turn_seconds, loc.turn, 2.0),
      ActionKind("spin", {"rotation": ("clockwise", "counterclockwise"), "count": (1, 2)},
                 loc.spin_seconds, loc.spin, 0.8),
      ActionKind("walk_circle", {"rotation": ("clockwise", "counterclockwise"),
                                 "speed": SPEEDS},
                 loc.circle_seconds, loc.walk_circle, 0.6),
      ActionKind("jump", {"direction": ("in_place", "in_place", "forward", "backward", "left",
                                        "right"), "count": (1, 2, 3)},
                 loc.jump_seconds, loc.jump, 1.8),
      ActionKind("hop", {"side": SIDES, "direction": ("in_place", "forward"),
                         "count": (2, 3, 4)},
                 loc.hop_seconds, loc.hop, 1.0),
      ActionKind("jumping_jacks", {"count": (2, 3, 4)},
                 loc.jumping_jacks_seconds, loc.jumping_jacks, 0.7),
      ActionKind("crawl", {"speed": SPEEDS, "steps": (2, 3)},
                 loc.crawl_seconds, loc.crawl, 0.6),
      ActionKind("dance", {"speed": SPEEDS, "beats": (2, 3, 4)},
                 loc.dance_seconds, loc.dance, 0.7),
      ActionKind("wave", {"side": ("left", "right", "both"), "count": (1, 2, 3),
                          "speed": SPEEDS},
                 ges.wave_seconds, ges.wave, 1.8),
      ActionKind("kick", {"side": SIDES, "direction": ("forward", "forward", "sideways"),
                          "count": (1, 2, 3), "speed": SPEEDS},
                 ges.kick_seconds, ges.kick, 1.5),
      ActionKind("punch", {"side": SIDES, "count": (1, 2, 3), "speed": SPEEDS},
                 ges.punch_seconds, ges.punch, 1.2),
      ActionKind("squat", {"count": (1, 2, 3), "speed": SPEEDS},
                 ges.squat_seconds, ges.squat, 1.2),
      ActionKind("sit_down", {"stand_up": (False, True)},
                 ges.sit_seconds, ges.sit_down, 0.9),
      ActionKind("throw", {"side": SIDES, "count": (1, 2), "speed": SPEEDS},
                 ges.throw_seconds, ges.throw, 1.0),
      ActionKind("bow", {"count": (1, 2), "speed": SPEEDS}, ges.bow_seconds, ges.bow, 0.8),
      ActionKind("raise_arms", {"side": ("left", "right", "both"),
                                "direction": ("up", "forward", "sideways"), "count": (1, 2),
                                "speed": SPEEDS},
                 ges.raise_arms_seconds, ges.raise_arms, 1.4),
      ActionKind("stretch", {"side": SIDES, "speed": SPEEDS},
                 ges.stretch_seconds, ges.stretch, 0.6),
      ActionKind("clap", {"count": (2, 3, 4, 5), "speed": SPEEDS},
                 ges.clap_seconds, ges.clap, 0.9),
      ActionKind("arm_circles", {"side": ("left", "right", "both"),
                                 "direction": ("forward", "backward"), "count": (2, 3, 4),
                                 "speed": SPEEDS},
                 ges.circles_seconds, ges.arm_circles, 0.8),
      ActionKind("lunge", {"side": SIDES, "count": (1, 2), "speed": SPEEDS},
                 ges.lunge_seconds, ges.lunge, 0.7),
      ActionKind("pick_up", {"side": SIDES, "speed": SPEEDS},
                 ges.pick_up_seconds, ges.pick_up, 0.7),
      ActionKind("stand", {}, ges.stand_seconds, ges.stand, 0.5),
  ]
  return {k.name: k for k in kinds}


ACTIONS: dict[str, ActionKind] = _kinds()
