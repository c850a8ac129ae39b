"""The search command: motions of a split by caption, by keywords, or like a given motion.

  python -m lexmo_jax.search --workdir=runs/demo/lexcmlp --query "a person runs and then jumps"
  python -m lexmo_jax.search --workdir=runs/demo/lexcmlp --keywords run,jump --k 5
  python -m lexmo_jax.search --workdir=runs/demo/lexcmlp --describe clip.npy --render out/
  python -m lexmo_jax.search --workdir=W --split=train --keywords run --engine=approximate

Each prints the ranked item ids, scores, captions and the words that contributed most to
each match, and which engine answered in how long; --render writes a skeleton GIF and a bar
chart of the top words for every hit. `--engine` picks the exact index or the approximate one
(an exact keyword index for keywords, Seismic for short queries, a cluster probe for
sentences) or lets the gallery's size choose (`lexmo_jax.search.engines`).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re

from input_pipeline import dataset_kinds
from input_pipeline.motion import features as motion_features
from lexmo_jax import atomic_write, visualization
from lexmo_jax.inference import check_query, load_config, read_motion_file, shorten
from lexmo_jax.search import approximate, cluster_probe, engines
from lexmo_jax.search.approximate import ApproximateSettings
from lexmo_jax.search.gallery import Gallery, Hit, check_keywords
from lexmo_jax.train import data as data_lib

GIF_STRIDE = 2  # every other frame: half the drawing time, still smooth at 10 fps


@dataclasses.dataclass
class SearchRequest:
  """One run of the command. Exactly one of query, keywords, describe is set."""
  workdir: str
  query: str | None = None
  keywords: str | None = None
  describe: str | None = None
  split: str = "test"
  k: int = 10
  top_k_terms: int | None = None
  index: str = ""
  render: str = ""
  engine: str = "auto"
  seismic: ApproximateSettings | None = None  # the approximate engine's knobs (None: defaults)
  json: str = ""  # also write the results to this file as JSON


def _check(request: SearchRequest) -> None:
  given = [name for name in ("query", "keywords", "describe")
           if getattr(request, name) is not None]
  if len(given) != 1:
    raise ValueError("give exactly one of --query, --keywords, --describe"
                     + (f" (got {', '.join('--' + g for g in given)})" if given else ""))
  if request.query is not None and not request.query.strip():
    raise ValueError("the query is empty; give a caption such as "
                     "--query \"a person runs and then jumps\"")
  if request.keywords is not None and not request.keywords.replace(",", "").strip():
    raise ValueError("no keyword given; pass e.g. --keywords run,jump")
  if request.k < 1:
    raise ValueError(f"--k must be at least 1, got {request.k}")
  if request.json:
    target = pathlib.Path(request.json)
    if target.is_dir():
      raise ValueError(f"--json {request.json} is a folder; give the path of a file to write")
    above = next((p for p in target.parents if p.exists()), None)
    if above is not None and not above.is_dir():
      raise ValueError(f"--json {request.json}: {above} is a file, not a folder")
  engines.resolve_engine(request.engine, 0)


def _format_words(words) -> str:
  return ", ".join(f"{w} {v:.3g}" for w, v in words) or "(none)"


def format_hits(hits: list[Hit]) -> str:
  """One block per hit: rank, id, score, caption, then the contributing words."""
  lines = []
  for hit in hits:
    lines.append(f"{hit.rank:3d}. {hit.item_id}  score {hit.score:.4f}  \"{hit.caption}\"")
    lines.append(f"     matched by: {_format_words(hit.words)}")
  return "\n".join(lines)


def _file_stem(rank: int, item_id: str) -> str:
  return f"{rank:02d}_" + re.sub(r"[^A-Za-z0-9_.-]", "_", item_id)


def render_motion(features, vector, vocab, kind: str, stem: pathlib.Path,
                  title: str, source: str = "") -> list[pathlib.Path]:
  """Writes <stem>.gif (stick figure, sides coloured) and <stem>_words.png (its description,
  forms of one word added) for one motion; the whole title is drawn, wrapped. source (workdir
  and step) goes under the word chart."""
  body = dataset_kinds.get_kind(kind)
  joints = motion_features.features_to_joints(features, body.num_joints)
  gif = visualization.render_skeleton_gif(
      joints, stem.parent / f"{stem.name}.gif", body.kinematic_chains, fps=body.fps,
      title=title, stride=GIF_STRIDE)
  png = visualization.plot_top_words(vector, vocab, stem.parent / f"{stem.name}_words.png",
                                     top=15, title=title, source=source, forms_together=True)
  return [gif, png]


def _source(gallery: Gallery) -> str:
  """Where a picture's vector comes from: '<workdir> (<phase> step <step>)'."""
  return f"{gallery.workdir} ({gallery.model.phase} step {gallery.model.step})"


