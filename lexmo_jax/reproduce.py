"""The paper's comparisons in one command: trains every row, evaluates it by TMR's protocols
and prints the table in the paper's layout, the published numbers after it.

  python -m lexmo_jax.reproduce --table=retrieval --data=ROOT [--kind kitml] --out=DIR
      [--scale runlocal|full] [--rows TMR,MotionPatches] [--text-init=DISTILBERT_DIR]
  python -m lexmo_jax.reproduce --table=text_encoders --data=ROOT --out=DIR [--scale ...]
      [--text-init=DISTILBERT_DIR --t5=small=T5_SMALL_DIR,xxl=T5_XXL_DIR]

Rows of the retrieval table (Table 1 on HumanML3D, Table 2 on KIT-ML), with the keys that
name their folders (and that --rows also takes):
  TMR (tmr)                      configs/baselines/tmr.py              dense
  MotionPatches (motionpatches)  configs/baselines/motionpatches.py    dense
  †TMR (tmr_lexical)             configs/baselines/tmr_lexical.py      lexical, LexCMLP alone
  †MotionPatches (motionpatches_lexical)  configs/baselines/motionpatches_lexical.py  ditto
  lexical (four phases) (lexical)  configs/{lexmlm,cmmm,lexmmm,lexcmlp}.py, each from the last
Each stage trains in `DIR/rows/<row key>/<stage>` by `python -m lexmo_jax.main` (its progress
shown as it goes); the row is then evaluated on the test split with the `all` and
`small_batches` protocols (`--split`, default test). Results go to `DIR/tables/retrieval.json`
(`{"rows": {row: {"all": metrics, "small_batches": metrics, "seconds": s}}, "settings": …}`)
and `DIR/tables/retrieval.md`, rewritten after each row. A row already in the JSON is skipped
on a rerun; a stage killed half-way resumes from its last checkpoint; a finished stage is
not run again. A rerun with other settings (data, kind, scale, split, steps, text init) on
the same DIR is refused: its rows and stages would pass for this run's.

Rows of the text-encoder table (Table 5): the dense MotionPatches baseline with each text
tower, `configs/baselines/motionpatches.py:text=NAME`:
  DistilBERT (distilbert), T5-Small (t5-small), T5-Base (t5-base), T5-Large (t5-large),
  T5-XL (t5-xl), T5-XXL (t5-xxl)
Results go to `DIR/tables/text_encoders.json` and `.md`, as above.

`--scale runlocal` is the tiny models on a few hundred steps each (minutes on a CPU; every
text tower from random weights, the T5 ones at `T5_RUNLOCAL_SHAPES`, so the text-encoder
table compares architectures, not pre-training); `full` is each recipe's own sizes and length
(for accelerators; pass `--text-init` with a local DistilBERT folder, which every row's text
tower starts from, and `--t5` with each T5 size's local folder for Table 5).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
import time

from absl import flags

from lexmo_jax import atomic_write
from lexmo_jax.cli import fail, run, setup_logging

SCALES = ("runlocal", "full")
PROTOCOLS = ("all", "small_batches")


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str  # the workdir's folder name
  config: str  # config file
  follows: str = ""  # the stage whose workdir starts it
  variant: str = ""  # added to the config's variant string (e.g. text=t5-small)


@dataclasses.dataclass(frozen=True)
class Row:
  name: str
  key: str  # folder name
  stages: tuple[Stage, ...]
  uses_minilm_at_runlocal: bool = False  # its :runlocal text tower is the packaged MiniLM
  tower: str = "distilbert"  # the text tower whose folder (--text-init or --t5) starts it


RETRIEVAL_ROWS = (
    Row("TMR", "tmr", (Stage("tmr", "configs/baselines/tmr.py"),), True),
    Row("MotionPatches", "motionpatches",
        (Stage("motionpatches", "configs/baselines/motionpatches.py"),)),
    Row("†TMR", "tmr_lexical", (Stage("tmr_lexical", "configs/baselines/tmr_lexical.py"),), True),
    Row("†MotionPatches", "motionpatches_lexical",
        (Stage("lexcmlp", "configs/baselines/motionpatches_lexical.py"),)),
    Row("lexical (four phases)", "lexical",
        (Stage("lexmlm", "configs/lexmlm.py"), Stage("cmmm", "configs/cmmm.py", "lexmlm"),
         Stage("lexmmm", "configs/lexmmm.py", "cmmm"),
         Stage("lexcmlp", "configs/lexcmlp.py", "lexmmm"))),
)
T5_SIZES = {"small": "T5-Small", "base": "T5-Base", "large": "T5-Large", "xl": "T5-XL",
            "xxl": "T5-XXL"}
TEXT_ENCODER_ROWS = (
    Row("DistilBERT", "distilbert",
        (Stage("motionpatches", "configs/baselines/motionpatches.py"),)),
    *(Row(name, f"t5-{size}", (Stage("motionpatches", "configs/baselines/motionpatches.py",
                                     variant=f"text=t5-{size}"),), tower=f"t5-{size}")
      for size, name in T5_SIZES.items()),
)
TABLES = {"retrieval": RETRIEVAL_ROWS, "text_encoders": TEXT_ENCODER_ROWS}
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _define_flags():
  flags.DEFINE_enum("table", "retrieval", list(TABLES), "Which table: retrieval (Table 1, "
                    "or 2 with --kind kitml) or text_encoders (Table 5).")
  flags.DEFINE_string("data", "data/synthetic", "The dataset folder (HumanML3D layout).")
  flags.DEFINE_enum("kind", "humanml3d", ("humanml3d", "kitml"), "The dataset kind.")
  flags.DEFINE_string("out", None, "Where the rows train and the tables go.")
  flags.DEFINE_enum("scale", "runlocal", SCALES, "runlocal: tiny models, minutes on a CPU; "
                    "full: each recipe's sizes and length.")
  flags.DEFINE_string("rows", "", "Comma-separated subset of the rows (default all), by "
                      "name or key: " + "; ".join(
                          f"{t}: " + ", ".join(r.key for r in rows)
                          for t, rows in TABLES.items()))
  flags.DEFINE_string("split", "test", "The split every row is evaluated on.")
  flags.DEFINE_integer("steps", 0, "Cap every stage at this many steps (0 = its config's): "
                       "a smoke run of the whole command.")
  flags.DEFINE_string("text-init", "", "A local Hugging Face DistilBERT folder every row's "
                      "text tower starts from (full scale; TMR reads it frozen).")
  flags.DEFINE_string("t5", "", "The T5 folders of the text-encoder table at full scale, as "
                      "SIZE=DIR pairs: small=/m/t5-v1_1-small,xxl=/m/t5-v1_1-xxl (Hugging Face "
                      "layout, T5 v1.1 or FLAN-T5 shapes).")


def config_arg(scale: str, kind: str) -> str:
  parts = (["runlocal"] if scale == "runlocal" else []) + (["kitml"] if kind == "kitml" else [])
  return ",".join(parts)


def stage_command(row: Row, stage: Stage, rows_dir: pathlib.Path, data: str, arg: str,
                  text_init: str, steps: int = 0) -> list[str]:
  """The `lexmo_jax.main` command line of one stage."""
  workdir = rows_dir / row.key / stage.name
  arg = ",".join(filter(None, (arg, stage.variant)))
  command = [sys.executable, "-m", "lexmo_jax.main", f"--config={ROOT / stage.config}:{arg}",
             f"--workdir={workdir}", f"--config.data.root={data}"]
  if stage.follows:
    command.append(f"--config.init_from={rows_dir / row.key / stage.follows}")
  elif text_init:
    command.append(f"--config.text.init={text_init}")
  if steps:
    command += [f"--config.total_steps={steps}", f"--config.checkpoint_every={steps}",
                f"--config.log_every={steps}", "--config.optim.warmup_steps=0"]
  return command


def stage_finished(workdir: pathlib.Path) -> bool:
  """Whether a stage's workdir holds a checkpoint at its config's last step."""
  from lexmo_jax.train.handoff import HandoffError, read_workdir_record  # pylint: disable=g-import-not-at-top
  config_file = workdir / "config.json"
  if not config_file.is_file():
    return False
  try:
    total = int(json.loads(config_file.read_text())["total_steps"])
    ckpt, step, _ = read_workdir_record(workdir)
    ckpt.close()
  except (HandoffError, KeyError, ValueError, json.JSONDecodeError):
    return False
  return step >= total


def write_atomic(path: pathlib.Path, text: str) -> None:
  """Writes `text` to `path` whole or not at all (`lexmo_jax.atomic_write`)."""
  atomic_write.write_text(path, text, "the table")


def read_results(path: pathlib.Path, settings: dict) -> dict:
  """The results file at `path` (rows and settings), or a new one for `settings`.

  Raises:
    ValueError: the file is not this command's, or it holds rows trained with other
      settings (their rows and stages would be reused as if they were this run's).
  """
  if not path.is_file():
    return {"rows": {}, "settings": settings}
  try:
    results = json.loads(path.read_text())
    if not isinstance(results.get("rows"), dict):
      raise ValueError("no 'rows' object")
  except (json.JSONDecodeError, UnicodeDecodeError, ValueError, AttributeError) as e:
    raise ValueError(f"{path} is not a results file of this command ({e}): move it away or "
                     "pass another --out") from None
  theirs = results.get("settings", {})
  differ = [f"{k}={theirs.get(k)!r} there, {v!r} now" for k, v in settings.items()
            if theirs.get(k) != v]
  if differ:
    raise ValueError(f"{path.parent.parent} holds rows trained with other settings ("
                     + "; ".join(differ) + "): pass another --out, or delete it to start over")
  return results


def evaluate_row(workdir: pathlib.Path, out: pathlib.Path, split: str) -> dict:
  """{protocol: metrics} of a finished workdir on `split`."""
  from lexmo_jax import evaluate  # pylint: disable=g-import-not-at-top
  return evaluate.evaluate(str(workdir), split=split, protocols=PROTOCOLS, out=str(out))


def reproduce(table: str, data: str, kind: str, out: str, scale: str, rows: tuple[str, ...],
              inits: dict[str, str] | None = None, steps: int = 0, split: str = "test") -> dict:
  """Trains and evaluates the rows of `table` not yet in `out/tables/<table>.json`; returns
  the results.

  Args:
    inits: text tower ('distilbert', 't5-small', …) → the folder its rows start from (full
      scale); a tower not named starts from random weights.

  Raises:
    subprocess.CalledProcessError: a stage's training failed (its own message printed above).
  """
  from lexmo_jax.evaluation import retrieval_tables  # pylint: disable=g-import-not-at-top
  inits = {k: v for k, v in (inits or {}).items() if v}
  out_dir = pathlib.Path(out)
  rows_dir = out_dir / "rows"
  json_path = out_dir / "tables" / f"{table}.json"
  settings = {"data": str(data), "kind": kind, "scale": scale,
              "text_init": inits.get("distilbert", ""),
              "steps": steps or "each config's", "split": split}
  if table != "retrieval":
    settings["table"] = table
    settings["t5"] = {k: v for k, v in sorted(inits.items()) if k != "distilbert"}
  results = read_results(json_path, settings)
  # The settings are recorded before anything trains, so a rerun with others is refused.
  write_atomic(json_path, json.dumps(results, indent=2) + "\n")
  arg = config_arg(scale, kind)
  table_rows = TABLES[table]
  todo = [r for r in table_rows if r.name in rows]
  context = (f"{kind} data at {data} ({split} split), {scale} scale"
             + (f", every stage cut to {steps} steps (a smoke run)" if steps else ""))

  def write_table() -> str:
    text = retrieval_tables.format_retrieval_table(_ordered(results["rows"], table_rows), kind,
                                                   context, table)
    write_atomic(json_path.with_suffix(".md"), text + "\n")
    return text

  for k, row in enumerate(todo, 1):
    if row.name in results["rows"]:
      print(f"[{k}/{len(todo)}] {row.name}: done before (in {json_path}), skipped", flush=True)
      continue
    started = time.perf_counter()
    for s, stage in enumerate(row.stages, 1):
      workdir = rows_dir / row.key / stage.name
      if stage_finished(workdir):
        print(f"[{k}/{len(todo)}] {row.name}: stage {s}/{len(row.stages)} {stage.name} "
              f"finished before, in {workdir}", flush=True)
        continue
      print(f"[{k}/{len(todo)}] {row.name}: stage {s}/{len(row.stages)} {stage.name} "
            f"({stage.config}{':' + stage.variant if stage.variant else ''}) in {workdir}",
            flush=True)
      text_init = ("" if (row.uses_minilm_at_runlocal and scale == "runlocal")
                   else inits.get(row.tower, ""))
      subprocess.run(stage_command(row, stage, rows_dir, data, arg, text_init, steps),
                     check=True, cwd=ROOT)
    print(f"[{k}/{len(todo)}] {row.name}: evaluating", flush=True)
    metrics = evaluate_row(rows_dir / row.key / row.stages[-1].name,
                           rows_dir / row.key / "retrieval.json", split)
    results["rows"][row.name] = {**metrics, "seconds": round(time.perf_counter() - started, 1)}
    write_atomic(json_path, json.dumps(results, indent=2) + "\n")
    write_table()
  print()
  print(write_table())
  print(f"\nwritten to {json_path} and {json_path.with_suffix('.md')}")
  return results


def _ordered(rows: dict, table_rows: tuple[Row, ...]) -> dict:
  """The rows in the paper's order (any other name after them)."""
  names = [r.name for r in table_rows]
  known = [n for n in names if n in rows]
  return {n: rows[n] for n in known + [n for n in rows if n not in names]}


def parse_rows(value: str, table: str = "retrieval") -> tuple[str, ...]:
  """Row names of `table` from a comma-separated list of names or their folder keys (ASCII
  aliases: tmr, motionpatches, …, t5-small, …); '' = every row."""
  table_rows = TABLES[table]
  by_key = {r.key: r.name for r in table_rows}
  all_names = tuple(r.name for r in table_rows)
  names = tuple(by_key.get(n.strip(), n.strip()) for n in value.split(",") if n.strip())
  if value.strip() and not names:
    raise ValueError(f"--rows={value!r} names no row; leave it out for every row")
  unknown = [n for n in names if n not in all_names]
  if unknown:
    raise ValueError(f"--rows: unknown row {', '.join(unknown)} of the {table} table; its "
                     "rows are " + ", ".join(f"{r.name} ({r.key})" for r in table_rows))
  return names or all_names


def parse_t5(value: str) -> dict[str, str]:
  """{'t5-SIZE': folder} of a `--t5` value (SIZE=DIR pairs, comma-separated).

  Raises:
    ValueError: an unknown size, a pair without '=', or a folder that does not exist.
  """
  inits = {}
  for pair in filter(None, (p.strip() for p in value.split(","))):
    size, sep, folder = pair.partition("=")
    if not sep or size not in T5_SIZES:
      raise ValueError(f"--t5: {pair!r} is not SIZE=DIR with SIZE one of {', '.join(T5_SIZES)}")
    if not pathlib.Path(folder).is_dir():
      raise ValueError(f"--t5: {folder} does not exist (a Hugging Face T5 folder for {size})")
    inits[f"t5-{size}"] = folder
  return inits


def check_request(table: str, scale: str, rows: tuple[str, ...], inits: dict[str, str]) -> None:
  """Refuses a request whose text towers do not fit its scale.

  Raises:
    ValueError: one line saying what to pass.
  """
  if scale == "runlocal" and inits:
    raise ValueError("--text-init and --t5 are for --scale full: the runlocal rows' text "
                     "towers are the tiny model's (width 64), not the checkpoints'")
  if scale != "full":
    return
  missing = [r for r in TABLES[table] if r.name in rows and r.tower not in inits]
  needs = []
  if any(r.tower == "distilbert" for r in missing):
    needs.append("--text-init=<a local distilbert-base-uncased folder> (every DistilBERT text "
                 "tower" + (", and TMR's frozen one," if table == "retrieval" else "")
                 + " starts from it)")
  sizes = [r.tower.removeprefix("t5-") for r in missing if r.tower != "distilbert"]
  if sizes:
    needs.append(f"--t5={','.join(f'{s}=DIR' for s in sizes)} (a Hugging Face T5 folder each)")
  if needs:
    raise ValueError(f"--scale full: no folder for the rows {', '.join(r.key for r in missing)}:"
                     f" pass {' and '.join(needs)}, or --rows with the rows you have folders for")


def main(argv):
  if len(argv) > 1:
    fail(f"unexpected arguments {' '.join(argv[1:])}")
  setup_logging()
  f = flags.FLAGS
  text_init = f["text-init"].value
  if not f.out:
    fail("--out is required: the folder where the rows train and the tables are written")
  if not pathlib.Path(f.data).is_dir():
    fail(f"--data={f.data} does not exist (a dataset folder in HumanML3D's layout; "
         "`make data` writes the synthetic one at data/synthetic)")
  if text_init and not pathlib.Path(text_init).is_dir():
    fail(f"--text-init={text_init} does not exist (a Hugging Face model folder)")
  try:
    rows = parse_rows(f.rows, f.table)
    if f.t5 and f.table != "text_encoders":
      raise ValueError("--t5 is for --table=text_encoders")
    inits = {**({"distilbert": text_init} if text_init else {}), **parse_t5(f.t5)}
    check_request(f.table, f.scale, rows, inits)
    split_file = pathlib.Path(f.data) / f"{f.split}.txt"
    if not split_file.is_file():
      raise ValueError(f"--split={f.split}: {split_file} does not exist (the split every row "
                       "is evaluated on)")
    if f.steps < 0:
      raise ValueError(f"--steps must be positive (0 = each config's), got {f.steps}")
    reproduce(f.table, f.data, f.kind, f.out, f.scale, rows, inits, f.steps, f.split)
  except ValueError as e:
    fail(str(e))
  except subprocess.CalledProcessError as e:
    fail(f"a stage stopped (exit status {e.returncode}); its message is above. Fix what it "
         "names and rerun the same command: finished rows and stages are kept, an "
         "interrupted stage resumes from its last checkpoint.", code=1)


if __name__ == "__main__":
  _define_flags()
  run(main)
