"""Table 4 of a run: text-to-motion generators scored as the field scores them.

  python -m lexmo_jax.evaluate --task=generation --workdir=runs/demo/generation

For each generator workdir (a folder of them is searched one level deep) and each of
`repeats` repetitions (the field's 20): every test item draws one of its captions, the
generator writes one motion for it, and T2M's evaluator embeds captions, generated and real
motions; R-precision (batches of 32), FID, MM-Dist and Diversity come from those, and
MultiModality from `mm_repeats` motions for each of `mm_items` captions
(`lexmo_jax.evaluation.generation`). Each metric is reported as mean ± 1.96·std/√repeats.
The real test motions give the "Real motion" row (its FID is 0 by construction: omitted).

The evaluator is a t2m_evaluator workdir trained here, or T2M's official checkpoint
(`text_mot_match/model/finest.tar` with `--evaluator-glove` naming T2M's `glove` folder of
`our_vab_*` files, and the `meta/mean.npy`, `meta/std.npy` normalisation beside it if given).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import sys
import time
from typing import Sequence

import jax
import numpy as np

from input_pipeline import humanml3d
from input_pipeline.pipeline import EvalBatches
from lexmo_jax.evaluation import generation as metrics
from lexmo_jax.inference import WorkdirError, load_config, open_workdir, restore_params
from lexmo_jax.models import t2m_evaluator as t2m
from lexmo_jax.phases import t2m_evaluator as evaluator_task
from lexmo_jax.text_to_motion import TextToMotion

logger = logging.getLogger("lexmo_jax.evaluate")

EMBED_BATCH = 128


@dataclasses.dataclass
class Evaluator:
  """T2M's evaluator ready to embed captions and motions.

  Attributes:
    module, params: the `EvaluatorModel` and its parameters.
    vectorizer: its words (and vectors).
    mean, std: (F,) the normalisation its motions take, or None for the data's own.
    source: where it came from, for the report.
  """
  module: evaluator_task.EvaluatorModel
  params: dict
  vectorizer: t2m.WordVectorizer
  mean: np.ndarray | None
  std: np.ndarray | None
  source: str

  def __hash__(self):
    return id(self)

  def embed_texts(self, tagged: Sequence[str]) -> np.ndarray:
    """(N, 512) embeddings of captions given as their `word/POS` fields."""
    words, pos, lengths = self.vectorizer.encode_many(list(tagged))
    vectors = self.vectorizer.vectors
    out = []
    for s in range(0, len(words), EMBED_BATCH):
      n = len(words[s:s + EMBED_BATCH])
      pad = [(0, EMBED_BATCH - n)]
      out.append(np.asarray(self._texts(
          self.params, np.pad(words[s:s + EMBED_BATCH], pad + [(0, 0)]),
          np.pad(pos[s:s + EMBED_BATCH], pad + [(0, 0)]),
          np.pad(lengths[s:s + EMBED_BATCH], pad, constant_values=2), vectors))[:n])
    return np.concatenate(out)

  def embed_motions(self, motion_ntf: np.ndarray, lengths_n: np.ndarray,
                    data_mean: np.ndarray, data_std: np.ndarray) -> np.ndarray:
    """(N, 512) embeddings of motions normalised by the data's (mean, std), zero past their
    lengths (frames); renormalised first when the evaluator has its own statistics."""
    motion = np.asarray(motion_ntf, np.float32)
    lengths = (np.asarray(lengths_n) // t2m.UNIT_LENGTH * t2m.UNIT_LENGTH).astype(np.int32)
    keep = np.arange(motion.shape[1])[None, :, None] < lengths[:, None, None]
    if self.mean is not None:
      motion = (motion * data_std + data_mean - self.mean) / self.std
    motion = np.where(keep, motion, 0.0).astype(np.float32)
    out = []
    for s in range(0, len(motion), EMBED_BATCH):
      n = len(motion[s:s + EMBED_BATCH])
      pad = [(0, EMBED_BATCH - n)]
      out.append(np.asarray(self._motions(
          self.params, np.pad(motion[s:s + EMBED_BATCH], pad + [(0, 0), (0, 0)]),
          np.pad(lengths[s:s + EMBED_BATCH], pad, constant_values=t2m.UNIT_LENGTH)))[:n])
    return np.concatenate(out)

  @functools.partial(jax.jit, static_argnums=0)
  def _texts(self, params, words, pos, lengths, vectors):
    return self.module.apply({"params": params}, words, pos, lengths, vectors,
                             method=evaluator_task.EvaluatorModel.embed_text)

  @functools.partial(jax.jit, static_argnums=0)
  def _motions(self, params, motion, lengths):
    return self.module.apply({"params": params}, motion, lengths,
                             method=evaluator_task.EvaluatorModel.embed_motion)


def _official_checkpoint(path: pathlib.Path) -> pathlib.Path | None:
  for candidate in (path, path / "finest.tar", path / "model" / "finest.tar"):
    if candidate.is_file():
      return candidate
  return None


def load_evaluator(path, glove: str = "", feature_dim: int = 263) -> Evaluator:
  """A t2m_evaluator workdir, or T2M's official checkpoint (a `finest.tar`, or the folder
  holding it or `model/finest.tar`) with `glove` naming T2M's `our_vab_*` folder.

  Raises:
    FileNotFoundError, ValueError, WorkdirError: naming the path and what is wrong (missing
    or mis-shaped tensors are listed by name).
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"--evaluator={path} does not exist (a t2m_evaluator workdir, or "
                            "T2M's finest.tar)")
  if (path / "config.json").is_file():
    config, ckpt, step, _ = open_workdir(path, ("t2m_evaluator",))
    vectorizer = evaluator_task.load_vectorizer(path)
    module = evaluator_task.evaluator_model(config, len(vectorizer),
                                            vectorizer.vectors is None)
    params = restore_params(ckpt, step, module, config)
    return Evaluator(module, params, vectorizer, None, None, f"{path} (step {step})")
  checkpoint = _official_checkpoint(path)
  if checkpoint is None:
    raise FileNotFoundError(f"--evaluator={path}: neither a t2m_evaluator workdir (no "
                            "config.json) nor T2M's checkpoint (no finest.tar)")
  if not glove:
    raise ValueError(f"T2M's checkpoint {checkpoint} reads GloVe word vectors: pass "
                     "--evaluator-glove=<T2M's glove folder with our_vab_data.npy, "
                     "our_vab_words.pkl, our_vab_idx.pkl>")
  vectorizer = t2m.WordVectorizer.from_t2m_files(glove)
  model = t2m.T2MEvaluator(feature_dim=feature_dim)
  params = {"evaluator": t2m.load_official_checkpoint(checkpoint, model)}
  module = evaluator_task.EvaluatorModel(feature_dim=feature_dim, vocab_size=len(vectorizer),
                                         learned_embedding=False)
  meta = checkpoint.parent.parent / "meta"
  mean = std = None
  if (meta / "mean.npy").is_file() and (meta / "std.npy").is_file():
    mean, std = np.load(meta / "mean.npy"), np.load(meta / "std.npy")
  return Evaluator(module, params, vectorizer, mean, std, str(checkpoint))


