"""Paraphrased English captions of programs, in the voice of HumanML3D's annotators.

A caption is assembled from one verb phrase per action. Phrase templates mark verbs as
<verb> (conjugated to fit the sentence) and slots as {slot}; every template of an
action mentions all of its visible parameters (direction, speed, side, count,
angle, sense of rotation), so captions are paraphrases of one another, not summaries.
"""
import re

import numpy as np

from input_pipeline.synthetic.composer import Program, Segment

# ------------------------------------------------------------------- verbs --

_DOUBLED = {"run", "jog", "step", "hop", "spin", "sit", "squat", "clap", "drop", "get",
            "put", "jab", "grab", "side-step", "stop"}


def third_person(verb: str) -> str:
  """walk -> walks, reach -> reaches, hurry -> hurries, do -> does."""
  if verb in ("do", "go"):
    return verb + "es"
  if verb.endswith(("s", "sh", "ch", "x", "z")):
    return verb + "es"
  if verb.endswith("y") and verb[-2] not in "aeiou":
    return verb[:-1] + "ies"
  return verb + "s"


def gerund(verb: str) -> str:
  """walk -> walking, take -> taking, run -> running."""
  if verb in _DOUBLED:
    return verb + verb[-1] + "ing"
  if verb.endswith("e") and not verb.endswith("ee"):
    return verb[:-1] + "ing"
  return verb + "ing"


# ------------------------------------------------------------------- slots --

_NUMBER = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
_COUNT = {1: ["once", "one time"], 2: ["twice", "two times", "2 times"],
          3: ["three times", "3 times", "thrice"], 4: ["four times", "4 times"],
          5: ["five times", "5 times"]}
_SPEED = {"slow": ["slowly", "at a slow pace", "very slowly", "slowly"],
          "fast": ["quickly", "fast", "at a fast pace", "rapidly", "quickly"], "normal": [""]}
_SPEED_PRE = {"slow": ["slowly"], "fast": ["quickly", "rapidly"], "normal": [""]}
_WALK_DIRECTION = {
    "forward": ["forward", "forwards", "ahead", "straight ahead", "straight forward"],
    "backward": ["backward", "backwards", "in reverse"],
    "forward_left": ["diagonally to the left", "diagonally forward to the left",
                     "forward and to the left", "at an angle to the left"],
    "forward_right": ["diagonally to the right", "diagonally forward to the right",
                      "forward and to the right", "at an angle to the right"]}
_JUMP_DIRECTION = {"in_place": ["in place", "on the spot", "up and down", ""],
                   "forward": ["forward", "forwards", "ahead"],
                   "backward": ["backward", "backwards"],
                   "left": ["to the left", "sideways to the left", "leftward"],
                   "right": ["to the right", "sideways to the right", "rightward"]}
_ROTATION = {"clockwise": ["clockwise", "in a clockwise direction"],
             "counterclockwise": ["counterclockwise", "in a counterclockwise direction"]}
_ARM_DIRECTION = {"up": ["above {poss} head", "overhead", "up high", "over {poss} head"],
                  "forward": ["forward", "in front of {poss} body", "straight out in front"],
                  "sideways": ["out to the side", "sideways", "to the side",
                               "out to shoulder height at the side"]}


def _counted(n: int, noun: str, plural: str | None = None) -> list[str]:
  if n == 1:
    return [f"a {noun}", f"one {noun}", f"a single {noun}"]
  many = plural or noun + "s"
  return [f"{_NUMBER[n]} {many}", f"{n} {many}"]


