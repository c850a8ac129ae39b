"""T2M's evaluator in JAX against PyTorch modules written as T2M's `networks/modules.py`."""
from __future__ import annotations

import functools
import pathlib
import pickle
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lexmo_jax.models import t2m_evaluator as t2m

torch = pytest.importorskip("torch")
from torch import nn as tnn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

SHARED_TEXTS = (pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" /
                "humanml3d_sample" / "texts")
# HumanML3D's texts/000000.txt, as quoted in its README: used when the sample has no texts/.
HUMANML3D_000000 = """\
a man kicks something or someone with his left leg.#a/DET man/NOUN kick/VERB something/PRON or/CCONJ someone/PRON with/ADP his/DET left/ADJ leg/NOUN#0.0#0.0
the standing person kicks with their left foot before going back to their original stance.#the/DET stand/VERB person/NOUN kick/VERB with/ADP their/DET left/ADJ foot/NOUN before/ADP go/VERB back/ADV to/ADP their/DET original/ADJ stance/NOUN#0.0#0.0
a man kicks with something or someone with his left leg.#a/DET man/NOUN kick/VERB with/ADP something/PRON or/CCONJ someone/PRON with/ADP his/DET left/ADJ leg/NOUN#0.0#0.0
he is flying kick with his left leg#he/PRON is/AUX fly/VERB kick/NOUN with/ADP his/DET left/ADJ leg/NOUN#0.0#0.0
"""


def caption_lines() -> list[str]:
  files = sorted(SHARED_TEXTS.glob("*.txt")) if SHARED_TEXTS.is_dir() else []
  lines = [l for f in files for l in f.read_text(encoding="utf-8").splitlines() if l.strip()]
  return lines or HUMANML3D_000000.splitlines()


def tagged_of(line: str) -> str:
  return line.strip().split("#")[1]


# ----- T2M's PyTorch modules (networks/modules.py), as the reference -----------------------------

class TorchMovementConvEncoder(tnn.Module):

  def __init__(self, input_size, hidden_size, output_size):
    super().__init__()
    self.main = tnn.Sequential(
        tnn.Conv1d(input_size, hidden_size, 4, 2, 1), tnn.Dropout(0.2, inplace=True),
        tnn.LeakyReLU(0.2, inplace=True),
        tnn.Conv1d(hidden_size, output_size, 4, 2, 1), tnn.Dropout(0.2, inplace=True),
        tnn.LeakyReLU(0.2, inplace=True))
    self.out_net = tnn.Linear(output_size, output_size)

  def forward(self, inputs):
    return self.out_net(self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1))


class TorchTextEncoderBiGRUCo(tnn.Module):

  def __init__(self, word_size, pos_size, hidden_size, output_size):
    super().__init__()
    self.pos_emb = tnn.Linear(pos_size, word_size)
    self.input_emb = tnn.Linear(word_size, hidden_size)
    self.gru = tnn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
    self.output_net = tnn.Sequential(
        tnn.Linear(hidden_size * 2, hidden_size), tnn.LayerNorm(hidden_size),
        tnn.LeakyReLU(0.2, inplace=True), tnn.Linear(hidden_size, output_size))
    self.hidden = tnn.Parameter(torch.randn((2, 1, hidden_size), requires_grad=True))

  def forward(self, word_embs, pos_onehot, cap_lens):
    inputs = word_embs + self.pos_emb(pos_onehot)
    input_embs = self.input_emb(inputs)
    hidden = self.hidden.repeat(1, word_embs.shape[0], 1)
    emb = pack_padded_sequence(input_embs, cap_lens.data.tolist(), batch_first=True)
    _, gru_last = self.gru(emb, hidden)
    return self.output_net(torch.cat([gru_last[0], gru_last[1]], dim=-1))


