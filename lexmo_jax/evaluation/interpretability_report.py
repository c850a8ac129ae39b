"""`evaluate --task=interpretability` on a workdir: encode a split, measure, draw, print.

The measures themselves are `lexmo_jax.evaluation.interpretability`; this module gathers
their inputs from a trained workdir (vectors, captions, the keyword judge) and writes the
JSON and the two pictures.
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from input_pipeline.synthetic.ground_truth import GroundTruth
from lexmo_jax import atomic_write
from lexmo_jax import visualization
from lexmo_jax.evaluation import interpretability as interp
from lexmo_jax.evaluation import words as words_lib
from lexmo_jax.inference import LexicalModel
from lexmo_jax.search.gallery import keyword_query
from lexmo_jax.train import data as data_lib

DESCRIBED_MOTIONS = 3


def _span(item_id: str) -> tuple[str, float, float]:
  """(motion id, start, end) of an item id '<id>' or '<id>#<start>#<end>'."""
  motion_id, _, rest = item_id.partition("#")
  if not rest:
    return motion_id, 0.0, 0.0
  start, _, end = rest.partition("#")
  return motion_id, float(start), float(end)


def _keyword_judge(config, pairs, keywords: tuple[str, ...]):
  """Ground truth of the synthetic generator when the data root has one, else captions."""
  truth = None if config.data.get("tfds_dir") else GroundTruth.load(config.data.root)
  if truth is None:
    return interp.judge_by_captions([p.captions for p in pairs], keywords or interp.DEFAULT_KEYWORDS)
  keywords = keywords or tuple(truth.keywords)
  unknown = [k for k in keywords if k not in truth.keywords]
  if unknown:
    raise ValueError(f"{truth.source} names no action for the keywords {', '.join(unknown)}; "
                     f"known: {', '.join(truth.keywords)}")
  spans = [_span(p.item_id) for p in pairs]
  relevant = {k: np.array([truth.performs(k, *span) for span in spans]) for k in keywords}
  named_by: dict[str, tuple[str, ...]] = {}
  for keyword, actions in truth.keywords.items():
    for action in actions:
      named_by[action] = named_by.get(action, ()) + (keyword,)
  performed = [{a: named_by[a] for a in truth.actions(*span) if a in named_by}
               for span in spans]
  return interp.KeywordJudge(list(keywords), relevant, "actions.json", performed)


def evaluate_interpretability(workdir: str, split: str = "test", out: str = "",
                              keywords: tuple[str, ...] = ()) -> dict:
  """Measures whether the workdir's lexical space is lexical; writes JSON and pictures.

  Writes DIR/eval/interpretability.json (or --out), DIR/eval/interpretability_words.png (the
  distribution of the motions' heaviest words, the paper's Figure 5) and
  DIR/eval/interpretability_example.png (a caption and its motion, their heaviest words
  beside those of the text encoder before pre-training, the paper's Figure 4).

  Returns:
    The measures of `lexmo_jax.evaluation.interpretability.measure`, plus `described`
    (three motions with their captions and heaviest words) and `pictures`.
  """
  model = LexicalModel.from_workdir(workdir)
  split_data = data_lib.load_split(model.config, split)
  pairs = split_data.pairs
  if not pairs:
    raise ValueError(f"split {split!r} of {model.config.data.root} has no items")
  judge = _keyword_judge(model.config, pairs, keywords)
  batches = model.eval_batches(pairs, split_data.mean, split_data.std)
  motion_vectors = model.encode_eval_batches(batches)["motion"]
  captions = list(dict.fromkeys(c for p in pairs for c in p.captions))
  caption_vectors = model.encode_texts(captions)
  tokenize = model.tokenizer.tokenize
  result = interp.measure(
      vocab=model.vocab, tokenize=tokenize, motion_vectors=motion_vectors,
      motion_captions=[p.captions for p in pairs], caption_vectors=caption_vectors,
      captions=captions, keyword_query=lambda k: keyword_query(model.tokenizer, [k]),
      judge=judge)

  whole = [i for i, p in enumerate(pairs) if "#" not in p.item_id] or list(range(len(pairs)))
  chosen = [whole[j * len(whole) // DESCRIBED_MOTIONS]
            for j in range(min(DESCRIBED_MOTIONS, len(whole)))]
  result["described"] = [
      {"id": pairs[i].item_id, "captions": list(pairs[i].captions),
       "words": [[w, round(v, 4)] for w, v in model.description(motion_vectors[i])]}
      for i in chosen]

  folder = pathlib.Path(out).parent if out else pathlib.Path(workdir) / "eval"
  folder.mkdir(parents=True, exist_ok=True)
  counts = interp.high_importance_words(motion_vectors, model.vocab).most_common(30)
  words_png = visualization.plot_word_distribution(
      counts, len(pairs), folder / "interpretability_words.png",
      title=f"heaviest words of the {len(pairs)} motions of split {split!r} "
            f"(dark: content words)",
      is_content=lambda w: words_lib.kind(w) == "content")
  first = pairs[chosen[0]]
  caption = first.captions[0]
  initial = LexicalModel.before_pretraining(model.config, model.tokenizer)
  own = words_lib.CaptionWords(first.captions, tokenize)
  example_png = visualization.plot_words_side_by_side(
      [("caption, pre-trained", model.top_words(model.encode_texts([caption])[0], 10)),
       ("motion, pre-trained", model.top_words(motion_vectors[chosen[0]], 10)),
       ("caption, before pre-training",
        initial.top_words(initial.encode_texts([caption])[0], 10))],
      folder / "interpretability_example.png",
      title=f"{first.item_id}: \"{caption[:90]}\" (dark: the captions' content words)",
      highlight=own.matches)
  result["pictures"] = [str(words_png), str(example_png)]

  path = pathlib.Path(out) if out else folder / "interpretability.json"
  atomic_write.write_text(path, json.dumps(result, indent=2) + "\n", "the interpretability results")
  print(f"{split} split of {model.config.data.root}: {len(pairs)} motions, {len(captions)} "
        f"captions; {model.phase} step {model.step}")
  print(interp.format_table(result))
  for item in result["described"]:
    print(f"{item['id']}: \"{item['captions'][0]}\"")
    print("    described by: " + ", ".join(f"{w} {v:.2f}" for w, v in item["words"]))
  print(f"written to {path}, pictures {words_png.name} and {example_png.name}")
  return result