def render_hits(gallery: Gallery, hits: list[Hit], outdir: str | pathlib.Path
                ) -> list[pathlib.Path]:
  """A GIF and a top-word chart per hit, named <rank>_<id>; returns the files written."""
  outdir = pathlib.Path(outdir)
  outdir.mkdir(parents=True, exist_ok=True)
  written = []
  for hit in hits:
    pair = gallery.pairs[hit.item_id]
    written += render_motion(pair.motion, gallery.motion_vector(hit.item_id),
                             gallery.model.vocab, gallery.model.kind,
                             outdir / _file_stem(hit.rank, hit.item_id),
                             f"{hit.item_id}: {hit.caption}", _source(gallery))
  return written


def run(request: SearchRequest) -> list[Hit]:
  """Runs one search and prints it. Returns the hits."""
  _check(request)
  # Inputs are checked before the model loads, so that bad ones fail at once.
  features = None
  if request.describe is not None:
    features = read_motion_file(request.describe, load_config(request.workdir).data.kind)
  if request.keywords is not None:
    check_keywords(data_lib.load_tokenizer(load_config(request.workdir)),
                   request.keywords.split(","))
  if request.query is not None:
    config = load_config(request.workdir)
    check_query(data_lib.load_tokenizer(config), request.query, config.data.max_text_length)
  gallery = Gallery.open(request.workdir, request.split, request.index, request.top_k_terms,
                         engine=request.engine, settings=request.seismic)
  why = ""
  if request.engine == "auto":
    why = (f" (auto: approximate from {engines.AUTO_APPROXIMATE_FROM:,} motions on, "
           "--engine to choose)")
  print(f"gallery: {gallery.index.num_items} motions of split {request.split!r} "
        f"({gallery.model.phase} step {gallery.model.step}), {gallery.engine} engine{why}")
  record = {"workdir": request.workdir, "split": request.split,
            "gallery_size": gallery.index.num_items, "engine": gallery.engine, "k": request.k}
  if request.query is not None:
    words, hits = gallery.search_text(request.query, request.k)
    print(f"query \"{shorten(request.query)}\" reads as: {_format_words(words)}")
    record.update(query=request.query, reads_as=words)
  elif request.keywords is not None:
    result = gallery.search_keywords(request.keywords.split(","), request.k)
    if result.unknown:
      print(f"not in the vocabulary, left out: {', '.join(result.unknown)}; "
            f"searching with: {', '.join(result.used)}")
    hits = result.hits
    print("keywords: " + "; ".join(f"{k} ({', '.join(f)})" for k, f in result.forms.items()))
    record.update(keywords=result.used, unknown=result.unknown, forms=result.forms)
  else:
    words, hits = gallery.describe(features, request.k, name=f"motion file {request.describe}")
    print(f"{request.describe} ({features.shape[0]} frames) is described by: "
          f"{_format_words(words)}")
    print("closest motions of the gallery:")
    record.update(describe=request.describe, description=words)
  print(format_hits(hits))
  if len(hits) < min(request.k, gallery.index.num_items):
    found = "found sharing" if gallery.engine == "approximate" else "share"
    print(f"only {len(hits)} of the {gallery.index.num_items} motions {found} a word with the "
          f"{'motion' if features is not None else 'query'}")
  print(f"answered by the {gallery.answered_by} in {gallery.last_search_ms:.2f} ms")
  if request.json:
    record.update(answered_by=gallery.answered_by, ms=gallery.last_search_ms,
                  hits=[dataclasses.asdict(h) for h in hits])
    path = atomic_write.write_text(request.json, json.dumps(record, indent=2) + "\n",
                                   "the search results")
    print(f"results written to {path}")
  if request.render:
    print(f"rendering {len(hits)} hit{'' if len(hits) == 1 else 's'} to {request.render} "
          "(a GIF and a word chart each)", flush=True)
    written = render_hits(gallery, hits, request.render)
    if features is not None:
      written += render_motion(features, gallery.model.encode_motions([features], 1)[0],
                               gallery.model.vocab, gallery.model.kind,
                               pathlib.Path(request.render) / "described",
                               pathlib.Path(request.describe).name, _source(gallery))
    print(f"rendered {len(written)} files to {request.render}")
  return hits


