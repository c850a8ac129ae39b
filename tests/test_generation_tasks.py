"""The generation tasks in the one loop: the conditioning projection, the VQ-VAE, the
generator (lexical and sentence-encoder conditions), T2M's evaluator, and Table 4's report."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, read_metrics, tiny_config, train_on_one_device

STEPS = 30


def _tiny_generation(config):
  v = config.vqvae
  v.width, v.depth, v.codebook_size, v.code_dim = 16, 1, 32, 16
  return config


@pytest.fixture(scope="module")
def generation_dirs(chain, synthetic_root, tmp_path_factory):
  """Workdirs of every generation task, trained STEPS each."""
  root = tmp_path_factory.mktemp("generation")
  dirs = {name: root / name for name in ("conditioning", "vqvae", "generator_lexical",
                                         "generator_sentence", "evaluator")}
  common = dict(total_steps=STEPS, checkpoint_every=STEPS, log_every=5)
  train_on_one_device(tiny_config("conditioning", synthetic_root, init_from=str(chain["lexcmlp"]),
                                  **common), dirs["conditioning"])
  train_on_one_device(_tiny_generation(tiny_config("vqvae", synthetic_root, **common)),
                      dirs["vqvae"])
  for condition, path in (("lexical", str(dirs["conditioning"])), ("sentence", "")):
    config = _tiny_generation(tiny_config(
        "generator", synthetic_root, init_from=str(dirs["vqvae"]), **common,
        generator__condition=condition, generator__text_encoder=path))
    g = config.generator
    g.width, g.num_layers, g.num_heads, g.mlp_dim = 32, 1, 2, 64
    train_on_one_device(config, dirs[f"generator_{condition}"])
  config = tiny_config("t2m_evaluator", synthetic_root, **common)
  e = config.evaluator
  e.text_hidden, e.motion_hidden, e.movement_hidden, e.embedding_dim = 16, 32, 16, 16
  train_on_one_device(config, dirs["evaluator"])
  return dirs


@pytest.mark.parametrize("name,term", [("conditioning", "info_nce"), ("vqvae", "loss"),
                                       ("generator_lexical", "code_cross_entropy"),
                                       ("generator_sentence", "code_cross_entropy"),
                                       ("evaluator", "loss")])
def test_each_task_learns(generation_dirs, name, term):
  values = [m[term] for m in read_metrics(generation_dirs[name])]
  assert np.mean(values[-2:]) < np.mean(values[:2]), (name, values)


def test_conditioner_features_and_the_frozen_text_encoder(generation_dirs, chain):
  from lexmo_jax.conditioning import TextConditioner
  from lexmo_jax.inference import LexicalModel
  conditioner = TextConditioner.from_workdir(generation_dirs["conditioning"])
  texts = ["a person jumps twice", "someone walks forward and waves"]
  f = conditioner.encode(texts)
  d, length = conditioner.width, conditioner.max_length
  assert f.pooled.shape == (2, d) and f.tokens.shape == (2, length, d)
  assert f.mask.shape == (2, length) and f.mask.dtype == bool
  assert f.projected.shape == (2, 512) and conditioner.projection_dim == 512
  np.testing.assert_allclose(np.linalg.norm(f.projected, axis=1), 1.0, atol=1e-5)
  # The pooled state is the mean of the token states over the real tokens.
  mean = f.tokens.sum(1) / f.mask.sum(1, keepdims=True)
  np.testing.assert_allclose(f.pooled, mean, atol=1e-5)
  # Only the projections trained: the lexical vectors are the pre-trained workdir's.
  pretrained = LexicalModel.from_workdir(chain["lexcmlp"])
  np.testing.assert_allclose(f.lexical, pretrained.encode_texts(texts), atol=1e-5)


def test_a_workdir_without_projection_serves_all_but_projected(chain):
  from lexmo_jax.conditioning import TextConditioner
  conditioner = TextConditioner.from_workdir(chain["lexcmlp"])
  assert conditioner.encode(["a person runs"]).projected is None
  with pytest.raises(ValueError, match="configs/conditioning.py"):
    conditioner.encode_projected(["a person runs"])


def test_bad_prompts_get_clear_messages(chain, capsys):
  from lexmo_jax.conditioning import TextConditioner
  conditioner = TextConditioner.from_workdir(chain["lexcmlp"])
  with pytest.raises(ValueError, match="text 1 is empty"):
    conditioner.encode(["a person runs", "  "])
  # 21 word pieces fit beside [CLS] and [SEP] in the test's 24 with "zebra"; not "crossing".
  conditioner.encode(["a person walks " * 7 + "zebra crossing"])
  err = capsys.readouterr().err
  assert "was cut" in err and 'ignored: "crossing"' in err


def test_generated_motions_and_the_frozen_vqvae(generation_dirs):
  import jax
  from lexmo_jax.inference import open_workdir, restore_params
  from lexmo_jax.models import generation
  from lexmo_jax.models.generation import GenerationModel
  from lexmo_jax.text_to_motion import TextToMotion
  t2m = TextToMotion.from_workdir(generation_dirs["generator_lexical"])
  first = t2m.generate(["a person jumps twice", "someone kicks"], seed=3)
  again = t2m.generate(["a person jumps twice", "someone kicks"], seed=3)
  for a, b in zip(first, again):
    assert a.shape[1] == 263 and len(a) % 4 == 0 and 4 <= len(a) <= 196
    np.testing.assert_array_equal(a, b)
  config, ckpt, step, _ = open_workdir(generation_dirs["vqvae"], ("vqvae",))
  vq = restore_params(ckpt, step, GenerationModel(generation.model_config(config)), config)
  for x, y in zip(jax.tree.leaves(vq["vqvae"]), jax.tree.leaves(t2m.params["vqvae"])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _run(*args):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_generate_command_writes_features_joints_and_gif(generation_dirs, tmp_path):
  out = tmp_path / "render"
  result = _run("-m", "lexmo_jax.generate", f"--workdir={generation_dirs['generator_sentence']}",
                "--text", "a person jumps twice", f"--render={out}")
  assert result.returncode == 0, result.stderr
  features = np.load(out / "00_a_person_jumps_twice.npy")
  joints = np.load(out / "00_a_person_jumps_twice_joints.npy")
  assert features.shape[1] == 263 and joints.shape == (len(features), 22, 3)
  assert (out / "00_a_person_jumps_twice.gif").stat().st_size > 0
  bad = _run("-m", "lexmo_jax.generate", f"--workdir={generation_dirs['generator_sentence']}",
             "--text", "")
  assert bad.returncode != 0 and "error: text 0 is empty" in bad.stderr
  assert "Traceback" not in bad.stderr


def test_evaluate_generation_prints_table_4_with_intervals(generation_dirs, tmp_path):
  out = tmp_path / "generation.json"
  result = _run("-m", "lexmo_jax.evaluate", "--task=generation",
                f"--workdir={generation_dirs['vqvae'].parent}", "--split=train", "--repeats=2",
                "--mm-items=4", "--mm-repeats=10", f"--out={out}")
  assert result.returncode == 0, result.stderr
  record = json.loads(out.read_text())
  names = list(record["rows"])
  assert names[0] == "Real motion" and len(names) == 3
  assert any("lexical" in n for n in names) and any("sentence" in n for n in names)
  for name in names[1:]:
    row = record["rows"][name]
    assert set(row) == {"top1", "top2", "top3", "fid", "mm_dist", "diversity", "multimodality"}
    assert all(np.isfinite(v["mean"]) and v["interval95"] >= 0 for v in row.values())
    assert 0 <= row["top1"]["mean"] <= row["top2"]["mean"] <= row["top3"]["mean"] <= 1
    assert len(record["per_repeat"][name]["fid"]) == 2
  assert "R-Precision" in result.stdout and "(published" in result.stdout


def test_generation_refuses_a_missing_evaluator(generation_dirs, tmp_path):
  result = _run("-m", "lexmo_jax.evaluate", "--task=generation",
                f"--workdir={generation_dirs['generator_lexical']}",
                f"--evaluator={tmp_path}")
  assert result.returncode != 0 and "finest.tar" in result.stderr
  assert "Traceback" not in result.stderr


def test_batch_caption_indexes_the_split_captions(synthetic_root):
  from input_pipeline import humanml3d, tokenizer
  from input_pipeline.pipeline import TrainData, make_eval_batches
  pairs, _ = humanml3d.load_split(synthetic_root, "train", "humanml3d")
  mean, std = humanml3d.load_normalisation(synthetic_root, "humanml3d")
  tok = tokenizer.load_tokenizer("")
  captions = humanml3d.all_captions(pairs)
  encoded = tok.encode(captions, 24)["input_ids"]
  data = TrainData(pairs, mean, std, tok, global_batch_size=8, max_motion_length=196,
                   max_text_length=24, seed=0)
  for step in range(3):
    batch = data.batch(step)
    np.testing.assert_array_equal(batch["input_ids"], encoded[batch["caption"]])
    for i, c in zip(batch["index"], batch["caption"]):
      assert captions[c] in pairs[i].captions
  evals = make_eval_batches(pairs, mean, std, tok, batch_size=8, max_motion_length=196,
                            max_text_length=24, caption_index=1)
  batch = evals.batch(0)
  np.testing.assert_array_equal(batch["input_ids"], encoded[batch["caption"]])


def test_conditioner_from_the_export_equals_the_workdir(generation_dirs, tmp_path):
  from lexmo_jax.conditioning import TextConditioner
  from lexmo_jax.export import export
  folder = export(str(generation_dirs["conditioning"]), str(tmp_path / "exported"))
  texts = ["a person jumps twice", "someone walks forward and waves"]
  ours = TextConditioner.from_workdir(generation_dirs["conditioning"]).encode(texts)
  theirs = TextConditioner.from_exported(folder).encode(texts)
  for name in ("pooled", "tokens", "lexical", "projected"):
    np.testing.assert_allclose(getattr(theirs, name), getattr(ours, name), atol=1e-5,
                               err_msg=name)
  np.testing.assert_array_equal(theirs.mask, ours.mask)


@pytest.mark.parametrize("phase,field,value,message", [
    ("generator", "generator.condition", "clip", "is not one of lexical, sentence"),
    ("generator", "generator.text_encoder", "", "reads a conditioning workdir"),
    ("generator", "generator.guidance_scale", -1.0, "must be non-negative"),
    ("generator", "init_from", "", "starts from a finished vqvae workdir"),
    ("vqvae", "vqvae.down_t", 3, "is not a multiple of 2**vqvae.down_t"),
    ("t2m_evaluator", "evaluator.word_vectors", "/no/such/glove.txt", "does not exist"),
    ("conditioning", "init_from", "", "starts from a finished lexcmlp"),
])
def test_bad_task_fields_are_refused_at_start(synthetic_root, tmp_path, phase, field, value,
                                              message):
  from lexmo_jax.config_validation import ConfigError, validate
  overrides = {"init_from": str(tmp_path)}
  if phase == "generator":
    overrides.update(generator__condition="sentence", generator__text_encoder="")
    if field == "generator.text_encoder":
      overrides.update(generator__condition="lexical")
  overrides[field.replace(".", "__")] = value
  config = tiny_config(phase, synthetic_root, **overrides)
  with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
    validate(config, 1)


def test_a_text_encoder_without_projection_is_refused_at_start(chain, synthetic_root, tmp_path):
  """A pre-training workdir, or a folder that is no workdir, as the lexical condition: one
  line at start, before any caption is encoded."""
  from lexmo_jax.config_validation import ConfigError, validate
  for path, message in ((chain["lexcmlp"], "'lexcmlp' workdir without a projection"),
                        (tmp_path, "neither an export nor a finished workdir")):
    config = tiny_config("generator", synthetic_root, init_from=str(tmp_path),
                         generator__condition="lexical", generator__text_encoder=str(path))
    with pytest.raises(ConfigError, match=message):
      validate(config, 1)


def test_init_from_of_another_phase_is_refused_before_the_data(chain, synthetic_root, tmp_path,
                                                               monkeypatch):
  from lexmo_jax.train import data as data_lib
  from lexmo_jax.train.handoff import HandoffError
  monkeypatch.setattr(data_lib, "phase_constants", lambda *a, **k: pytest.fail("computed"))
  config = tiny_config("generator", synthetic_root, init_from=str(chain["lexcmlp"]),
                       generator__condition="sentence", generator__text_encoder="")
  with pytest.raises(HandoffError, match="is a 'lexcmlp' workdir; generator starts from"):
    train_on_one_device(config, tmp_path / "generator")
