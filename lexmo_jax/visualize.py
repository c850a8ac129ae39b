"""Pictures of a trained workdir: a lexical vector's words, and a PCA map of the motions.

  python -m lexmo_jax.visualize words --workdir=runs/demo/lexcmlp --text "a person jumps" \
      --out words.png [--cloud] [--top 20]
  python -m lexmo_jax.visualize words --workdir=runs/demo/lexcmlp --motion clip.npy --out m.png
  python -m lexmo_jax.visualize pca --workdir=runs/demo/lexcmlp [--split test] --out pca.png

`words` draws the top-weighted words of a caption's or a raw (T, F) motion's lexical vector
as a bar chart (or a word cloud). `pca` projects the motion encoder's pooled ([CLS]) states
of a split on two principal components, coloured by the action each clip's first caption
names (its first word from ACTIONS, "other" when none).
"""
from __future__ import annotations

import collections
import pathlib
import re

SUBCOMMANDS = ("words", "pca")
OTHER = "other"
# Phases whose motion encoder has been trained, so its pooled states mean something.
MOTION_PHASES = ("cmmm", "lexmmm", "lexcmlp")

# Verbs of whole-body actions, as captions of HumanML3D and the synthetic set use them.
ACTIONS = (
    "walk", "run", "jog", "sprint", "stroll", "march", "hurry", "dash", "shuffle", "sidestep",
    "jump", "leap", "hop", "skip", "turn", "spin", "rotate", "twirl", "circle", "wave",
    "kick", "squat", "crouch", "sit", "stand", "kneel", "lie", "crawl", "climb", "throw",
    "pitch", "toss", "catch", "punch", "jab", "clap", "bow", "bend", "lean", "stretch",
    "lunge", "swing", "dance", "step", "stomp", "pick", "grab", "lift", "raise", "reach",
    "push", "pull", "balance", "stumble", "fall", "shake", "salute",
)
_DOUBLED = {"run", "jog", "hop", "skip", "sit", "step", "spin", "clap", "squat", "grab",
            "jab"}
_IRREGULAR = {
    "ran": "run", "sat": "sit", "stood": "stand", "knelt": "kneel", "lay": "lie",
    "lain": "lie", "threw": "throw", "thrown": "throw", "swung": "swing", "spun": "spin",
    "leapt": "leap", "fell": "fall", "fallen": "fall", "caught": "catch", "shook": "shake",
    "shaken": "shake",
}


def _inflections(verb: str) -> tuple[str, ...]:
  """The base, third person, gerund and regular past of a verb."""
  consonant_y = verb.endswith("y") and verb[-2] not in "aeiou"
  if verb.endswith(("s", "sh", "ch", "x", "z")):
    third = verb + "es"
  elif consonant_y:
    third = verb[:-1] + "ies"
  else:
    third = verb + "s"
  if verb in _DOUBLED:
    gerund, past = verb + verb[-1] + "ing", verb + verb[-1] + "ed"
  elif verb.endswith("ie"):
    gerund, past = verb[:-2] + "ying", verb + "d"
  elif verb.endswith("e") and not verb.endswith("ee"):
    gerund, past = verb[:-1] + "ing", verb + "d"
  else:
    gerund, past = verb + "ing", (verb[:-1] + "ied") if consonant_y else verb + "ed"
  return verb, third, gerund, past


_FORM_TO_ACTION = {form: verb for verb in ACTIONS for form in _inflections(verb)}
_FORM_TO_ACTION.update(_IRREGULAR)


def action_label(caption: str) -> str:
  """The first action verb of a caption in its base form ("walks" → "walk"), or "other"."""
  for word in re.findall(r"[a-z]+", caption.lower()):
    if word in _FORM_TO_ACTION:
      return _FORM_TO_ACTION[word]
  return OTHER