def _slots(params: dict) -> dict[str, list[str]]:
  """Wordings of every parameter of an action, by slot name."""
  s = {"speed": _SPEED[params.get("speed", "normal")],
       "speed_pre": _SPEED_PRE[params.get("speed", "normal")]}
  n = params.get("count")
  if n is not None:
    s["count"] = _COUNT[n]
    s["count_opt"] = _COUNT[n] + ([""] if n == 1 else [])
    s["num"] = [_NUMBER[n]] + ([str(n)] if n > 1 else [])
    for noun in ("jump", "kick", "punch", "squat", "throw", "bow", "lunge", "spin", "circle",
                 "step", "hop", "full turn"):
      s[f"n_{noun.replace(' ', '_')}"] = _counted(n, noun, "punches" if noun == "punch" else None)
  lr = params.get("side") if params.get("side") in ("left", "right") else params.get("direction")
  if lr in ("left", "right"):
    s["lr"] = [lr]
  side = params.get("side")
  if side in ("left", "right"):
    s["hand"] = ["with {poss} %s hand" % side, "with the %s hand" % side,
                 "using {poss} %s hand" % side]
    s["the_hand"] = ["{poss} %s hand" % side, "the %s hand" % side]
    s["the_arm"] = ["{poss} %s arm" % side, "the %s arm" % side]
    s["leg"] = ["with {poss} %s leg" % side, "with the %s leg" % side,
                "with the %s foot" % side, "using {poss} %s leg" % side]
    s["it"] = ["it"]
  elif side == "both":
    s["hand"] = ["with both hands", "with both arms", "using both hands"]
    s["the_hand"] = ["both hands", "both of {poss} hands"]
    s["the_arm"] = ["both arms", "both of {poss} arms", "{poss} arms"]
    s["it"] = ["them"]
  direction = params.get("direction")
  if "rotation" in params:
    s["rot"] = _ROTATION[params["rotation"]]
    s["rot_adj"] = [params["rotation"]]
  return s | _direction_slots(direction)


def _direction_slots(direction: str | None) -> dict[str, list[str]]:
  out = {}
  if direction in _WALK_DIRECTION:
    out["dir"] = _WALK_DIRECTION[direction]
  if direction in _JUMP_DIRECTION:
    out["jdir"] = _JUMP_DIRECTION[direction]
  if direction in _ARM_DIRECTION:
    out["adir"] = _ARM_DIRECTION[direction]
  if direction in ("forward", "backward"):
    out["cdir"] = [direction, direction + "s"]
  if direction in ("forward", "sideways"):
    out["kdir"] = (["forward", "to the front", "out in front"] if direction == "forward"
                   else ["sideways", "to the side", "out to the side"])
  return out


# --------------------------------------------------------------- templates --