class TorchMotionEncoderBiGRUCo(tnn.Module):

  def __init__(self, input_size, hidden_size, output_size):
    super().__init__()
    self.input_emb = tnn.Linear(input_size, hidden_size)
    self.gru = tnn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
    self.output_net = tnn.Sequential(
        tnn.Linear(hidden_size * 2, hidden_size), tnn.LayerNorm(hidden_size),
        tnn.LeakyReLU(0.2, inplace=True), tnn.Linear(hidden_size, output_size))
    self.hidden = tnn.Parameter(torch.randn((2, 1, hidden_size), requires_grad=True))

  def forward(self, inputs, m_lens):
    input_embs = self.input_emb(inputs)
    hidden = self.hidden.repeat(1, inputs.shape[0], 1)
    emb = pack_padded_sequence(input_embs, m_lens.data.tolist(), batch_first=True)
    _, gru_last = self.gru(emb, hidden)
    return self.output_net(torch.cat([gru_last[0], gru_last[1]], dim=-1))


def torch_contrastive(output1, output2, label, margin):
  """T2M's ContrastiveLoss.forward."""
  d = F.pairwise_distance(output1, output2, keepdim=True)
  return torch.mean((1 - label) * torch.pow(d, 2) +
                    label * torch.pow(torch.clamp(margin - d, min=0.0), 2))


# ----- the official layout: T2M's sizes, random weights ------------------------------------------

FEATURES = 263
FRAMES = 48
TEXT_LENGTHS = np.array([5, 22, 2, 13])  # unsorted: T2M's packing needs them sorted
MOTION_LENGTHS = np.array([21, 48, 8, 36])  # frames; 5, 12, 2, 9 movement steps


@pytest.fixture(scope="module")
def reference():
  """T2M's three modules at its sizes, every weight (biases, LayerNorms too) random."""
  torch.manual_seed(0)
  modules = {
      "text_encoder": TorchTextEncoderBiGRUCo(300, 15, 512, 512),
      "movement_encoder": TorchMovementConvEncoder(FEATURES - 4, 512, 512),
      "motion_encoder": TorchMotionEncoderBiGRUCo(512, 1024, 512),
  }
  with torch.no_grad():
    for module in modules.values():
      module.eval()
      for p in module.parameters():
        p.add_(0.1 * torch.randn_like(p))
  return modules


@pytest.fixture(scope="module")
def batch():
  rng = np.random.default_rng(0)
  b = len(TEXT_LENGTHS)
  table_w300 = rng.normal(0, 0.4, (30, 300)).astype(np.float32)
  word_ids = rng.integers(0, 30, (b, t2m.TEXT_SLOTS)).astype(np.int32)
  pos_ids = rng.integers(0, 15, (b, t2m.TEXT_SLOTS)).astype(np.int32)
  motion = rng.normal(0, 1, (b, FRAMES, FEATURES)).astype(np.float32)
  motion[np.arange(FRAMES)[None, :] >= MOTION_LENGTHS[:, None]] = 0.0  # T2M pads with zeros
  return dict(table=table_w300, word_ids=word_ids, pos_ids=pos_ids, motion=motion)