def words_picture(workdir: str, out: str, text: str | None = None, motion: str | None = None,
                  cloud: bool = False, top: int = 0) -> tuple[pathlib.Path,
                                                              list[tuple[str, float]]]:
  """Draws the top words of a caption's or a motion file's lexical vector.

  Args:
    workdir: a LexMMM or LexCMLP workdir.
    out: the .png to write.
    text: a caption; or
    motion: a raw (T, F) feature .npy file.
    cloud: a word cloud instead of a bar chart.
    top: words drawn (0: 20 for bars, 50 for a cloud).

  Returns:
    The path written and the (word, weight) pairs drawn.
  """
  from lexmo_jax import inference, visualization  # pylint: disable=g-import-not-at-top
  if (text is None) == (motion is None):
    raise ValueError("give exactly one of --text and --motion")
  if text is not None and not text.strip():
    raise ValueError("the text is empty; give a caption such as --text \"a person jumps\"")
  if not str(out).lower().endswith(".png"):
    raise ValueError(f"--out {out} must be a .png file")
  if top < 0:
    raise ValueError(f"--top must be positive, got {top}")
  top = top or (50 if cloud else 20)
  features = None
  config = inference.load_config(workdir)
  if motion is not None:
    features = inference.read_motion_file(motion, config.data.kind)
  else:
    from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top
    inference.check_query(data_lib.load_tokenizer(config), text, config.data.max_text_length,
                          flag="--text")
  model = inference.LexicalModel.from_workdir(workdir)
  if features is not None:
    vector = model.encode_motions([features], batch_size=1)[0]
    title = f"{pathlib.Path(motion).name} ({features.shape[0]} frames)"
  else:
    vector = model.encode_texts([text.strip()], batch_size=1)[0]
    title = f"\"{' '.join(text.split())}\""
  draw = visualization.plot_word_cloud if cloud else visualization.plot_top_words
  path = draw(vector, model.vocab, out, top=top, title=title,
              source=f"{workdir} ({model.phase} step {model.step})")
  return path, model.top_words(vector, top)


def pca_picture(workdir: str, out: str, split: str = "test"
                ) -> tuple[pathlib.Path, list[str]]:
  """Draws the PCA map of a split's pooled motion states coloured by action.

  Returns:
    The path written and the action label of every item, in split order.
  """
  from lexmo_jax.inference import LexicalModel, WorkdirError  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top
  from lexmo_jax.visualization import plot_pca  # pylint: disable=g-import-not-at-top
  if not str(out).lower().endswith(".png"):
    raise ValueError(f"--out {out} must be a .png file")
  model = LexicalModel.from_workdir(workdir, require_lexical=False)
  if model.phase not in MOTION_PHASES:
    raise WorkdirError(f"{workdir} is a {model.phase!r} workdir, whose motion encoder is "
                       f"untrained; use a {', '.join(MOTION_PHASES)} workdir")
  split_data = data_lib.load_split(model.config, split)
  if len(split_data.pairs) < 2:
    raise ValueError(f"split {split!r} of {model.config.data.root} has "
                     f"{len(split_data.pairs)} item; a PCA map needs at least 2")
  batches = model.eval_batches(split_data.pairs, split_data.mean, split_data.std)
  pooled = model.encode_eval_batches(batches)["motion_pooled"]
  labels = [action_label(p.captions[0]) for p in split_data.pairs]
  # Frequent actions first, ties alphabetical: the legend's order (plot_pca breaks ties in
  # its count order by first appearance).
  counts = collections.Counter(labels)
  order = sorted(range(len(labels)), key=lambda i: (-counts[labels[i]], labels[i], i))
  subject = "the motion encoder's pooled [CLS] states"
  path = plot_pca(pooled[order], [labels[i] for i in order], out,
                  title=f"PCA of {subject} of the {split} split's {len(labels)} motions, "
                        "coloured by action",
                  subject=subject, label_name="action of the first caption",
                  source=f"{workdir} ({model.phase} step {model.step})")
  return path, labels


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.cli import fail, setup_logging  # pylint: disable=g-import-not-at-top
  if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
    fail(f"give one subcommand, {' or '.join(SUBCOMMANDS)}: "
         "python -m lexmo_jax.visualize words|pca --workdir=DIR --out=FILE.png ...")
  setup_logging()
  f = flags.FLAGS
  if not f.workdir or not f.out:
    fail("--workdir and --out are required")
  try:
    if argv[1] == "words":
      path, words = words_picture(f.workdir, f.out, f.text, f.motion, f.cloud, f.top)
      print(", ".join(f"{w} {v:.3f}" for w, v in words) or "no word has a positive weight")
    else:
      path, labels = pca_picture(f.workdir, f.out, f.split)
      counts = collections.Counter(labels).most_common()
      print(f"{len(labels)} motions: " + ", ".join(f"{a} {n}" for a, n in counts))
    print(f"written to {path}")
  except (ValueError, OSError) as e:
    fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))


def _define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "A training workdir.")
  flags.DEFINE_string("out", None, "The .png to write.")
  flags.DEFINE_string("text", None, "words: a caption to draw.")
  flags.DEFINE_string("motion", None, "words: a raw (T, F) feature .npy file to draw.")
  flags.DEFINE_bool("cloud", False, "words: a word cloud instead of a bar chart.")
  flags.DEFINE_integer("top", 0, "words: words drawn (0: 20 bars, 50 in a cloud).")
  flags.DEFINE_string("split", "test", "pca: the dataset split to map.")


if __name__ == "__main__":
  from lexmo_jax.cli import run  # pylint: disable=g-import-not-at-top
  _define_flags()
  run(main)
