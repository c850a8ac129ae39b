"""README's commands and code run as written (on the tiny fixtures in place of the demo): the
Python API from another folder without PYTHONPATH, the large-library index example, the TFDS
builder as a module, the package's wheel, and refusals README promises."""
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def readme_block(marker: str) -> str:
  """The code block that follows `<!-- marker -->` in README.md."""
  match = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", README, re.S)
  assert match, f"README.md has no python block after <!-- {marker} -->"
  return match.group(1)


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
  return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                        text=True, timeout=600)


def test_the_api_example_runs_from_any_folder_without_warnings(chain, synthetic_root, tmp_path):
  code = readme_block("readme-api-example")
  motion = sorted((synthetic_root / "new_joint_vecs").glob("*.npy"))[0]
  code = code.replace("runs/demo/lexcmlp", str(chain["lexcmlp"])).replace(
      "data/synthetic/new_joint_vecs/000003.npy", str(motion))
  result = run_python(code, tmp_path)
  assert result.returncode == 0, result.stderr
  assert re.match(r"\[\('[^']+', [\d.]+\)", result.stdout)  # the description, then (2, 1) cosines
  assert len(re.findall(r"\[\[?\s*-?[\d.]+(e-?\d+)?\]", result.stdout)) == 2
  assert result.stderr == ""  # no absl/Orbax warnings, no TensorFlow start-up lines


def test_the_library_index_example_runs(chain, synthetic_root, tmp_path):
  code = readme_block("readme-index-example")
  code = code.replace("runs/demo/lexcmlp", str(chain["lexcmlp"])).replace(
      "data/synthetic/new_joint_vecs", str(synthetic_root / "new_joint_vecs")).replace(
          "[:-100]", "[:30]").replace("[-100:]", "[30:40]")
  result = run_python(code, tmp_path)
  assert result.returncode == 0, result.stderr
  assert (tmp_path / "library_index" / "index.json").is_file()
  assert re.match(r"\['\S+'( '\S+'){9}\] \[[\d.]+", result.stdout.replace("\n", ""))


def test_the_device_top_k_example_runs(chain, synthetic_root, tmp_path):
  code = readme_block("readme-device-example")
  code = code.replace("runs/demo/lexcmlp", str(chain["lexcmlp"])).replace(
      "data/synthetic/new_joint_vecs", str(synthetic_root / "new_joint_vecs"))
  result = run_python(code, tmp_path)  # on the tests' eight fake CPU devices
  assert result.returncode == 0, result.stderr
  assert re.match(r"dense 8 \['\S+'( '\S+'){4}\] \[[\d.]+", result.stdout.replace("\n", ""))


def test_the_tfds_builder_runs_as_a_module(synthetic_root, tmp_path):
  assert "python -m input_pipeline.tfds_builder data/HumanML3D" in README
  result = subprocess.run(
      [sys.executable, "-m", "input_pipeline.tfds_builder", str(synthetic_root),
       str(tmp_path / "tfds")], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert re.search(r"prepared lexmo_motion_text/humanml3d/1\.0\.0 under .*: train \d+, "
                   r"val \d+, test \d+", result.stdout)


def test_the_wheel_holds_every_package_and_the_page(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
       "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  wheel = next(tmp_path.glob("lexmo_jax-*.whl"))
  names = set(zipfile.ZipFile(wheel).namelist())
  for needed in ("lexmo_jax/__init__.py", "lexmo_jax/serve/templates/index.html",
                 "lexmo_jax/serve/static/app.js", "input_pipeline/synthetic/clip.py",
                 "input_pipeline/motion/features.py", "configs/lexcmlp.py",
                 "configs/baselines/tmr.py"):
    assert needed in names, needed
  assert not any(n.startswith(("tests/", "bench/", "runs/", "data/")) for n in names)


def test_a_folder_that_is_no_sentence_encoder_is_refused(chain, tmp_path):
  from lexmo_jax.evaluation.sentence_encoder import check_sentence_transformers_folder
  exported = tmp_path / "exported"
  exported.mkdir()
  (exported / "config.json").write_text("{}")
  (exported / "lexical_pooling.json").write_text("{}")
  with pytest.raises(ValueError, match="not a sentence-transformers model .* a lexmo_jax "
                                       "text-encoder export"):
    check_sentence_transformers_folder(exported)
  result = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.evaluate", f"--workdir={chain['lexcmlp']}",
       "--protocols=threshold", f"--sentence-encoder={exported}"], cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: {exported} is not a "
                                                 "sentence-transformers model"), result.stderr
  cls_pooled = tmp_path / "cls"
  (cls_pooled / "1_Pooling").mkdir(parents=True)
  (cls_pooled / "modules.json").write_text(
      '[{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]')
  (cls_pooled / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
  with pytest.raises(ValueError, match="pools by cls_token"):
    check_sentence_transformers_folder(cls_pooled)


def test_every_module_script_and_flag_readme_names_exists():
  import importlib.util
  modules = set(re.findall(r"-m ((?:lexmo_jax|input_pipeline)[\w.]*)", README))
  assert {"lexmo_jax.main", "lexmo_jax.serve", "input_pipeline.synthetic"} <= modules
  for module in sorted(modules):
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"README runs `python -m {module}`, which does not exist"
    if spec.submodule_search_locations:  # a package runs its __main__
      assert importlib.util.find_spec(f"{module}.__main__") is not None, module
  for script in sorted(set(re.findall(r"\b((?:bench|launch)/\w+\.(?:py|sh))", README))):
    assert (ROOT / script).is_file(), f"README names {script}, which does not exist"
  for config in sorted(set(re.findall(r"\bconfigs/[\w/]+\.py", README))):
    assert (ROOT / config).is_file(), f"README names {config}, which does not exist"