def generator_workdirs(path) -> tuple[list[pathlib.Path], pathlib.Path | None]:
  """(generator workdirs, a t2m_evaluator workdir or None) at `path`: the workdir itself, or
  its subfolders (sorted by name).

  Raises:
    WorkdirError: no generator workdir there.
  """
  path = pathlib.Path(path)
  folders = [path] if (path / "config.json").is_file() else sorted(
      p for p in path.iterdir() if (p / "config.json").is_file()) if path.is_dir() else []
  generators, evaluator = [], None
  for folder in folders:
    try:
      phase = load_config(folder).get("phase")
    except WorkdirError:
      continue
    if phase == "generator":
      generators.append(folder)
    elif phase == "t2m_evaluator":
      evaluator = folder
  if not generators:
    raise WorkdirError(f"{path} is not a generator workdir and holds none (train one with "
                       "configs/generator.py)")
  return generators, evaluator


def _real_motions(config, split: str):
  """(pairs, motions (N, T, F) normalised, lengths (N,), mean, std) of a split, centre-cropped
  to max_motion_length as the evaluation batches crop them."""
  pairs, report = humanml3d.load_split(config.data.root, split, config.data.kind,
                                       min_length=config.data.min_motion_length)
  if report.total:
    logger.warning("%s split %r: %s", config.data.root, split, report.summary())
  mean, std = humanml3d.load_normalisation(config.data.root, config.data.kind)
  from input_pipeline import tokenizer as tokenizer_lib  # pylint: disable=g-import-not-at-top
  batches = EvalBatches(pairs, mean, std, tokenizer_lib.load_tokenizer(""),
                        batch_size=len(pairs), max_motion_length=config.data.max_motion_length,
                        max_text_length=2)
  batch = batches.batch(0)
  return pairs, batch["motion"], batch["motion_mask"].sum(1), mean, std


