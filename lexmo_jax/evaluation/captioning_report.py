"""`evaluate --task=captioning`: caption a split, score it as the paper's Table 3 does, beside
a nearest-neighbour captioner and the true captions, and write DIR/eval/captioning.json.

JSON: {"captioner": {metrics}, "nearest_neighbour": {metrics}, "references": {retrieval
metrics of the true captions}, "settings": {...}, "captions": [{"id", "generated",
"nearest_neighbour", "references"}, ...]}; metrics bleu_1..bleu_4, rouge_l, cider, bert_score
(×100) and r_precision_1, r_precision_3 (%), matching_score (cosine).
"""
from __future__ import annotations

import json
import pathlib

import numpy as np

from lexmo_jax import atomic_write
from lexmo_jax.evaluation import captioning

# The paper's Table 3 and its peers (BLEU@1, BLEU@4, ROUGE-L, CIDEr, BERTScore; ×100).
PUBLISHED = {
    "humanml3d": {"TM2T": (48.9, 7.00, 38.1, 16.8, 32.2),
                  "MotionGPT": (48.2, 12.47, 37.4, 29.2, 32.4),
                  "paper": (49.7, 13.62, 39.2, 53.1, 33.1)},
    "kitml": {"TM2T": (35.1, 6.2, 28.7, 28.9, 30.4),
              "paper": (43.4, 8.9, 35.2, 65.3, 31.2)},
}
TABLE_KEYS = ("bleu_1", "bleu_4", "rouge_l", "cider", "bert_score")
LABEL = 32  # width of the row labels


def format_table(results: dict, kind: str) -> str:
  """Table 3's columns, then the R-precision of the captions in the lexical space."""
  header = (f"{'':{LABEL}s}{'BLEU@1':>8s}{'BLEU@4':>8s}{'ROUGE-L':>9s}{'CIDEr':>8s}"
            f"{'BERTScore':>11s}{'R@1':>8s}{'R@3':>8s}{'Match':>8s}")
  lines = [header]
  for name, label in (("captioner", "captioner"), ("nearest_neighbour", "nearest neighbour"),
                      ("references", "true captions")):
    m = results[name]
    cells = "".join(f"{m[k]:{w}.2f}" if k in m else f"{'':>{w}s}"
                    for k, w in zip(TABLE_KEYS, (8, 8, 9, 8, 11)))
    cells += f"{m['r_precision_1']:8.2f}{m['r_precision_3']:8.2f}{m['matching_score']:8.3f}"
    lines.append(f"{label:{LABEL}s}{cells}")
  for name, row in PUBLISHED.get(kind, {}).items():
    cells = "".join(f"{v:{w}.2f}" for v, w in zip(row, (8, 8, 9, 8, 11)))
    lines.append(f"{'published ' + name + ' (' + kind + ')':{LABEL}s}{cells}")
  return "\n".join(lines)


def _scores(candidates, references, scorer) -> dict[str, float]:
  cands = [captioning.normalise_caption(c) for c in candidates]
  refs = [[captioning.normalise_caption(r) for r in rs] for rs in references]
  out = captioning.caption_metrics(cands, refs)
  out["bert_score"] = 100.0 * float(np.mean(scorer.score(cands, refs)["f1"]))
  return out


def evaluate_captioning(workdir: str, split: str = "test", out: str = "",
                        beam_size: int | None = None, bert_model: str = "",
                        bert_layer: int = 0, bert_baseline: str = "",
                        examples: int = 5) -> dict:
  """Captions `split` with the workdir's captioner and scores it (see the module doc).

  Args:
    workdir: a captioning workdir.
    split: the dataset split to caption.
    out: JSON path; '' writes DIR/eval/captioning.json.
    beam_size: None = the config's caption.beam_size; 1 = greedy.
    bert_model, bert_layer, bert_baseline: BERTScore's model folder ('' = all-MiniLM-L6-v2),
      layer (0 = by depth) and bert_score baseline file ('' = not rescaled).
    examples: motions printed with their generated and true captions.
  """
  from lexmo_jax.captioner import Captioner  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top

  model = Captioner.from_workdir(workdir)
  beam, alpha, length = model.decoding(beam_size)
  rerank = float(model.config.caption.get("rerank_weight", 0.0))
  scorer = captioning.BertScorer.from_pretrained(bert_model or None, bert_layer, bert_baseline)
  config = model.config
  test = data_lib.load_split(config, split)
  if len(test.pairs) < 2:
    raise ValueError(f"split {split!r} of {config.data.root} has {len(test.pairs)} items; "
                     "captioning is measured on two or more")
  batches = model.eval_batches(test.pairs, test.mean, test.std)
  generated = model.caption_eval_batches(batches, beam, alpha, length)
  encoded = model.encode_eval_batches(batches)
  references = [list(p.captions) for p in test.pairs]

  train = data_lib.load_split(config, config.data.train_split)
  gallery = model.encode_eval_batches(model.eval_batches(train.pairs, train.mean, train.std))
  nearest = captioning.nearest_neighbour_captions(encoded["motion"], gallery["motion"],
                                                  [p.captions[0] for p in train.pairs])

  results = {"captioner": _scores(generated, references, scorer),
             "nearest_neighbour": _scores(nearest, references, scorer), "references": {}}
  for name, captions in (("captioner", generated), ("nearest_neighbour", nearest)):
    results[name].update(captioning.caption_retrieval(model.encode_texts(captions),
                                                      encoded["motion"]))
  results["references"].update(captioning.caption_retrieval(encoded["text"], encoded["motion"]))
  results["settings"] = {
      "split": split, "items": len(test.pairs), "beam_size": beam,
      "length_penalty": alpha if beam > 1 else 0.0,
      "max_length": length, "rerank_weight": rerank if beam > 1 else 0.0,
      "bert_score": scorer.description,
      "step": model.step, "nearest_neighbour_gallery": config.data.train_split}
  results["captions"] = [
      {"id": p.item_id, "generated": g, "nearest_neighbour": n, "references": list(p.captions)}
      for p, g, n in zip(test.pairs, generated, nearest)]

  path = pathlib.Path(out) if out else pathlib.Path(workdir) / "eval" / "captioning.json"
  atomic_write.write_text(path, json.dumps(results, indent=2) + "\n", "the captioning results")

  decoding = "greedy" if beam == 1 else f"beam {beam}, length penalty {alpha}" + (
      f", re-ranked by the lexical space ×{rerank}" if rerank else "")
  print(f"captioning: {split} split of {config.data.root}, {len(test.pairs)} items "
        f"({decoding}); captioning step {model.step}")
  print(format_table(results, config.data.kind))
  print(f"BLEU, ROUGE-L, CIDEr: COCO scorers (pycocoevalcap) against all captions of each "
        f"motion, lower case without punctuation; BERTScore: {scorer.description} (the "
        f"field's: roberta-large, rescaled, so the scales differ); R@1/R@3: a motion's own "
        f"caption among batches of 32, Match: cosine of caption and motion, both in this "
        f"workdir's lexical space" + (" (which also re-ranked the beam)" if rerank and beam > 1
                                      else "") + f"; nearest neighbour: the caption of the "
        f"{config.data.train_split} motion nearest in the lexical space")
  step = max(1, len(test.pairs) // max(examples, 1))
  for item in results["captions"][::step][:examples]:
    print(f"\n{item['id']}\n  generated:  {item['generated']}\n  true:       "
          f"{item['references'][0]}")
  print(f"written to {path}")
  return results
