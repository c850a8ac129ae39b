"""The actions each synthetic clip performs: DIR/actions.json, written beside the dataset.

Training never reads this file; evaluation does, to judge keyword search by what a motion
really does rather than by its captions. Layout (JSON):

  {
    "format": "lexmo_jax synthetic actions 1",
    "fps": 20,
    "keywords": {"walk": ["walk", "walk_circle"], "run": ["run"], ...},
    "clips": {
      "000003": [
        {"action": "walk", "direction": "forward", "side": null, "speed": "slow",
         "count": null, "start": 0.0, "end": 2.45, "params": {"direction": "forward", ...}},
        ...
      ],
      "M000003": [...]   # the mirror image: left/right and clockwise swapped
    }
  }

`start`/`end` are seconds into the clip's feature rows (row = int(seconds * fps)), the
convention of HumanML3D's caption spans. `count` is the number of repetitions the captions
state (None where the action has none); `params` holds every parameter, hidden ones too.
`keywords` maps the word a user would search for to the actions that perform it.
"""
from __future__ import annotations

import json
import pathlib

FILE = "actions.json"
FORMAT = "lexmo_jax synthetic actions 1"

# The word a user types -> the generator's actions that do it. A spin is a turn; jumping
# jacks and hops are jumps; walking in a circle is walking.
KEYWORD_ACTIONS = {
    "walk": ("walk", "walk_circle"),
    "run": ("run",),
    "jump": ("jump", "hop", "jumping_jacks"),
    "wave": ("wave",),
    "kick": ("kick",),
    "sit": ("sit_down",),
    "squat": ("squat",),
    "throw": ("throw",),
    "crawl": ("crawl",),
    "clap": ("clap",),
    "turn": ("turn", "spin"),
    "punch": ("punch",),
    "hop": ("hop",),
    "spin": ("spin",),
    "dance": ("dance",),
    "bow": ("bow",),
    "lunge": ("lunge",),
    "stretch": ("stretch",),
}

_MIRROR = {"left": "right", "right": "left", "forward_left": "forward_right",
           "forward_right": "forward_left", "clockwise": "counterclockwise",
           "counterclockwise": "clockwise"}


def _plain(value):
  """numpy scalars and tuples as JSON values."""
  if hasattr(value, "item"):
    return value.item()
  return value


def segment_record(action: str, params: dict, start_row: int, end_row: int,
                   fps: float) -> dict:
  """One action of a clip as actions.json stores it."""
  params = {k: _plain(v) for k, v in params.items()}
  side = params.get("side")
  if side is None and params.get("direction") in ("left", "right"):
    side = params["direction"]
  return {"action": action, "direction": params.get("direction", params.get("rotation")),
          "side": side, "speed": params.get("speed"), "count": params.get("count"),
          "start": round(start_row / fps, 4), "end": round(end_row / fps, 4),
          "params": params}


def mirrored(record: dict) -> dict:
  """The record of the mirror-image clip: left and right, clockwise and counter swap."""
  def swap(v):
    return _MIRROR.get(v, v) if isinstance(v, str) else v
  out = {k: swap(v) for k, v in record.items() if k != "params"}
  out["params"] = {k: swap(v) for k, v in record["params"].items()}
  return out


def write(out_dir: pathlib.Path, clips: dict[str, list[dict]], fps: float) -> pathlib.Path:
  """Writes DIR/actions.json; clips maps clip id -> its segment records, in order."""
  path = pathlib.Path(out_dir) / FILE
  payload = {"format": FORMAT, "fps": fps,
             "keywords": {k: list(v) for k, v in KEYWORD_ACTIONS.items()},
             "clips": dict(sorted(clips.items()))}
  path.write_text(json.dumps(payload, indent=1) + "\n")
  return path


class GroundTruth:
  """The actions of a synthetic dataset's clips, read from DIR/actions.json."""

  def __init__(self, payload: dict, source: str):
    if payload.get("format") != FORMAT:
      raise ValueError(f"{source}: not a synthetic actions file (format "
                       f"{payload.get('format')!r}, expected {FORMAT!r})")
    self.fps = float(payload["fps"])
    self.keywords = {k: tuple(v) for k, v in payload["keywords"].items()}
    self.clips = payload["clips"]
    self.source = source

  @classmethod
  def load(cls, root: str | pathlib.Path) -> GroundTruth | None:
    """The dataset's ground truth, or None when the folder has no actions.json."""
    path = pathlib.Path(root) / FILE
    if not path.is_file():
      return None
    try:
      payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
    return cls(payload, str(path))

  def actions(self, motion_id: str, start: float = 0.0, end: float = 0.0) -> set[str]:
    """Actions performed in a clip, or in its span [start, end) seconds (0, 0: all)."""
    segments = self.clips.get(motion_id)
    if segments is None:
      raise KeyError(f"{self.source} has no clip {motion_id!r}")
    if start == 0.0 and end == 0.0:
      return {s["action"] for s in segments}
    return {s["action"] for s in segments if s["start"] < end and s["end"] > start}

  def performs(self, keyword: str, motion_id: str, start: float = 0.0, end: float = 0.0
               ) -> bool:
    return bool(self.actions(motion_id, start, end) & set(self.keywords[keyword]))