def torch_embeddings(modules, batch):
  """T2M's EvaluatorModelWrapper order of work, then back to the batch's order."""
  words = torch.from_numpy(batch["table"][batch["word_ids"]])
  pos = F.one_hot(torch.from_numpy(batch["pos_ids"]).long(), 15).float()
  with torch.no_grad():
    by_text = np.argsort(-TEXT_LENGTHS, kind="stable")
    text = modules["text_encoder"](words[by_text], pos[by_text],
                                   torch.from_numpy(TEXT_LENGTHS[by_text]))
    by_motion = np.argsort(-MOTION_LENGTHS, kind="stable")
    motions = torch.from_numpy(batch["motion"])[by_motion]
    movements = modules["movement_encoder"](motions[..., :-4])
    motion = modules["motion_encoder"](movements,
                                       torch.from_numpy(MOTION_LENGTHS[by_motion] // 4))
  text_out, motion_out = np.empty(text.shape, np.float32), np.empty(motion.shape, np.float32)
  text_out[by_text] = text.numpy()
  motion_out[by_motion] = motion.numpy()
  return text_out, motion_out


def finest_tar(modules, path, drop=(), reshape=()):
  state = {name: dict(m.state_dict()) for name, m in modules.items()}
  for part, key in drop:
    del state[part][key]
  for part, key in reshape:
    state[part][key] = state[part][key][..., :-1].clone()
  optimizer = torch.optim.Adam(modules["text_encoder"].parameters(), lr=1e-4)
  state.update(opt_text_encoder=optimizer.state_dict(), epoch=7, iter=1234)
  torch.save(state, path)
  return path


def test_official_checkpoint_matches_pytorch(reference, batch, tmp_path):
  model = t2m.T2MEvaluator(feature_dim=FEATURES)
  params = t2m.load_official_checkpoint(finest_tar(reference, tmp_path / "finest.tar"), model)
  want_text, want_motion = torch_embeddings(reference, batch)

  encode_text = jax.jit(functools.partial(model.apply, method=t2m.T2MEvaluator.encode_text))
  text = encode_text({"params": params}, batch["word_ids"], batch["pos_ids"], TEXT_LENGTHS,
                     batch["table"])
  np.testing.assert_allclose(np.asarray(text), want_text, atol=1e-4, rtol=1e-4)
  # T2M's own inputs: word vectors and POS one-hots.
  text_from_vectors = encode_text({"params": params}, batch["table"][batch["word_ids"]],
                                  np.eye(15, dtype=np.float32)[batch["pos_ids"]], TEXT_LENGTHS)
  np.testing.assert_allclose(np.asarray(text_from_vectors), want_text, atol=1e-4, rtol=1e-4)

  motion = jax.jit(functools.partial(model.apply, method=t2m.T2MEvaluator.encode_motion))(
      {"params": params}, batch["motion"], MOTION_LENGTHS)
  np.testing.assert_allclose(np.asarray(motion), want_motion, atol=1e-4, rtol=1e-4)


def test_checkpoint_errors_name_every_bad_tensor(reference, tmp_path):
  path = finest_tar(reference, tmp_path / "bad.tar",
                    drop=[("text_encoder", "gru.weight_hh_l0_reverse"),
                          ("motion_encoder", "hidden")],
                    reshape=[("movement_encoder", "main.0.weight")])
  with pytest.raises(ValueError) as error:
    t2m.load_official_checkpoint(path, t2m.T2MEvaluator(feature_dim=FEATURES))
  message = str(error.value)
  assert str(path) in message
  assert "missing 'text_encoder.gru.weight_hh_l0_reverse' (expected shape (1536, 512))" \
      in message
  assert "missing 'motion_encoder.hidden'" in message
  assert ("'movement_encoder.main.0.weight' has shape (512, 259, 3), expected (512, 259, 4)"
          in message)

  state = {f"{part}.{k}": v.numpy() for part, m in reference.items()
           for k, v in m.state_dict().items()}
  with pytest.raises(ValueError, match=r"(?s)KIT.*main\.0\.weight' has shape \(512, 259, 4\), "
                     r"expected \(512, 247, 4\)"):
    t2m.load_official(state, t2m.T2MEvaluator(feature_dim=251), source="kit.tar")


def test_checkpoint_without_torch_explains(tmp_path, monkeypatch):
  path = tmp_path / "finest.tar"
  path.write_bytes(b"not read")
  monkeypatch.setitem(sys.modules, "torch", None)
  with pytest.raises(ImportError, match="needs PyTorch"):
    t2m.load_official_checkpoint(path)


# ----- words ---------------------------------------------------------------------------------------

def t2m_lookup(word_to_vector: dict, token: str):
  """T2M's WordVectorizer.__getitem__ (utils/word_vectorizer.py)."""
  word, pos = token.split("/")
  onehot = np.zeros(15)
  if word in word_to_vector:
    vip = next((k for k, v in t2m.VIP_WORDS.items() if word in v), None)
    category = vip if vip is not None else pos
    onehot[t2m.POS_INDEX.get(category, t2m.OTHER)] = 1
    return word_to_vector[word], onehot
  onehot[t2m.OTHER] = 1
  return word_to_vector["unk"], onehot


def write_our_vab(folder: pathlib.Path, words: list[str], seed: int = 0) -> np.ndarray:
  vectors = np.random.default_rng(seed).normal(0, 0.4, (len(words), 300)).astype(np.float32)
  np.save(folder / "our_vab_data.npy", vectors)
  (folder / "our_vab_words.pkl").write_bytes(pickle.dumps(words))
  (folder / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(words)}))
  return vectors