# action -> [(condition on the parameters, template)]; None matches any parameters.
_TEMPLATES: dict[str, list[tuple[dict | None, str]]] = {
    "walk": [
        (None, "<walk> {dir} {speed}"), (None, "{speed_pre} <walk> {dir}"),
        (None, "<take> a few steps {dir} {speed}"), (None, "<move> {dir} {speed}"),
        ({"speed": "slow"}, "<stroll> {dir}"), ({"speed": "slow"}, "<walk> {dir} leisurely"),
        ({"speed": "fast"}, "<walk> briskly {dir}"), ({"speed": "fast"}, "<hurry> {dir}"),
        ({"direction": "backward"}, "<back> up {speed}"),
        ({"direction": "backward"}, "<step> backwards {speed}")],
    "run": [
        ({"speed": "slow"}, "<jog> {dir}"), ({"speed": "slow"}, "<jog> {dir} at an easy pace"),
        ({"speed": "slow"}, "<run> {dir} slowly"),
        ({"speed": "normal"}, "<run> {dir}"), ({"speed": "normal"}, "<run> {dir} at a steady pace"),
        ({"speed": "normal", "direction": "forward"}, "<break> into a run"),
        ({"speed": "fast"}, "<sprint> {dir}"), ({"speed": "fast"}, "<run> {dir} very fast"),
        ({"speed": "fast"}, "<dash> {dir}"), ({"speed": "fast"}, "<run> quickly {dir}")],
    "side_step": [
        (None, "<take> {n_step} to the {lr} {speed}"), (None, "<step> to the {lr} {count} {speed}"),
        (None, "<side-step> to the {lr} {count} {speed}"),
        (None, "{speed_pre} <shuffle> sideways to the {lr}, {n_step}"),
        (None, "<move> {lr}ward with {n_step} {speed}")],
    "turn": [
        ({"angle": 45}, "<turn> slightly to the {lr}"),
        ({"angle": 45}, "<turn> 45 degrees to the {lr}"),
        ({"angle": 45}, "<make> a slight {lr} turn"),
        ({"angle": 45}, "<turn> a little to the {lr}"),
        ({"angle": 90}, "<turn> {lr}"), ({"angle": 90}, "<turn> to the {lr}"),
        ({"angle": 90}, "<turn> 90 degrees to the {lr}"), ({"angle": 90}, "<make> a {lr} turn"),
        ({"angle": 90}, "<make> a quarter turn to the {lr}"),
        ({"angle": 180}, "<turn> around to the {lr}"),
        ({"angle": 180}, "<turn> 180 degrees to the {lr}"),
        ({"angle": 180}, "<turn> all the way around to the {lr}"),
        ({"angle": 180}, "<turn> to face the opposite direction, turning {lr}")],
    "spin": [
        (None, "<spin> around {count} {rot}"), (None, "<spin> {rot} {count}"),
        (None, "<do> {n_full_turn} {rot}"), (None, "<twirl> around {rot} {count}"),
        (None, "<turn> around {rot} {count} with {poss} arms out")],
    "walk_circle": [
        (None, "<walk> in a circle {rot} {speed}"),
        (None, "<walk> around in a {rot_adj} circle {speed}"),
        (None, "{speed_pre} <walk> a full circle {rot}"), (None, "<circle> around {rot} {speed}")],
    "jump": [
        (None, "<jump> {jdir} {count}"), (None, "<jump> {count} {jdir}"),
        (None, "<leap> {jdir} {count}"), (None, "<do> {n_jump} {jdir}"),
        (None, "<make> {n_jump} {jdir}")],
    "hop": [
        (None, "<hop> on {poss} {lr} leg {jdir} {count}"),
        (None, "<hop> {count} on the {lr} foot {jdir}"),
        (None, "<balance> on the {lr} leg and <hop> {jdir} {count}"),
        (None, "<do> {n_hop} on {poss} {lr} leg {jdir}")],
    "jumping_jacks": [
        (None, "<do> {num} jumping jacks"), (None, "<perform> {num} jumping jacks"),
        (None, "<do> jumping jacks, {num} of them")],
    "crawl": [
        (None, "<crawl> forward {speed}"),
        (None, "<get> down on all fours and <crawl> forward {speed}"),
        (None, "<crawl> on {poss} hands and knees {speed}"),
        (None, "<drop> to the floor, <crawl> forward {speed} and <get> back up")],
    "dance": [
        (None, "<dance> {speed}"), (None, "<do> a little dance {speed}"),
        (None, "<dance> from side to side {speed}"),
        (None, "{speed_pre} <dance> around with {poss} arms up"),
        (None, "<perform> some dance moves {speed}")],
    "wave": [
        (None, "<wave> {hand} {count} {speed}"), (None, "<wave> {count} {hand} {speed}"),
        ({"side": ("left", "right")}, "<raise> {poss} {lr} hand and <wave> {count} {speed}"),
        (None, "{speed_pre} <wave> hello {hand} {count}"),
        (None, "<wave> {the_hand} {count} {speed}")],
    "kick": [
        (None, "<kick> {kdir} {leg} {count} {speed}"),
        (None, "<kick> {count} {kdir} {leg} {speed}"),
        (None, "<do> {n_kick} {kdir} {leg} {speed}"),
        (None, "{speed_pre} <kick> {poss} {lr} leg {kdir} {count}"),
        (None, "<lift> {poss} {lr} leg and <kick> {kdir} {count} {speed}")],
    "punch": [
        (None, "<punch> {hand} {count} {speed}"), (None, "<throw> {n_punch} {hand} {speed}"),
        (None, "<punch> forward {count} {hand} {speed}"),
        (None, "{speed_pre} <jab> {count} {hand}"),
        (None, "<raise> {poss} fists and <punch> {count} {hand} {speed}")],
    "squat": [
        (None, "<squat> {count} {speed}"), (None, "<do> {n_squat} {speed}"),
        (None, "<squat> down {count} {speed}"), (None, "{speed_pre} <perform> {n_squat}"),
        (None, "<bend> {poss} knees and <squat> {count} {speed}")],
    "sit_down": [
        ({"stand_up": False}, "<sit> down"), ({"stand_up": False}, "<sit> down on a chair"),
        ({"stand_up": False}, "<take> a seat"), ({"stand_up": False}, "<lower> down onto a seat"),
        ({"stand_up": True}, "<sit> down and then <stand> back up"),
        ({"stand_up": True}, "<sit> down on a chair and <get> up again"),
        ({"stand_up": True}, "<take> a seat and then <stand> up")],
    "throw": [
        (None, "<throw> something {hand} {count} {speed}"),
        (None, "<throw> a ball {hand} {count} {speed}"),
        (None, "<make> {n_throw} {hand} {speed}"),
        (None, "{speed_pre} <throw> an object overhand {hand} {count}"),
        (None, "<pitch> a ball {hand} {count} {speed}")],
    "bow": [
        (None, "<bow> {count} {speed}"), (None, "<bow> down {count} {speed}"),
        (None, "<take> {n_bow} {speed}"), (None, "<bend> forward at the waist {count} {speed}"),
        (None, "{speed_pre} <bow> forward {count}")],
    "raise_arms": [
        (None, "<raise> {the_arm} {adir} {count_opt} {speed}"),
        (None, "<lift> {the_arm} {adir} {count_opt} {speed}"),
        (None, "{speed_pre} <raise> {the_arm} {adir} and <lower> {it} again {count_opt}"),
        (None, "<put> {the_arm} {adir} {count_opt} {speed}")],
    "stretch": [
        (None, "<stretch> {poss} arms overhead and <lean> to the {lr} {speed}"),
        (None, "<reach> both arms up and <bend> to the {lr} {speed}"),
        (None, "<do> a side stretch to the {lr} {speed}"),
        (None, "{speed_pre} <stretch> to the {lr} side with {poss} arms above {poss} head")],
    "clap": [
        (None, "<clap> {poss} hands {count} {speed}"), (None, "<clap> {count} {speed}"),
        (None, "{speed_pre} <clap> {count} in front of {poss} chest"),
        (None, "<clap> {poss} hands together {count} {speed}")],
    "arm_circles": [
        (None, "<make> {n_circle} {cdir} with {the_arm} {speed}"),
        (None, "<circle> {the_arm} {cdir} {count} {speed}"),
        (None, "<swing> {the_arm} in circles {cdir} {count} {speed}"),
        (None, "{speed_pre} <rotate> {the_arm} {cdir} in {num} circles")],
    "lunge": [
        (None, "<lunge> forward with {poss} {lr} leg {count} {speed}"),
        (None, "<step> forward into a lunge with the {lr} leg {count} {speed}"),
        (None, "<do> {n_lunge} with the {lr} leg forward {speed}"),
        (None, "{speed_pre} <lunge> {count} leading with {poss} {lr} foot")],
    "pick_up": [
        (None, "<bend> down and <pick> something up {hand} {speed}"),
        (None, "<pick> up an object from the floor {hand} {speed}"),
        (None, "{speed_pre} <reach> down to the ground {hand} and <pick> something up"),
        (None, "<grab> something off the floor {hand} {speed}")],
    "stand": [
        (None, "<stand> still"), (None, "<wait> for a moment"), (None, "<pause> briefly"),
        (None, "<stand> in place"),
        (None, "<remain> standing"), (None, "<stay> still for a moment")],
}

