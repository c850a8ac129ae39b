"""Every command refuses a mistyped flag or config field in one line, with exit code 2, before
any work: the line names what was typed and the closest existing name."""
import subprocess
import sys

import pytest

from input_pipeline import command_line

MAIN = ["lexmo_jax.main", "--config=configs/lexmlm.py:runlocal", "--workdir={tmp}/run"]
CASES = [
    (MAIN + ["--config.total_stepz=3"], "--config.total_steps"),
    (MAIN + ["--config.data.max_length=400"], "--config.data.max_text_length"),
    (MAIN + ["--config.optim.lr_scale.txet=2"], "--config.optim.lr_scale.text"),
    (MAIN + ["--config.total_steps=many"], "--config.total_steps=many"),
    (MAIN + ["--workdri={tmp}/run"], "--workdir"),
    (["lexmo_jax.main", "--config=configs/lexmlm.py:runlocl", "--workdir={tmp}/run"],
     "--config: ValueError: unknown config variant 'runlocl'; known: runlocal"),
    (["lexmo_jax.evaluate", "--workdir={tmp}", "--config.total_stepz=3"], "takes no --config"),
    (["lexmo_jax.evaluate", "--workdir={tmp}", "--protocol=all"], "--protocols"),
    (["lexmo_jax.search", "--workdir={tmp}", "--querry=walk"], "--query"),
    (["lexmo_jax.visualize", "--workdri={tmp}"], "--workdir"),
    (["lexmo_jax.export", "--workdir={tmp}", "--outt={tmp}/x"], "--out"),
    (["input_pipeline.check", "{tmp}", "--max-lenght=3"], "--max-length"),
    (["input_pipeline.synthetic", "--out={tmp}/s", "--num-motion=3"], "--num-motions"),
]


@pytest.mark.parametrize("args,named", CASES, ids=[" ".join(c[0][:1] + c[0][-1:]) for c in CASES])
def test_a_typo_is_refused_in_one_line(args, named, tmp_path):
  argv = [a.format(tmp=tmp_path) for a in args]
  run = subprocess.run([sys.executable, "-m"] + argv, capture_output=True, text=True,
                       timeout=120)
  lines = [l for l in run.stderr.splitlines() if l.strip() and not l.startswith(("I0000",
                                                                                "WARNING: All"))]
  assert run.returncode == 2, run.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
  assert named in lines[0], lines[0]
  assert "Traceback" not in run.stderr
  # Nothing was started: no workdir, no dataset.
  assert not (tmp_path / "run").exists() and not (tmp_path / "s").exists()


def test_closest():
  assert command_line.closest("total_stepz", ["total_steps", "seed"]) == "total_steps"
  assert command_line.closest("zzz", ["total_steps"]) is None