def test_pos_categories_follow_t2m():
  assert t2m.POS_CATEGORIES[:3] == ("VERB", "NOUN", "DET") and len(t2m.POS_CATEGORIES) == 15
  assert t2m.POS_CATEGORIES[9:] == ("Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP",
                                    "OTHER")
  assert t2m.pos_index("kick", "NOUN") == t2m.POS_INDEX["Act_VIP"]
  assert t2m.pos_index("back", "ADV") == t2m.POS_INDEX["Loc_VIP"]
  assert t2m.pos_index("slowly", "ADV") == t2m.POS_INDEX["Desc_VIP"]
  assert t2m.pos_index("chair", "NOUN") == t2m.POS_INDEX["Obj_VIP"]
  assert t2m.pos_index("man", "NOUN") == t2m.POS_INDEX["NOUN"]
  assert t2m.pos_index("or", "CCONJ") == t2m.OTHER


def test_vectorizer_on_humanml3d_captions(tmp_path):
  lines = caption_lines()
  tagged = [tagged_of(l) for l in lines]
  words = sorted({tok.rpartition("/")[0] for t in tagged for tok in t.split()})
  withheld = "someone" if "someone" in words else words[-1]
  vocabulary = ["sos", "eos", "unk"] + [w for w in words if w != withheld]
  vectors = write_our_vab(tmp_path, vocabulary)
  vec = t2m.WordVectorizer.from_t2m_files(tmp_path)
  assert vec.vocabulary == vocabulary and vec.vectors.shape == (len(vocabulary), 300)

  word_ids, pos_ids, lengths = vec.encode_many(tagged)
  assert word_ids.shape == pos_ids.shape == (len(tagged), 22)
  sos, eos, unk = (vec.word_to_id[w] for w in ("sos", "eos", "unk"))
  word_to_vector = dict(zip(vocabulary, vectors))
  for row, t in enumerate(tagged):
    n = len(t.split())
    assert lengths[row] == min(n, 20) + 2
    assert word_ids[row, 0] == sos and word_ids[row, lengths[row] - 1] == eos
    assert (word_ids[row, lengths[row]:] == unk).all()
    assert (pos_ids[row, [0, lengths[row] - 1]] == t2m.OTHER).all()
    for slot, token in enumerate(t2m.caption_tokens(t)):
      want_vector, want_onehot = t2m_lookup(word_to_vector, token)
      np.testing.assert_array_equal(vec.vectors[word_ids[row, slot]], want_vector)
      assert pos_ids[row, slot] == int(np.argmax(want_onehot)), token

  first = dict(zip(tagged[0].split(), zip(word_ids[0, 1:], pos_ids[0, 1:])))
  assert first["kick/VERB"][1] == t2m.POS_INDEX["Act_VIP"]
  assert first["left/ADJ"][1] == t2m.POS_INDEX["Loc_VIP"]
  assert first["leg/NOUN"][1] == t2m.POS_INDEX["Body_VIP"]
  assert first["man/NOUN"][1] == t2m.POS_INDEX["NOUN"]
  assert first["or/CCONJ"][1] == t2m.OTHER
  assert first[f"{withheld}/PRON"] == (unk, t2m.OTHER)

  long_ids, _, long_length = vec.encode(" ".join(["man/NOUN"] * 25))
  assert long_length == 22 and long_ids[21] == eos and unk not in long_ids


def test_vectorizer_files(tmp_path):
  glove = tmp_path / "glove.txt"
  rows = {w: np.full(300, i, np.float32) for i, w in enumerate(["the", "sos", "eos", "kick"])}
  glove.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in rows.items()))
  vec = t2m.WordVectorizer.from_glove_text(glove, words_needed=["kick"])
  assert vec.vocabulary == ["sos", "eos", "unk", "kick"]
  np.testing.assert_array_equal(vec.vectors[3], rows["kick"])
  np.testing.assert_array_equal(vec.vectors[2], 0.0)  # unk is not in this file

  bad = tmp_path / "bad_glove.txt"
  bad.write_text(f"man {' '.join(['0.5'] * 300)}\nwoman 0.1 0.2\n")
  with pytest.raises(ValueError, match=f"{bad}:2: expected a word and 300 values"):
    t2m.WordVectorizer.from_glove_text(bad)

  write_our_vab(tmp_path, ["sos", "eos", "unk", "man"])
  (tmp_path / "our_vab_idx.pkl").write_bytes(pickle.dumps({"sos": 0, "eos": 1, "unk": 2}))
  with pytest.raises(ValueError, match=r"our_vab_idx\.pkl: word 'man' has row None"):
    t2m.WordVectorizer.from_t2m_files(tmp_path)