def evaluate_generation(generator_dirs: Sequence, evaluator: Evaluator, *, split: str = "test",
                        repeats: int = metrics.REPEATS, mm_items: int = 100,
                        mm_repeats: int = 10, seed: int = 0,
                        diversity_pairs: int = metrics.DIVERSITY_PAIRS,
                        text_encoder: str | None = None) -> dict:
  """Scores generators and the real motions; returns {"rows": [(name, {metric: (mean, ±)})],
  "settings": {...}, "per_repeat": {name: {metric: [values]}}}."""
  if mm_repeats < metrics.MULTIMODALITY_PAIRS:
    raise ValueError(f"--mm-repeats={mm_repeats}: MultiModality draws "
                     f"{metrics.MULTIMODALITY_PAIRS} pairs of each caption's motions, so it "
                     f"needs at least {metrics.MULTIMODALITY_PAIRS} per caption")
  if repeats < 1 or mm_items < 1:
    raise ValueError(f"--repeats and --mm-items must be positive, got {repeats}, {mm_items}")
  generators = [TextToMotion.from_workdir(d, text_encoder) for d in generator_dirs]
  config = generators[0].config
  for g, d in zip(generators[1:], generator_dirs[1:]):
    if (g.config.data.root, g.config.data.kind) != (config.data.root, config.data.kind):
      raise ValueError(f"{d} was trained on {g.config.data.root}, {generator_dirs[0]} on "
                       f"{config.data.root}: generators are compared on one dataset")
  pairs, real, real_lengths, mean, std = _real_motions(config, split)
  n = len(pairs)
  if n < metrics.R_PRECISION_BATCH:
    raise ValueError(f"split {split!r} has {n} items, fewer than R-precision's batch of "
                     f"{metrics.R_PRECISION_BATCH}")
  kept = n // metrics.R_PRECISION_BATCH * metrics.R_PRECISION_BATCH
  pairs_used = min(diversity_pairs, kept)
  if pairs_used < diversity_pairs:
    print(f"note: Diversity over {pairs_used} pairs: the {split} split keeps {kept} motions in "
          f"whole batches of 32, fewer than the field's {diversity_pairs}", file=sys.stderr)
  captions = humanml3d.all_captions(pairs)
  tagged = evaluator_task.tagged_captions(config.data.root, pairs)
  starts = np.concatenate([[0], np.cumsum([len(p.captions) for p in pairs])[:-1]])
  counts = np.array([len(p.captions) for p in pairs])
  text_all = evaluator.embed_texts(tagged)
  real_emb = evaluator.embed_motions(real, real_lengths, mean, std)
  mm_items = min(mm_items, n)

  per_repeat: dict[str, dict[str, list[float]]] = {"Real motion": {}}
  conditions = {}
  for g, d in zip(generators, generator_dirs):
    per_repeat[_row_name(g, d)] = {}
    conditions[id(g)] = g.conditions(captions, progress=False)
  t0 = time.perf_counter()
  for r in range(repeats):
    rng = np.random.default_rng([seed, r])
    chosen = starts + np.minimum((rng.random(n) * counts).astype(int), counts - 1)
    order = rng.permutation(n)
    rows = chosen[order]
    text = text_all[rows]
    real_row = metrics.repeat_metrics(text, real_emb[order], real_emb, rng=rng,
                                      diversity_pairs=pairs_used)
    real_row.pop("fid")
    _append(per_repeat["Real motion"], real_row)
    mm_rows = rows[:mm_items]
    for g, d in zip(generators, generator_dirs):
      cond = conditions[id(g)]
      motion, lengths = g.sample(cond[rows], seed=seed * 1000 + 2 * r)
      generated = evaluator.embed_motions(motion, lengths, mean, std)
      mm_motion, mm_lengths = g.sample(np.repeat(cond[mm_rows], mm_repeats, axis=0),
                                       seed=seed * 1000 + 2 * r + 1)
      mm = evaluator.embed_motions(mm_motion, mm_lengths, mean, std).reshape(
          mm_items, mm_repeats, -1)
      _append(per_repeat[_row_name(g, d)],
              metrics.repeat_metrics(text, generated, real_emb, mm, rng=rng,
                                     diversity_pairs=pairs_used))
    elapsed = time.perf_counter() - t0
    print(f"[generation] repeat {r + 1}/{repeats} "
          f"{elapsed / (r + 1):.1f} s/repeat ETA {elapsed / (r + 1) * (repeats - r - 1):.0f} s",
          file=sys.stderr, flush=True)
  rows_out = [(name, metrics.summarise(values)) for name, values in per_repeat.items()]
  return {"rows": rows_out, "per_repeat": per_repeat,
          "settings": {"split": split, "items": n, "repeats": repeats, "mm_items": mm_items,
                       "mm_repeats": mm_repeats, "diversity_pairs": pairs_used, "seed": seed,
                       "evaluator": evaluator.source,
                       "generators": {name: str(d) for name, d in zip(
                           list(per_repeat)[1:], generator_dirs)},
                       "sampling": {str(d): dict(g.config.generator) for g, d in zip(
                           generators, generator_dirs)}}}


