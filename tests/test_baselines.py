"""The paper's baselines: dense MotionPatches and TMR, their lexical variants (†), TMR's
negative filtering, the ACTOR blocks, their evaluation, and the command that trains the
rows and prints the table."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, read_metrics, tiny_config, train_on_one_device

BASELINES = {
    "motionpatches": "baselines.motionpatches",
    "tmr": "baselines.tmr",
    "tmr_lexical": "baselines.tmr_lexical",
    "motionpatches_lexical": "baselines.motionpatches_lexical",
}
# TMR's total is mostly its reconstruction, which learns more slowly than the contrastive
# terms and is noisy over batches of eight motions of random lengths: it trains longer.
STEPS = {"motionpatches": 40, "tmr": 120, "tmr_lexical": 40, "motionpatches_lexical": 40}


def _tiny_baseline(name, root):
  c = tiny_config(BASELINES[name], root, total_steps=STEPS[name],
                  checkpoint_every=STEPS[name], log_every=2)
  if "tmr" in c:
    # A tiny random text tower stands in for the frozen pre-trained one (the test is of the
    # steps, not of the features).
    c.text.init = ""
    c.text.model_type, c.text.type_vocab_size = "distilbert", 0
    c.tmr.latent_dim, c.tmr.num_layers, c.tmr.num_heads, c.tmr.mlp_dim = 32, 1, 2, 64
  if name == "motionpatches":
    c.motionpatches.projection_dim = 32
  return c


@pytest.fixture(scope="module")
def baseline_dirs(synthetic_root, tmp_path_factory):
  root = tmp_path_factory.mktemp("baselines")
  dirs = {}
  for name in BASELINES:
    dirs[name] = root / name
    train_on_one_device(_tiny_baseline(name, synthetic_root), dirs[name])
  return dirs


@pytest.mark.parametrize("name,term", [("motionpatches", "contrastive"), ("tmr", "loss"),
                                       ("tmr", "contrastive"), ("tmr_lexical", "contrastive"),
                                       ("motionpatches_lexical", "contrastive")])
def test_each_baseline_learns(baseline_dirs, name, term):
  values = [m[term] for m in read_metrics(baseline_dirs[name]) if term in m]
  assert len(values) == STEPS[name] // 2 and all(np.isfinite(values))
  k = len(values) // 5
  assert np.mean(values[-k:]) < 0.9 * np.mean(values[:k]), (name, term, values)


def test_tmr_keeps_its_text_encoder_frozen(baseline_dirs, synthetic_root):
  from lexmo_jax import retrieval_encoders
  from lexmo_jax.train import data as data_lib
  from lexmo_jax.train.compile_report import placeholder_constants
  from lexmo_jax.train.trainer import build_trainer
  config = _tiny_baseline("tmr", synthetic_root)
  constants = {**placeholder_constants(data_lib.load_tokenizer(config)),
               "caption_sentences": np.zeros((1, 384), np.float32)}
  trainer = build_trainer(config, constants, jax.devices()[:1])
  fresh = jax.device_get(trainer.init_state(config.seed).params)
  trained = retrieval_encoders.load(baseline_dirs["tmr"]).params
  for a, b in zip(jax.tree.leaves(fresh["text"]), jax.tree.leaves(trained["text"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  moved = [float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(
      jax.tree.leaves(fresh["motion_actor"]), jax.tree.leaves(trained["motion_actor"]))]
  assert max(moved) > 0


@pytest.mark.parametrize("name,representation,width", [
    ("motionpatches", "dense", 32), ("tmr", "dense", 32), ("tmr_lexical", "lexical", 30522),
    ("motionpatches_lexical", "lexical", 30522)])
def test_every_row_is_evaluated_by_the_same_protocols(baseline_dirs, name, representation,
                                                      width, tmp_path, capsys):
  from lexmo_jax import evaluate, retrieval_encoders
  encoder = retrieval_encoders.load(baseline_dirs[name])
  assert getattr(encoder, "representation", "lexical") == representation
  out = tmp_path / "retrieval.json"
  results = evaluate.evaluate(str(baseline_dirs[name]), split="train",
                              protocols=("all", "small_batches"), out=str(out))
  assert set(results) == {"all", "small_batches"}
  assert json.loads(out.read_text()) == results
  for protocol in results.values():
    assert 0 <= protocol["t2m/R@1"] <= protocol["t2m/R@10"] <= 100
  from lexmo_jax.train import data as data_lib
  split = data_lib.load_split(encoder.config, "train")
  vectors = encoder.encode_eval_batches(encoder.eval_batches(split.pairs[:5], split.mean,
                                                             split.std))
  assert vectors["text"].shape == (5, width) and vectors["motion"].shape == (5, width)
  if representation == "lexical":
    assert (vectors["text"] >= 0).all() and (vectors["motion"] >= 0).all()
  assert "t2m" in capsys.readouterr().out
  if name != "motionpatches_lexical":  # a baseline has one representation, its own
    with pytest.raises(ValueError, match="has one representation, its own vectors"):
      evaluate.evaluate(str(baseline_dirs[name]), split="train", protocols=("all",),
                        out=str(out), options=evaluate.EvalOptions(representations=("dense",)))


def test_negative_filtering_masks_exactly_the_pairs_above_the_threshold():
  from lexmo_jax import losses
  rng = np.random.default_rng(0)
  sentences = rng.normal(size=(12, 16)).astype(np.float32)
  sentences[3] = sentences[7] + 0.05 * rng.normal(size=16)  # two near-identical captions
  sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
  threshold = 0.8
  mask = np.asarray(losses.similar_caption_mask(jnp.asarray(sentences), threshold))
  cosine = sentences @ sentences.T
  for i in range(12):
    for j in range(12):
      assert mask[i, j] == (i != j and cosine[i, j] > 2 * threshold - 1), (i, j)
  assert mask[3, 7] and mask[7, 3]

  # Filtered InfoNCE: the masked negatives are gone from both directions' softmax.
  x = rng.normal(size=(12, 8)).astype(np.float32)
  y = rng.normal(size=(12, 8)).astype(np.float32)
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  y /= np.linalg.norm(y, axis=1, keepdims=True)
  value, _ = losses.info_nce(jnp.asarray(x), jnp.asarray(y), 10.0, jnp.asarray(mask))
  logits = 10.0 * x @ y.T

  def direction(l):
    out = []
    for i in range(12):
      keep = [j for j in range(12) if not mask[i, j]]
      out.append(-(l[i, i] - np.log(np.exp(l[i, keep]).sum())))
    return np.mean(out)
  np.testing.assert_allclose(float(value), (direction(logits) + direction(logits.T)) / 2,
                             rtol=1e-5)


def test_gaussian_kl_and_smooth_l1_match_their_formulas():
  from lexmo_jax import losses
  rng = np.random.default_rng(1)
  mq, lq, mp, lp = (rng.normal(size=(3, 4)) for _ in range(4))
  expected = np.mean(0.5 * (np.exp(lq - lp) + (mp - mq) ** 2 / np.exp(lp) - 1 - (lq - lp)))
  np.testing.assert_allclose(float(losses.gaussian_kl((mq, lq), (mp, lp))), expected, rtol=1e-5)
  pred, target = rng.normal(size=(2, 5, 3)) * 2, rng.normal(size=(2, 5, 3))
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
  d = np.abs(pred - target)
  per = np.where(d < 1, 0.5 * d ** 2, d - 0.5).mean(-1)
  np.testing.assert_allclose(float(losses.masked_smooth_l1(pred, target, mask)),
                             per[mask].mean(), rtol=1e-5)


def test_actor_blocks():
  from lexmo_jax.models.actor import ActorDecoder, ActorEncoder, sinusoidal_positions
  table = sinusoidal_positions(7, 6)
  t, i = 5, 2
  np.testing.assert_allclose(table[t, 2 * i], np.sin(t / 10000 ** (2 * i / 6)), rtol=1e-5)
  np.testing.assert_allclose(table[t, 2 * i + 1], np.cos(t / 10000 ** (2 * i / 6)), rtol=1e-5)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 5)), jnp.float32)
  mask = jnp.asarray(np.arange(9)[None] < np.array([[9], [4]]))
  encoder = ActorEncoder(latent_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
  params = encoder.init(jax.random.key(0), x, mask)
  h, full_mask = encoder.apply(params, x, mask)
  assert h.shape == (2, 11, 16) and full_mask.shape == (2, 11) and bool(full_mask[:, :2].all())
  # Padded frames change nothing.
  h2, _ = encoder.apply(params, jnp.where(mask[..., None], x, 99.0), mask)
  np.testing.assert_allclose(np.asarray(h[:, :2]), np.asarray(h2[:, :2]), atol=1e-5)
  decoder = ActorDecoder(feature_dim=5, latent_dim=16, num_layers=1, num_heads=2, mlp_dim=32)
  dparams = decoder.init(jax.random.key(1), h[:, 0], mask)
  out = decoder.apply(dparams, h[:, 0], mask)
  assert out.shape == (2, 9, 5) and not np.asarray(out)[1, 4:].any()


def test_runlocal_tmr_reads_the_packaged_minilm():
  from configs.baselines import tmr
  from lexmo_jax.config_validation import validate
  from lexmo_jax.evaluation.sentence_encoder import default_model_path
  c = tmr.get_config("runlocal")
  assert c.text.init == str(default_model_path())
  assert (c.text.model_type, c.text.hidden_size, c.text.type_vocab_size) == ("bert", 384, 2)
  validate(c, 1)
  c.text.init = ""
  from lexmo_jax.config_validation import ConfigError
  with pytest.raises(ConfigError, match="frozen pre-trained text encoder"):
    validate(c, 1)


def test_recipes_are_the_papers():
  from configs.baselines import motionpatches, motionpatches_lexical, tmr, tmr_lexical
  mp = motionpatches.get_config()
  assert (mp.loss.temperature, mp.motionpatches.projection_dim, mp.data.global_batch_size,
          mp.optim.learning_rate, mp.optim.lr_scale.text, mp.optim.weight_decay) == (
              0.07, 256, 128, 1e-4, 0.1, 0.0)
  assert motionpatches.get_config("kitml").optim.learning_rate == 1e-5
  t = tmr.get_config()
  assert (t.loss.recons_weight, t.loss.kl_weight, t.loss.latent_weight,
          t.loss.contrastive_weight, t.loss.temperature, t.loss.threshold_selfsim) == (
              1.0, 1e-5, 1e-5, 0.1, 0.1, 0.8)
  assert (t.tmr.latent_dim, t.tmr.num_layers, t.tmr.num_heads, t.tmr.mlp_dim,
          t.data.global_batch_size, t.optim.learning_rate) == (256, 6, 4, 1024, 32, 1e-4)
  assert tmr_lexical.get_config().tmr.lexical
  lex = motionpatches_lexical.get_config()
  assert lex.phase == "lexcmlp" and lex.init_from == ""
  assert (lex.loss.text_self_prediction_weight, lex.loss.motion_bag_of_words_weight,
          lex.loss.off_caption_weight) == (0.0, 0.0, 0.0)


def _reproduce(*args):
  return subprocess.run([sys.executable, "-m", "lexmo_jax.reproduce", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=900)


def test_reproduce_trains_evaluates_skips_and_resumes(synthetic_root, tmp_path):
  out = tmp_path / "repro"
  args = ["--table=retrieval", f"--data={synthetic_root}", f"--out={out}", "--steps=2",
          "--rows=motionpatches", "--split=train"]
  first = _reproduce(*args)
  assert first.returncode == 0, first.stderr[-3000:]
  results = json.loads((out / "tables" / "retrieval.json").read_text())
  assert list(results["rows"]) == ["MotionPatches"]
  for row in results["rows"].values():
    assert {"all", "small_batches"} <= set(row) and "t2m/R@1" in row["all"]
  table = (out / "tables" / "retrieval.md").read_text()
  assert "Table 1" in table and "| MotionPatches |" in table and "Published" in table
  assert "| lexical (four phases) | 11.80 |" in table
  assert "Table 1" in first.stdout

  second = _reproduce(*args)
  assert second.returncode == 0
  assert second.stdout.count("done before") == 1
  assert json.loads((out / "tables" / "retrieval.json").read_text())["rows"] == results["rows"]

  # A killed row resumes: its finished stage is not trained again.
  results["rows"].pop("MotionPatches")
  (out / "tables" / "retrieval.json").write_text(json.dumps(results))
  third = _reproduce(*args)
  assert third.returncode == 0, third.stderr[-3000:]
  assert "stage 1/1 motionpatches finished before" in third.stdout

  # Other settings on the same folder would reuse rows and stages trained otherwise.
  other = _reproduce(*args[:-1], "--split=test", "--steps=3")
  assert other.returncode == 2 and "holds rows trained with other settings" in other.stderr
  assert "steps=2 there, 3 now" in other.stderr and "Traceback" not in other.stderr


def test_reproduce_refuses_bad_requests(tmp_path, synthetic_root):
  bad = _reproduce("--table=retrieval", f"--data={synthetic_root}", f"--out={tmp_path}",
                   "--rows=CLIP")
  assert bad.returncode == 2 and "unknown row CLIP" in bad.stderr
  assert "Traceback" not in bad.stderr
  missing = _reproduce("--table=retrieval", "--data=/no/such/data", f"--out={tmp_path}")
  assert missing.returncode == 2 and "/no/such/data does not exist" in missing.stderr
  full = _reproduce("--table=retrieval", f"--data={synthetic_root}", f"--out={tmp_path}",
                    "--scale=full", "--rows=motionpatches")
  assert full.returncode == 2 and "--text-init" in full.stderr
  tiny = _reproduce("--table=retrieval", f"--data={synthetic_root}", f"--out={tmp_path}",
                    f"--text-init={tmp_path}")
  assert tiny.returncode == 2 and "--text-init and --t5 are for --scale full" in tiny.stderr
  split = _reproduce("--table=retrieval", f"--data={synthetic_root}", f"--out={tmp_path}",
                     "--split=bogus")
  assert split.returncode == 2 and "bogus.txt does not exist" in split.stderr
  assert not (tmp_path / "tables").exists()


def test_text_encoder_table_rows_and_folders(tmp_path):
  from lexmo_jax import reproduce
  assert reproduce.parse_rows("", "text_encoders") == (
      "DistilBERT", "T5-Small", "T5-Base", "T5-Large", "T5-XL", "T5-XXL")
  assert reproduce.parse_rows("t5-xxl, DistilBERT", "text_encoders") == ("T5-XXL", "DistilBERT")
  with pytest.raises(ValueError, match="unknown row TMR of the text_encoders table"):
    reproduce.parse_rows("TMR", "text_encoders")
  with pytest.raises(ValueError, match="not SIZE=DIR"):
    reproduce.parse_t5("huge=/x")
  with pytest.raises(ValueError, match="/no/such does not exist"):
    reproduce.parse_t5("small=/no/such")
  inits = {"distilbert": str(tmp_path), **reproduce.parse_t5(f"small={tmp_path}")}
  assert inits["t5-small"] == str(tmp_path)
  with pytest.raises(ValueError, match="no folder for the rows t5-base, t5-large.*--t5=base=DIR"):
    reproduce.check_request("text_encoders", "full",
                            reproduce.parse_rows("", "text_encoders"), inits)
  reproduce.check_request("text_encoders", "full", ("DistilBERT", "T5-Small"), inits)
  # T5 rows alone need no DistilBERT folder.
  reproduce.check_request("text_encoders", "full", ("T5-Small",), {"t5-small": str(tmp_path)})
  with pytest.raises(ValueError, match="names no row"):
    reproduce.parse_rows(",", "text_encoders")
  with pytest.raises(ValueError, match="are for --scale full"):
    reproduce.check_request("text_encoders", "runlocal", ("T5-Small",), inits)
  row = reproduce.TEXT_ENCODER_ROWS[1]
  command = reproduce.stage_command(row, row.stages[0], tmp_path, "data", "runlocal",
                                    inits["t5-small"])
  assert command[3].endswith("configs/baselines/motionpatches.py:runlocal,text=t5-small")
  assert f"--config.text.init={tmp_path}" in command