_SUBJECTS = [("a person", "their"), ("a person", "their"), ("a person", "his"),
             ("the person", "their"), ("a man", "his"), ("a man", "his"), ("a woman", "her"),
             ("someone", "their"), ("somebody", "their"), ("a figure", "its"),
             ("the figure", "its"), ("a human", "their")]


def _matches(condition: dict | None, params: dict) -> bool:
  if condition is None:
    return True
  for key, want in condition.items():
    allowed = want if isinstance(want, tuple) else (want,)
    if params.get(key) not in allowed:
      return False
  return True


def _phrase(segment: Segment, rng: np.random.Generator, poss: str, form: str) -> str:
  """One wording of a segment; form is "third" (walks) or "gerund" (walking)."""
  options = [t for c, t in _TEMPLATES[segment.action] if _matches(c, segment.params)]
  template = options[rng.integers(len(options))]
  slots = _slots(segment.params)
  conjugate = third_person if form == "third" else gerund
  text = re.sub(r"<([a-z\-]+)>", lambda m: conjugate(m.group(1)), template)
  text = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)][rng.integers(len(slots[m.group(1)]))]
                if m.group(1) != "poss" else m.group(0), text)
  text = text.replace("{poss}", poss)
  return re.sub(r"\s+", " ", text).strip().replace(" ,", ",")