# ----- the objective ---------------------------------------------------------------------------

def test_contrastive_loss_is_t2m_and_prefers_matches():
  rng = np.random.default_rng(0)
  text = rng.normal(0, 1, (8, 512)).astype(np.float32)
  matched = text + rng.normal(0, 0.05, text.shape).astype(np.float32)
  shuffled = matched[rng.permutation(8)]
  for seed in range(5):
    key = jax.random.key(seed)
    loss, terms = t2m.contrastive_loss(jnp.asarray(text), jnp.asarray(matched), key)
    shift = int(terms["shift"])
    assert 0 <= shift <= 6
    t, m = torch.from_numpy(text), torch.from_numpy(matched)
    want_pos = torch_contrastive(t, m, torch.zeros(8), 10.0)
    want_neg = torch_contrastive(t, m[(np.arange(8) + shift) % 8], torch.ones(8), 10.0)
    np.testing.assert_allclose(float(terms["loss_pos"]), float(want_pos), rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss_neg"]), float(want_neg), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(want_pos + want_neg), rtol=1e-5)
    shuffled_loss, _ = t2m.contrastive_loss(jnp.asarray(text), jnp.asarray(shuffled), key)
    if shift:
      assert float(loss) < 0.1 * float(shuffled_loss)
  with pytest.raises(ValueError, match="at least 2"):
    t2m.contrastive_loss(jnp.ones((1, 4)), jnp.ones((1, 4)), jax.random.key(0))


def test_learned_embedding_trains():
  tagged = [tagged_of(l) for l in caption_lines()[:4]]
  vec = t2m.WordVectorizer.learned((tok.rpartition("/")[0] for t in tagged
                                    for tok in t.split()), dim=8)
  assert vec.vectors is None and vec.vocabulary[:3] == ["sos", "eos", "unk"]
  word_ids, pos_ids, lengths = vec.encode_many(tagged)
  model = t2m.T2MEvaluator(feature_dim=12, vocab_size=len(vec), learned_embedding=True,
                           word_dim=vec.dim, text_hidden=16, motion_hidden=16, movement_hidden=16,
                           movement_latent=16, embedding_dim=8)
  motion = np.random.default_rng(1).normal(0, 1, (len(tagged), 16, 12)).astype(np.float32)
  motion_lengths = np.array([16, 12, 16, 8])[:len(tagged)]
  # The init traced, not compiled (its random initialisers cost seconds of XLA compilation);
  # random values of its shapes train as well.
  shapes = nn.unbox(jax.eval_shape(model.init, jax.random.key(0), word_ids, pos_ids, lengths,
                                   motion, motion_lengths)["params"])
  assert shapes["word_embedding"]["embedding"].shape == (len(vec), 8)
  assert set(shapes) == {"word_embedding", "text_encoder", "movement_encoder", "motion_encoder"}
  init_rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: init_rng.normal(0, 0.3, s.shape).astype(np.float32), shapes)

  def loss_fn(p, key):
    text, mot = model.apply({"params": p}, word_ids, pos_ids, lengths, motion, motion_lengths)
    return t2m.contrastive_loss(text, mot, key)[0]

  optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-2))

  @jax.jit
  def step(p, state, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, key)
    updates, state = optimizer.update(grads, state, p)
    return optax.apply_updates(p, updates), state, loss

  # A key whose shift is not 0: with shift 0 T2M's "negatives" are the positive pairs.
  key = next(k for k in map(jax.random.key, range(10))
             if int(t2m.contrastive_loss(jnp.zeros((4, 1)), jnp.zeros((4, 1)), k)[1]["shift"]))
  p, state = params, optimizer.init(params)
  losses = []
  for _ in range(101):  # each step returns the loss before its update
    p, state, loss = step(p, state, key)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0]
  assert not np.allclose(p["word_embedding"]["embedding"], params["word_embedding"]["embedding"])