def _row_name(generator: TextToMotion, workdir) -> str:
  return f"{generator.label} [{pathlib.Path(workdir).name}]"


def _append(store: dict[str, list[float]], values: dict[str, float]) -> None:
  for key, value in values.items():
    store.setdefault(key, []).append(value)


def report_text(result: dict) -> str:
  """The Table 4 layout of `evaluate_generation`'s result, with the published rows."""
  s = result["settings"]
  head = (f"Text-to-motion generation, {s['split']} split ({s['items']} items), "
          f"{s['repeats']} repeats (mean ± 95% interval); MultiModality over {s['mm_items']} "
          f"captions × {s['mm_repeats']} motions; evaluator: {s['evaluator']}")
  return head + "\n\n" + metrics.generation_table(result["rows"])


def evaluate_generation_workdir(workdir, split: str = "test", out: str = "", evaluator: str = "",
                                evaluator_glove: str = "", repeats: int = metrics.REPEATS,
                                mm_items: int = 100, mm_repeats: int = 10,
                                text_encoder: str | None = None) -> dict:
  """The `evaluate --task=generation` command: scores the generator workdirs at `workdir`
  with the evaluator `evaluator` names (default: a t2m_evaluator workdir beside them),
  prints the table and writes the JSON (default `<workdir>/eval/generation.json`).

  Raises:
    ValueError, FileNotFoundError, WorkdirError: with the path and the problem.
  """
  generator_dirs, found = generator_workdirs(workdir)
  source = evaluator or found
  if not source:
    raise ValueError(f"no evaluator: {workdir} holds no t2m_evaluator workdir; train one "
                     "(configs/t2m_evaluator.py) or pass --evaluator=<workdir or T2M's "
                     "finest.tar>")
  config = load_config(generator_dirs[0])
  from input_pipeline import dataset_kinds  # pylint: disable=g-import-not-at-top
  scorer = load_evaluator(source, evaluator_glove,
                          dataset_kinds.get_kind(config.data.kind).feature_dim)
  result = evaluate_generation(generator_dirs, scorer, split=split, repeats=repeats,
                               mm_items=mm_items, mm_repeats=mm_repeats,
                               text_encoder=text_encoder)
  print(report_text(result))
  path = pathlib.Path(out) if out else pathlib.Path(workdir) / "eval" / "generation.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  record = {"rows": {name: {k: {"mean": m, "interval95": h} for k, (m, h) in values.items()}
                     for name, values in result["rows"]},
            "per_repeat": result["per_repeat"], "settings": result["settings"]}
  partial = path.with_name(path.name + ".partial")
  partial.write_text(json.dumps(record, indent=2, default=str))
  partial.replace(path)
  print(f"written to {path}")
  return result