# The approximate engine's settings the command takes, and the flag of each.
SETTING_FLAGS = {"n_postings": "seismic-n-postings", "summary_energy": "seismic-summary-energy",
                 "query_cut": "seismic-query-cut", "heap_factor": "seismic-heap-factor",
                 "seismic_max_terms": "seismic-max-terms", "clusters": "clusters",
                 "probes": "probes"}


def define_flags():
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "A LexMMM or LexCMLP training workdir.")
  flags.DEFINE_string("split", "test", "Dataset split whose motions form the gallery.")
  flags.DEFINE_string("query", None, "A caption-like query, e.g. \"a person runs\".")
  flags.DEFINE_string("keywords", None, "Comma-separated words, e.g. run,jump.")
  flags.DEFINE_string("describe", None, "A .npy motion to describe: raw (T, F) features or "
                      "(T, J, 3) joint positions.")
  flags.DEFINE_integer("k", 10, "Hits to show.")
  flags.DEFINE_integer("top-k-terms", 0, "Keep each motion's k heaviest words in the index "
                       "(0: all, exact search).")
  flags.DEFINE_string("index", "", "Index folder to load or write (default DIR/index/<split>, "
                      "DIR/index/<split>-approximate for the approximate engine).")
  flags.DEFINE_string("render", "", "Folder for a GIF and a word chart per hit.")
  flags.DEFINE_string("json", "", "Also write the results to this file as JSON: the query "
                      "(or keywords, or the described file and its description), the engine, "
                      "its milliseconds and each hit's rank, id, score, caption and words.")
  flags.DEFINE_enum("engine", "auto", list(engines.ENGINES), "exact: the inverted index, "
                    "every score exact; approximate: a keyword index (exact), Seismic and a "
                    "cluster probe, for very large galleries; auto: "
                    f"approximate from {engines.AUTO_APPROXIMATE_FROM:,} motions on.")
  defaults = ApproximateSettings()
  flags.DEFINE_integer("seismic-n-postings", defaults.n_postings, "Approximate engine: "
                       "postings kept per word on average (build; 0: "
                       f"{approximate.POSTINGS_FEW_WORDS} where the gallery uses at most "
                       f"{defaults.probe_max_words:,} words, else "
                       f"{approximate.POSTINGS_MANY_WORDS}).")
  flags.DEFINE_float("seismic-summary-energy", defaults.summary_energy, "Approximate engine: "
                     "share of a block's mass its summary keeps (build; 0: "
                     f"{approximate.ENERGY_FEW_WORDS} where the gallery uses at most "
                     f"{defaults.probe_max_words:,} words, else {approximate.ENERGY_MANY_WORDS}).")
  flags.DEFINE_integer("seismic-query-cut", defaults.query_cut, "Approximate engine: the "
                       "query's heaviest words read (search).")
  flags.DEFINE_float("seismic-heap-factor", defaults.heap_factor, "Approximate engine: a "
                     "block is read when its bound beats this share of the k-th score (search).")
  flags.DEFINE_integer("seismic-max-terms", defaults.seismic_max_terms, "Approximate engine: "
                       "queries of at most this many words go to Seismic, longer ones to the "
                       "cluster probe (search).")
  flags.DEFINE_integer("clusters", defaults.clusters, "Approximate engine: k-means clusters "
                       "of the cluster probe (build; 0: about 4·sqrt(gallery size) as a power of "
                       f"two, at most one per {cluster_probe.MIN_ITEMS_PER_CLUSTER} motions).")
  flags.DEFINE_integer("probes", defaults.probes, "Approximate engine: clusters scanned per "
                       "sentence-length query (search).")


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from lexmo_jax.cli import fail, setup_logging  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  f = flags.FLAGS
  if not f.workdir:
    fail("--workdir is required")
  request = SearchRequest(workdir=f.workdir, query=f.query, keywords=f.keywords,
                          describe=f.describe, split=f.split, k=f.k,
                          top_k_terms=f["top-k-terms"].value or None, index=f.index,
                          render=f.render, engine=f.engine, json=f.json)
  try:
    # The approximate engine's knobs are checked whichever engine is asked for: a bad value
    # is a mistake to show, not to pass over because another engine answers.
    knobs = {field: f[flag].value for field, flag in SETTING_FLAGS.items()}
    try:
      settings = ApproximateSettings(**knobs)
    except ValueError as e:  # the settings name their fields; the user typed flags
      message = str(e)
      for field, flag in SETTING_FLAGS.items():
        message = message.replace(f"the approximate engine's {field} ", f"--{flag} ")
      raise ValueError(message) from None
    if f.engine != "exact":
      request.seismic = settings
    run(request)
  except (ValueError, OSError) as e:
    fail("; ".join(line.strip() for line in str(e).splitlines() if line.strip()))