def _sentence(phrases, subject: str, rng: np.random.Generator) -> str:
  """Joins (third person, gerund) phrase pairs of consecutive actions into a sentence."""
  third = [p[0] for p in phrases]
  ing = [p[1] for p in phrases]
  if len(phrases) == 1:
    forms = [f"{subject} {third[0]}", f"{subject} {third[0]}", f"{subject} is {ing[0]}"]
  elif len(phrases) == 2:
    a, b = third
    forms = [f"{subject} {a} then {b}", f"{subject} {a} and then {b}", f"{subject} {a}, then {b}",
             f"{subject} first {a}, then {b}", f"{subject} {a} before {ing[1]}",
             f"after {ing[0]}, {subject} {b}", f"{subject} {a} and {b}",
             f"{subject} is {ing[0]} and then {ing[1]}"]
  else:
    a, b, c = third
    forms = [f"{subject} {a}, {b}, and then {c}", f"{subject} {a}, then {b}, then {c}",
             f"{subject} first {a}, then {b}, and finally {c}",
             f"{subject} {a} then {b} before {ing[2]}",
             f"after {ing[0]}, {subject} {b} and then {c}",
             f"{subject} {a}, {b} and {c}"]
  text = forms[rng.integers(len(forms))]
  if rng.random() < 0.4:
    text = text[0].upper() + text[1:]
  return text + ("." if rng.random() < 0.6 else "")


def describe(segments: list[Segment] | tuple[Segment, ...], rng: np.random.Generator) -> str:
  """One caption of consecutive segments."""
  subject, poss = _SUBJECTS[rng.integers(len(_SUBJECTS))]
  phrases = []
  for s in segments:
    state = rng.bit_generator.state
    third = _phrase(s, rng, poss, "third")
    rng.bit_generator.state = state
    phrases.append((third, _phrase(s, rng, poss, "gerund")))
  return _sentence(phrases, subject, rng)


def caption_program(program: Program, rng: np.random.Generator,
                    min_span_frames: int = 40) -> list[tuple[str, int, int]]:
  """Captions of a program as (text, start, end), in feature rows; 0, 0 is the whole clip.

  Two to four distinct captions of the whole clip; for a sequence, sometimes one more
  that describes a single action over its own span of at least min_span_frames
  feature rows (HumanML3D's loaders drop shorter spans).
  """
  out, seen = [], set()
  for _ in range(rng.choice([2, 3, 3, 4])):
    for _ in range(10):
      text = describe(program.segments, rng)
      if text.lower().rstrip(".") not in seen:
        break
    seen.add(text.lower().rstrip("."))
    out.append((text, 0, 0))
  if len(program.segments) > 1 and rng.random() < 0.5:
    rows = program.num_frames - 1
    spans = [(int(s), min(int(s) + seg.frames, rows), seg)
             for s, seg in zip(program.starts(), program.segments)]
    spans = [x for x in spans if x[1] - x[0] >= min_span_frames]
    if spans:
      start, end, seg = spans[rng.integers(len(spans))]
      out.append((describe([seg], rng), start, end))
  return out


_SWAPS = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward",
          "clockwise": "counterclockwise", "counterclockwise": "clockwise"}


def mirror_caption(text: str) -> str:
  """The caption of the mirror-image motion: left/right and clockwise words swap."""
  return re.sub(r"\b(" + "|".join(_SWAPS) + r")\b",
                lambda m: _match_case(_SWAPS[m.group(0).lower()], m.group(0)), text,
                flags=re.IGNORECASE)


def _match_case(word: str, like: str) -> str:
  return word.capitalize() if like[:1].isupper() else word
