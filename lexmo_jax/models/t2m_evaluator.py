"""The text-to-motion evaluator of T2M: its text–motion matching model, in JAX.

Guo et al., "Generating Diverse and Natural 3D Human Motions from Text", CVPR 2022; code at
github.com/EricGuo5513/text-to-motion. The field's text-to-motion metrics (R-precision,
FID, diversity, multimodality, matching score) are computed with the embeddings of this model
and its published checkpoint (`checkpoints/t2m/text_mot_match/model/finest.tar`, and
`checkpoints/kit/...` for KIT-ML). Everything here follows that code, file by file:

- `utils/word_vectorizer.py`: `POS_CATEGORIES`, the VIP word lists, `pos_index`, and the
  word vectors of `WordVectorizer` (T2M's `our_vab` files are GloVe 300-d vectors of its
  vocabulary).
- `data/dataset.py` (`Text2MotionDatasetV2`): a caption is `sos/OTHER`, at most 20 of its
  `word/POS` tokens, `eos/OTHER`, padded with `unk/OTHER` to 22 slots; a motion is cropped to
  a multiple of 4 frames (the unit length), z-normalised and zero-padded to 196 frames.
- `networks/modules.py`: `TextEncoderBiGRUCo`, `MovementConvEncoder`,
  `MotionEncoderBiGRUCo`, with the same parameter names so that the checkpoint loads by name
  (`load_official`), and `ContrastiveLoss`.
- `networks/evaluator_wrapper.py`: the sizes (word 300, POS 15, text hidden 512, motion hidden
  1024, movement 512, co-embedding 512), the movement encoder reading all features but the
  last 4 (the foot contacts), and the motion GRU running over `frames // 4` movement steps.
- `networks/trainers.py` (`TextMotionMatchTrainer`): `contrastive_loss`.

How T2M trains it (`train_tex_mot_match.py`, `options/train_options.py`
`TrainTexMotMatchOptions`), for whoever writes a config:
- The movement encoder is not trained here: it comes from T2M's movement autoencoder
  (`Decomp_SP001_SM001_H512/model/latest.tar`, key 'movement_enc'), runs in eval mode (no
  dropout) and its output is detached. Only the text and motion encoders learn.
- Adam (PyTorch defaults: betas 0.9/0.999, eps 1e-8, no weight decay), lr 1e-4, one
  optimizer per encoder; gradient norm clipped to 0.5 per encoder (`clip_grad_norm_` on each
  encoder's parameters separately).
- Batch 32 (shuffled, last partial batch dropped), 300 epochs, `contrastive_loss` with
  margin 10.0. `finest.tar` holds the epoch of lowest validation loss.
- Each sample draws one of the motion's captions at random; motions are 40 ≤ frames < 200
  (KIT-ML: 24), cropped at a random offset to a multiple of 4 frames (one unit shorter with
  probability 1/3), normalised with the mean/std of T2M's generator
  (`checkpoints/t2m/Comp_v6_KLD01/meta/{mean,std}.npy`), zero-padded to 196 frames.
- Word vectors are T2M's `glove/our_vab_*` files, fixed (not trained).

Shapes use b (batch), l (caption slots, 22), t (frames), s (movement steps = t // 4),
f (motion features), h (GRU width), d (embedding width), w (vocabulary).
"""
from __future__ import annotations

import logging
import os
import pathlib
import pickle
from typing import Any, Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from lexmo_jax.models.transformer import Dropout

log = logging.getLogger(__name__)

Params = dict[str, Any]

# ----- words and parts of speech (T2M utils/word_vectorizer.py) ---------------------------------

# T2M's POS_enumerator, in its order: the index is the position of the 1 in its one-hot.
POS_CATEGORIES = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
                  "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
POS_INDEX = {name: i for i, name in enumerate(POS_CATEGORIES)}
OTHER = POS_INDEX["OTHER"]

LOC_WORDS = ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward",
             "back", "backward", "up", "down", "straight", "curve")
BODY_WORDS = ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye",
              "knee", "shoulder", "thigh")
OBJ_WORDS = ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail",
             "baseball", "basketball")
# T2M lists 'dance' twice; kept as written so the list can be checked against its source.
ACT_WORDS = ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop",
             "dance", "jump", "turn", "stumble", "dance", "stop", "sit", "lift", "lower",
             "raise", "wash", "stand", "kneel", "stroll", "rub", "bend", "balance", "flap",
             "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb")
DESC_WORDS = ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry",
              "sad", "happily", "angrily", "sadly")
# Searched in this order (T2M's VIP_dict); no word is in two lists.
VIP_WORDS = {"Loc_VIP": LOC_WORDS, "Body_VIP": BODY_WORDS, "Obj_VIP": OBJ_WORDS,
             "Act_VIP": ACT_WORDS, "Desc_VIP": DESC_WORDS}

SOS, EOS, UNK = "sos", "eos", "unk"
SPECIAL_WORDS = (SOS, EOS, UNK)
MAX_TEXT_LEN = 20  # caption tokens kept (T2M's max_text_len)
TEXT_SLOTS = MAX_TEXT_LEN + 2  # with sos and eos
UNIT_LENGTH = 4  # frames per movement step (T2M's unit_length)
FOOT_CONTACTS = 4  # the last 4 features of HumanML3D / KIT-ML vectors
WORD_DIM = 300


def pos_index(word: str, pos: str) -> int:
  """The POS category index (0..14) of a known word tagged `pos`.

  T2M's rule: a word of a VIP list takes that list's category whatever its tag; otherwise
  its tag's index; a tag outside POS_CATEGORIES (CCONJ, PROPN, PART, ...) is OTHER. A word
  missing from the vocabulary is not given to this function: `WordVectorizer` maps it to
  `unk` with OTHER, as T2M does.
  """
  for category, words in VIP_WORDS.items():
    if word in words:
      return POS_INDEX[category]
  return POS_INDEX.get(pos, OTHER)


def _split_token(token: str) -> tuple[str, str]:
  word, sep, pos = token.rpartition("/")
  if not sep or not word:
    raise ValueError(f"caption token {token!r} is not of the form word/POS")
  return word, pos


def caption_tokens(tagged: str | Sequence[str]) -> list[str]:
  """T2M's 22 caption slots: `sos/OTHER`, the first 20 `word/POS` tokens, `eos/OTHER`, then
  `unk/OTHER` up to 22 (Text2MotionDatasetV2.__getitem__).

  `tagged` is the second '#'-field of a HumanML3D / KIT-ML caption line
  ("a/DET man/NOUN kick/VERB ...") or its list of tokens.
  """
  tokens = tagged.split() if isinstance(tagged, str) else list(tagged)
  tokens = [f"{SOS}/OTHER"] + tokens[:MAX_TEXT_LEN] + [f"{EOS}/OTHER"]
  return tokens + [f"{UNK}/OTHER"] * (TEXT_SLOTS - len(tokens))


class _NoGlobalsUnpickler(pickle.Unpickler):
  """T2M's vocabulary pickles hold only lists, dicts, strings and ints: nothing that needs a
  class, so none is loaded (a pickle that names one is not a vocabulary file)."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_pickle(path: pathlib.Path):
  try:
    with open(path, "rb") as f:
      return _NoGlobalsUnpickler(f).load()
  except FileNotFoundError:
    raise
  except Exception as e:  # pickle raises many unrelated types on corrupt input
    raise ValueError(f"{path}: not a readable vocabulary pickle ({e})") from e


class WordVectorizer:
  """Captions → word ids, POS ids and lengths in T2M's layout, plus the word vectors.

  Build one with `from_glove_text`, `from_t2m_files` or `learned`. The vocabulary always
  starts with `sos`, `eos`, `unk` (T2M's `our_vab` order); a word not in it is `unk` with
  POS OTHER.

  Attributes:
    vocabulary: list of W words; a word's id is its index.
    vectors: (W, dim) float32, or None for learned vectors (then `T2MEvaluator` holds them
      as an `nn.Embed` of `len(vocabulary)` rows).
    dim: the vectors' width (the evaluator's `word_dim`); for learned vectors, the `dim`
      given, 300 by default.
  """

  def __init__(self, vocabulary: Sequence[str], vectors: np.ndarray | None,
               dim: int | None = None):
    self.vocabulary = list(vocabulary)
    self.word_to_id = {w: i for i, w in enumerate(self.vocabulary)}
    if len(self.word_to_id) != len(self.vocabulary):
      raise ValueError("the vocabulary has repeated words")
    missing = [w for w in SPECIAL_WORDS if w not in self.word_to_id]
    if missing:
      raise ValueError(f"the vocabulary lacks the special words {missing}")
    if vectors is not None:
      vectors = np.asarray(vectors, np.float32)
      if vectors.ndim != 2 or vectors.shape[0] != len(self.vocabulary):
        raise ValueError(f"vectors have shape {vectors.shape}, expected "
                         f"({len(self.vocabulary)}, dim)")
      dim = vectors.shape[1]
    elif dim is None:
      dim = WORD_DIM
    self.vectors = vectors
    self.dim = dim

  def __len__(self) -> int:
    return len(self.vocabulary)

  # --- sources ---

  @classmethod
  def from_glove_text(cls, path: str | os.PathLike, words_needed: Iterable[str] | None = None,
                      dim: int = WORD_DIM) -> WordVectorizer:
    """GloVe's text format: one "word v1 … v_dim" line per word (glove.6B.300d.txt).

    Args:
      path: the text file.
      words_needed: keep only these words (and sos/eos/unk); None keeps every line.
      dim: values per vector. The word is everything before the last `dim` fields, so the
        few tokens with spaces in glove.840B read correctly.

    Returns:
      A vectorizer whose vocabulary is sos, eos, unk, then the kept words in file order.
      A special word the file lacks gets a zero vector (logged).

    Raises:
      FileNotFoundError: no such file.
      ValueError: a line with the wrong number of values or a value that is not a number
        (the message names the file and line), or no vectors at all.
    """
    path = pathlib.Path(path)
    needed = None if words_needed is None else set(words_needed) | set(SPECIAL_WORDS)
    found: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, start=1):
        parts = line.rstrip("\r\n").rstrip(" ").split(" ")
        if parts == [""]:
          continue
        if len(parts) < dim + 1:
          raise ValueError(f"{path}:{number}: expected a word and {dim} values, got "
                           f"{len(parts)} fields")
        word = " ".join(parts[:-dim])
        if needed is not None and word not in needed:
          continue
        try:
          vector = np.asarray(parts[-dim:], dtype=np.float32)
        except ValueError as e:
          raise ValueError(f"{path}:{number}: {e}") from e
        found.setdefault(word, vector)
    if not found:
      raise ValueError(f"{path}: no word vectors found" +
                       ("" if needed is None else " for the words needed"))
    for word in SPECIAL_WORDS:
      if word not in found:
        log.warning("%s has no vector for %r: using zeros", path, word)
        found[word] = np.zeros(dim, np.float32)
    vocabulary = list(SPECIAL_WORDS) + [w for w in found if w not in SPECIAL_WORDS]
    return cls(vocabulary, np.stack([found[w] for w in vocabulary]))

  @classmethod
  def from_t2m_files(cls, folder: str | os.PathLike, prefix: str = "our_vab"
                     ) -> WordVectorizer:
    """T2M's own files: `{prefix}_data.npy` (N, 300) vectors, `{prefix}_words.pkl` (list
    of words) and `{prefix}_idx.pkl` (word → row), as in its `glove/` folder.

    Raises:
      FileNotFoundError: a file is missing.
      ValueError: a file of the wrong kind or contents (named in the message).
    """
    folder = pathlib.Path(folder)
    data_file = folder / f"{prefix}_data.npy"
    words_file = folder / f"{prefix}_words.pkl"
    idx_file = folder / f"{prefix}_idx.pkl"
    try:
      data = np.load(data_file, allow_pickle=False)
    except FileNotFoundError:
      raise
    except Exception as e:  # numpy raises several types on a corrupt or pickled array
      raise ValueError(f"{data_file}: not a readable .npy array ({e})") from e
    if data.ndim != 2 or not np.issubdtype(data.dtype, np.floating):
      raise ValueError(f"{data_file}: expected a 2-D float array, got {data.dtype} "
                       f"{data.shape}")
    words = _read_pickle(words_file)
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
      raise ValueError(f"{words_file}: expected a list of words")
    word_to_row = _read_pickle(idx_file)
    if not isinstance(word_to_row, dict):
      raise ValueError(f"{idx_file}: expected a dict word → row")
    rows = []
    for w in words:
      row = word_to_row.get(w)
      if not isinstance(row, int) or not 0 <= row < data.shape[0]:
        raise ValueError(f"{idx_file}: word {w!r} has row {row!r}, not one of the "
                         f"{data.shape[0]} rows of {data_file}")
      rows.append(row)
    missing = [w for w in SPECIAL_WORDS if w not in set(words)]
    if missing:
      raise ValueError(f"{words_file}: the vocabulary lacks the special words {missing}")
    if len(set(words)) != len(words):
      raise ValueError(f"{words_file}: the vocabulary has repeated words")
    return cls(words, data[np.asarray(rows, np.int64)].astype(np.float32))

  @classmethod
  def learned(cls, vocabulary: Iterable[str], dim: int = WORD_DIM) -> WordVectorizer:
    """A vocabulary whose vectors the evaluator learns (`T2MEvaluator(learned_embedding=
    True, vocab_size=len(vectorizer), word_dim=vectorizer.dim)`): the fallback when no GloVe
    file is at hand. Its scores are not comparable to numbers computed with T2M's checkpoint.

    sos, eos, unk are put first; repeated words are kept once.
    """
    words = list(SPECIAL_WORDS)
    seen = set(words)
    for w in vocabulary:
      if w not in seen:
        seen.add(w)
        words.append(w)
    return cls(words, None, dim)

  # --- encoding ---

  def encode(self, tagged: str | Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """One caption's `word/POS` tokens → (word_ids (22,) int32, pos_ids (22,) int32, length).

    length counts sos and eos (2 + min(tokens, 20)): the GRU's sequence length.

    Raises:
      ValueError: a token without a '/'.
    """
    slots = caption_tokens(tagged)
    word_ids = np.empty(TEXT_SLOTS, np.int32)
    pos_ids = np.empty(TEXT_SLOTS, np.int32)
    for i, token in enumerate(slots):
      word, pos = _split_token(token)
      if word in self.word_to_id:
        word_ids[i] = self.word_to_id[word]
        pos_ids[i] = pos_index(word, pos)
      else:
        word_ids[i] = self.word_to_id[UNK]
        pos_ids[i] = OTHER
    n_tokens = len(tagged.split() if isinstance(tagged, str) else tagged)
    return word_ids, pos_ids, min(n_tokens, MAX_TEXT_LEN) + 2

  def encode_many(self, tagged: Sequence[str | Sequence[str]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Captions → (word_ids (N, 22), pos_ids (N, 22), lengths (N,)), all int32."""
    encoded = [self.encode(t) for t in tagged]
    if not encoded:
      empty = np.zeros((0, TEXT_SLOTS), np.int32)
      return empty, empty.copy(), np.zeros((0,), np.int32)
    word_ids, pos_ids, lengths = zip(*encoded)
    return np.stack(word_ids), np.stack(pos_ids), np.asarray(lengths, np.int32)


# ----- modules (T2M networks/modules.py) ----------------------------------------------------------

PrecisionLike = Any
# PyTorch computes the published embeddings in float32; the GPUs' and TPUs' default reduced-
# precision matmuls would move the metrics.
HIGHEST = jax.lax.Precision.HIGHEST


def _linear(features: int, axes: tuple[str | None, str | None], name: str,
            precision: PrecisionLike) -> nn.Dense:
  """T2M's Linear: xavier-normal weight and zero bias (its `init_weight`)."""
  return nn.Dense(
      features,
      precision=precision,
      kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_normal(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)),
      name=name)


def _layer_norm(axis: str, name: str) -> nn.LayerNorm:
  """PyTorch's LayerNorm: eps 1e-5, variance as the mean of squared deviations."""
  return nn.LayerNorm(
      epsilon=1e-5,
      use_fast_variance=False,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, (axis,)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axis,)),
      name=name)


def _torch_gru_init(hidden: int):
  """PyTorch's GRU initialisation: every weight and bias uniform in ±1/√hidden."""
  bound = 1.0 / np.sqrt(hidden)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class GRUDirection(nn.Module):
  """The weights of one direction of PyTorch's `nn.GRU`, in its gate order r, z, n.

  input_kernel (in, 3h) and recurrent_kernel (h, 3h) are PyTorch's weight_ih_l0 and
  weight_hh_l0 transposed; input_bias and recurrent_bias are bias_ih_l0 and bias_hh_l0.
  """
  hidden: int

  @nn.compact
  def __call__(self, in_features: int):
    init = _torch_gru_init(self.hidden)
    gates = 3 * self.hidden
    return (
        self.param("input_kernel", nn.with_logical_partitioning(init, ("embed", "mlp")),
                   (in_features, gates)),
        self.param("input_bias", nn.with_logical_partitioning(init, ("mlp",)), (gates,)),
        self.param("recurrent_kernel", nn.with_logical_partitioning(init, ("embed", "mlp")),
                   (self.hidden, gates)),
        self.param("recurrent_bias", nn.with_logical_partitioning(init, ("mlp",)), (gates,)),
    )


def bidirectional_gru_last(x_btd, lengths_b, h0_2bh, forward_weights, backward_weights,
                           precision: PrecisionLike = HIGHEST):
  """The final hidden states of a one-layer bidirectional PyTorch GRU over a packed batch.

  As `nn.GRU(..., bidirectional=True)` on `pack_padded_sequence(x, lengths)`: the forward
  direction reads steps 0..length−1 and returns its state after step length−1; the backward
  direction starts at step length−1 from its initial state and returns its state after step
  0. Steps at or past a row's length never touch its states. Each step is PyTorch's cell:
    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz),
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h.
  Both directions advance in one scan of T steps (the backward one reading time reversed).

  Args:
    x_btd: (B, T, D) inputs.
    lengths_b: (B,) int valid steps; 0 returns the initial states (PyTorch refuses 0).
    h0_2bh: (2, B, H) initial states, forward then backward.
    forward_weights, backward_weights: `GRUDirection` outputs.

  Returns:
    (B, 2H): [forward final state, backward final state], PyTorch's
    `torch.cat([h_n[0], h_n[1]], -1)`.
  """
  w_ih, b_ih, w_hh, b_hh = (jnp.stack(pair) for pair in zip(forward_weights, backward_weights))
  t = x_btd.shape[1]
  gates_x = jnp.einsum("btd,edk->ebtk", x_btd, w_ih, precision=precision)
  gates_x = gates_x + b_ih[:, None, None, :]
  gates_x = jnp.stack([gates_x[0], gates_x[1, :, ::-1]])  # (2, B, T, 3H), step-major below
  steps = jnp.arange(t)
  lengths_b = jnp.asarray(lengths_b, jnp.int32)
  valid_t2b = jnp.stack([steps[:, None] < lengths_b[None, :],
                         (t - 1 - steps)[:, None] < lengths_b[None, :]], axis=1)

  def step(h_2bh, inputs):
    gx_2bk, valid_2b = inputs
    gh_2bk = jnp.einsum("ebh,ehk->ebk", h_2bh, w_hh, precision=precision) + b_hh[:, None, :]
    xr, xz, xn = jnp.split(gx_2bk, 3, axis=-1)
    hr, hz, hn = jnp.split(gh_2bk, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h_new = (1.0 - z) * n + z * h_2bh
    return jnp.where(valid_2b[..., None], h_new, h_2bh), None

  h_2bh, _ = jax.lax.scan(step, h0_2bh, (jnp.moveaxis(gates_x, 2, 0), valid_t2b))
  return jnp.concatenate([h_2bh[0], h_2bh[1]], axis=-1)


class BidirectionalGRU(nn.Module):
  """PyTorch's one-layer bidirectional `nn.GRU`, returning only the final states (B, 2h).
  Parameters: `forward` and `backward` (`GRUDirection`)."""
  hidden: int
  precision: PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x_btd, lengths_b, h0_2bh):
    forward = GRUDirection(self.hidden, name="forward")(x_btd.shape[-1])
    backward = GRUDirection(self.hidden, name="backward")(x_btd.shape[-1])
    return bidirectional_gru_last(x_btd, lengths_b, h0_2bh, forward, backward, self.precision)


def _initial_state(module: nn.Module, hidden: int, batch: int):
  """T2M's learned initial state `hidden` (2, 1, h) ~ N(0, 1), repeated over the batch."""
  h0 = module.param("hidden", nn.with_logical_partitioning(
      nn.initializers.normal(1.0), (None, None, "mlp")), (2, 1, hidden))
  return jnp.broadcast_to(h0, (2, batch, hidden))


class TextEncoderBiGRUCo(nn.Module):
  """T2M's text encoder: (word vectors + POS embedding) → Linear → BiGRU → MLP.

  pos_emb Linear(15 → word_dim), input_emb Linear(word_dim → hidden), gru BiGRU(hidden),
  `hidden` (2, 1, hidden) initial state, output_net Linear(2·hidden → hidden) → LayerNorm →
  LeakyReLU(0.2) → Linear(hidden → output). Flax names `output_net_0/1/3` are PyTorch's
  `output_net.0/1/3` (index 2 is the activation).
  """
  word_dim: int = WORD_DIM
  hidden: int = 512
  output: int = 512
  precision: PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, word_vectors_blw, pos_onehot_blp, lengths_b):
    """(B, L, word_dim) vectors, (B, L, 15) POS one-hots, (B,) lengths → (B, output)."""
    pos_blw = _linear(self.word_dim, ("token_type", "embed"), "pos_emb", self.precision)(
        pos_onehot_blp)
    x_blh = _linear(self.hidden, ("embed", "mlp"), "input_emb", self.precision)(
        word_vectors_blw + pos_blw)
    h0 = _initial_state(self, self.hidden, x_blh.shape[0])
    last_b2h = BidirectionalGRU(self.hidden, self.precision, name="gru")(x_blh, lengths_b, h0)
    return _output_net(last_b2h, self.hidden, self.output, self.precision)


def _output_net(x, hidden: int, output: int, precision: PrecisionLike):
  """T2M's output_net: Linear → LayerNorm → LeakyReLU(0.2) → Linear, named by its index."""
  x = _linear(hidden, ("mlp", "embed"), "output_net_0", precision)(x)
  x = nn.leaky_relu(_layer_norm("embed", "output_net_1")(x), 0.2)
  return _linear(output, ("embed", "embed_out"), "output_net_3", precision)(x)


class MovementConvEncoder(nn.Module):
  """T2M's movement encoder: two strided convolutions, 4 frames → 1 movement step.

  main.0 Conv1d(in → hidden, kernel 4, stride 2, padding 1) → Dropout(0.2) → LeakyReLU(0.2)
  → main.3 Conv1d(hidden → latent, 4, 2, 1) → Dropout(0.2) → LeakyReLU(0.2), then out_net
  Linear(latent → latent). Flax conv kernels are (4, in, out).
  """
  hidden: int = 512
  latent: int = 512
  dropout_rate: float = 0.2
  precision: PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, x_btf, deterministic: bool = True):
    """(B, T, F−4) normalised features without foot contacts → (B, T // 4, latent)."""
    for name, width in (("main_0", self.hidden), ("main_3", self.latent)):
      x_btf = nn.Conv(
          width, kernel_size=(4,), strides=(2,), padding=((1, 1),), precision=self.precision,
          kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_normal(),
                                                   (None, "embed", "mlp")),
          bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)),
          name=name)(x_btf)
      x_btf = nn.leaky_relu(Dropout(self.dropout_rate)(x_btf, deterministic), 0.2)
    return _linear(self.latent, ("mlp", "embed"), "out_net", self.precision)(x_btf)


class MotionEncoderBiGRUCo(nn.Module):
  """T2M's motion encoder over movement steps: Linear → BiGRU → MLP.

  input_emb Linear(latent → hidden), gru BiGRU(hidden), `hidden` (2, 1, hidden) initial
  state, output_net Linear(2·hidden → hidden) → LayerNorm → LeakyReLU(0.2) →
  Linear(hidden → output).
  """
  hidden: int = 1024
  output: int = 512
  precision: PrecisionLike = HIGHEST

  @nn.compact
  def __call__(self, movements_bsd, lengths_b):
    """(B, S, latent) movements, (B,) valid steps → (B, output)."""
    x_bsh = _linear(self.hidden, ("embed", "mlp"), "input_emb", self.precision)(movements_bsd)
    h0 = _initial_state(self, self.hidden, x_bsh.shape[0])
    last_b2h = BidirectionalGRU(self.hidden, self.precision, name="gru")(x_bsh, lengths_b, h0)
    return _output_net(last_b2h, self.hidden, self.output, self.precision)


class T2MEvaluator(nn.Module):
  """T2M's text–motion matching model: `encode_text` and `encode_motion` into one space.

  Defaults are T2M's (`networks/evaluator_wrapper.py`); feature_dim is 263 for HumanML3D,
  251 for KIT-ML. Parameters: `text_encoder`, `movement_encoder`, `motion_encoder` (as the
  checkpoint's three state dicts) and, with learned_embedding, `word_embedding`.

  Word vectors: with learned_embedding=False (T2M) they come from a file and are inputs, not
  parameters; pass (B, L, word_dim) vectors, or word ids with `word_vectors` (W, word_dim).
  With learned_embedding=True, word ids index an `nn.Embed(vocab_size, word_dim)`.
  """
  feature_dim: int = 263
  vocab_size: int = 0
  learned_embedding: bool = False
  word_dim: int = WORD_DIM
  text_hidden: int = 512
  motion_hidden: int = 1024
  movement_hidden: int = 512
  movement_latent: int = 512
  embedding_dim: int = 512
  unit_length: int = UNIT_LENGTH
  dropout_rate: float = 0.2
  precision: PrecisionLike = HIGHEST

  def setup(self):
    if self.learned_embedding:
      if self.vocab_size <= 0:
        raise ValueError("learned_embedding needs vocab_size > 0 (len(WordVectorizer))")
      # About the per-component spread of GloVe 300-d vectors (norms of 5 to 7).
      self.word_embedding = nn.Embed(
          self.vocab_size, self.word_dim,
          embedding_init=nn.with_logical_partitioning(nn.initializers.normal(0.4),
                                                      ("vocab", "embed")))
    self.text_encoder = TextEncoderBiGRUCo(self.word_dim, self.text_hidden, self.embedding_dim,
                                           self.precision)
    self.movement_encoder = MovementConvEncoder(self.movement_hidden, self.movement_latent,
                                                self.dropout_rate, self.precision)
    self.motion_encoder = MotionEncoderBiGRUCo(self.motion_hidden, self.embedding_dim,
                                               self.precision)

  def encode_text(self, words, pos_bl, lengths_b, word_vectors=None):
    """Caption embeddings (B, embedding_dim).

    Args:
      words: (B, L) int word ids (`WordVectorizer.encode_many`), or (B, L, word_dim) float
        word vectors (T2M's own input).
      pos_bl: (B, L) int POS ids, or (B, L, 15) POS one-hots.
      lengths_b: (B,) int caption lengths with sos and eos (2..22).
      word_vectors: (W, word_dim) the vectorizer's `vectors`, when `words` are ids and the
        embedding is not learned.

    Raises:
      ValueError: word ids with neither learned_embedding nor word_vectors.
    """
    words = jnp.asarray(words)
    if words.ndim == 2:
      if self.learned_embedding:
        words = self.word_embedding(words)
      elif word_vectors is None:
        raise ValueError("word ids need `word_vectors` (WordVectorizer.vectors) unless the "
                         "evaluator has learned_embedding=True")
      else:
        words = jnp.take(jnp.asarray(word_vectors, jnp.float32), words, axis=0)
    pos_bl = jnp.asarray(pos_bl)
    if pos_bl.ndim == 2:
      pos_bl = jax.nn.one_hot(pos_bl, len(POS_CATEGORIES), dtype=jnp.float32)
    return self.text_encoder(words.astype(jnp.float32), pos_bl.astype(jnp.float32), lengths_b)

  def encode_motion(self, motion_btf, lengths_b, deterministic: bool = True):
    """Motion embeddings (B, embedding_dim).

    Args:
      motion_btf: (B, T, feature_dim) z-normalised features, zero past each length; T a
        multiple of 4 (T2M pads to 196). The last 4 features (foot contacts) are dropped.
      lengths_b: (B,) int lengths in frames; the GRU reads lengths // 4 movement steps (a
        row shorter than 4 frames gets only the initial states).
      deterministic: False applies the movement encoder's dropout (rng 'dropout'); T2M's
        evaluator training keeps it off.
    """
    motion_btf = jnp.asarray(motion_btf, jnp.float32)
    if motion_btf.shape[-1] != self.feature_dim:
      raise ValueError(f"motion has {motion_btf.shape[-1]} features, the evaluator expects "
                       f"{self.feature_dim}")
    movements_bsd = self.movement_encoder(motion_btf[..., :-FOOT_CONTACTS], deterministic)
    steps_b = jnp.asarray(lengths_b, jnp.int32) // self.unit_length
    return self.motion_encoder(movements_bsd, steps_b)

  def __call__(self, words, pos_bl, text_lengths_b, motion_btf, motion_lengths_b,
               word_vectors=None, deterministic: bool = True):
    """(text (B, d), motion (B, d)) embeddings: both encoders, as `init` needs."""
    return (self.encode_text(words, pos_bl, text_lengths_b, word_vectors),
            self.encode_motion(motion_btf, motion_lengths_b, deterministic))


def example_inputs(model: T2MEvaluator, batch_size: int = 2, frames: int = 196
                   ) -> tuple[jax.Array, ...]:
  """Zero inputs of the right shapes for `jax.jit(model.init)(rng, *example_inputs(model))`
  (jitted: an eager init compiles each initialiser's operations one by one)."""
  words = (jnp.zeros((batch_size, TEXT_SLOTS), jnp.int32) if model.learned_embedding
           else jnp.zeros((batch_size, TEXT_SLOTS, model.word_dim), jnp.float32))
  return (words, jnp.zeros((batch_size, TEXT_SLOTS), jnp.int32),
          jnp.full((batch_size,), TEXT_SLOTS, jnp.int32),
          jnp.zeros((batch_size, frames, model.feature_dim), jnp.float32),
          jnp.full((batch_size,), frames, jnp.int32))


# ----- the contrastive objective (T2M networks/trainers.py, networks/modules.py) ------------------

def contrastive_loss(text_bd, motion_bd, rng, margin: float = 10.0
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """T2M's TextMotionMatchTrainer objective (Hadsell et al.'s contrastive loss).

  d(a, b) = ‖a − b + 1e−6‖₂ (PyTorch's `F.pairwise_distance`, eps inside the norm).
    loss_pos = mean_i d(text_i, motion_i)²
    loss_neg = mean_i max(0, margin − d(text_i, motion_{(i+shift) mod B}))²
    loss = loss_pos + loss_neg
  shift is drawn uniformly from {0, …, B−2} (T2M's `np.random.randint(0, B−1)`), one per
  batch. As in T2M, shift 0 makes the "negatives" the positive pairs themselves.

  Args:
    text_bd, motion_bd: (B, d) embeddings of matching rows, B ≥ 2.
    rng: PRNG key for the shift.
    margin: T2M's `negative_margin` (10.0).

  Returns:
    (loss, {"loss_pos", "loss_neg", "shift"}), scalars.

  Raises:
    ValueError: a batch of fewer than 2 rows, or different shapes.
  """
  if text_bd.shape != motion_bd.shape or text_bd.ndim != 2:
    raise ValueError(f"text {text_bd.shape} and motion {motion_bd.shape} embeddings must be "
                     "(B, d) of one shape")
  batch = text_bd.shape[0]
  if batch < 2:
    raise ValueError(f"the contrastive loss needs a batch of at least 2 rows, got {batch}")
  shift = jax.random.randint(rng, (), 0, batch - 1)

  def distance(a, b):
    return jnp.sqrt(jnp.sum(jnp.square(a - b + 1e-6), axis=-1))

  loss_pos = jnp.mean(jnp.square(distance(text_bd, motion_bd)))
  negative_bd = jnp.take(motion_bd, (jnp.arange(batch) + shift) % batch, axis=0)
  loss_neg = jnp.mean(jnp.square(jnp.maximum(margin - distance(text_bd, negative_bd), 0.0)))
  loss = loss_pos + loss_neg
  return loss, {"loss": loss, "loss_pos": loss_pos, "loss_neg": loss_neg, "shift": shift}


# ----- the official checkpoint -------------------------------------------------------------------

CHECKPOINT_PARTS = ("text_encoder", "movement_encoder", "motion_encoder")


def _torch_name(path: tuple[str, ...]) -> tuple[str, str]:
  """Our parameter path → (PyTorch name, layout): layout is 'linear' ((in, out) here,
  (out, in) there), 'conv' ((k, in, out) here, (out, in, k) there) or 'same'."""
  part, *inner = path
  *module, leaf = inner
  # PyTorch's nn.Sequential children are named by index: output_net.0, main.3.
  module = [".".join(m.rsplit("_", 1)) if m.startswith(("output_net_", "main_")) else m
            for m in module]
  if module[-2:-1] == ["gru"]:
    suffix = "_reverse" if module[-1] == "backward" else ""
    kind, what = leaf.split("_")
    name = {"input": "ih", "recurrent": "hh"}[kind]
    torch_leaf = f"{'weight' if what == 'kernel' else 'bias'}_{name}_l0{suffix}"
    return ".".join([part, *module[:-1], torch_leaf]), "linear" if what == "kernel" else "same"
  if leaf == "hidden":
    return ".".join([part, "hidden"]), "same"
  if leaf == "kernel":
    layout = "conv" if module[-1].startswith("main.") else "linear"
    return ".".join([part, *module, "weight"]), layout
  torch_leaf = {"scale": "weight", "bias": "bias"}[leaf]
  return ".".join([part, *module, torch_leaf]), "same"


def _to_torch_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
  if layout == "linear":
    return shape[::-1]
  if layout == "conv":
    return (shape[2], shape[1], shape[0])
  return shape


def _from_torch(array: np.ndarray, layout: str) -> np.ndarray:
  if layout == "linear":
    return array.T
  if layout == "conv":
    return array.transpose(2, 1, 0)
  return array


def official_names(model: T2MEvaluator | None = None) -> dict[str, tuple[str, tuple[int, ...]]]:
  """Our flat parameter names ('text_encoder/gru/forward/input_kernel') → (the checkpoint's
  name 'text_encoder.gru.weight_ih_l0', its shape there)."""
  model = T2MEvaluator() if model is None else model
  shapes = jax.eval_shape(lambda: nn.unbox(model.init(jax.random.key(0),
                                                      *example_inputs(model, 1, 8))))
  names = {}
  for path, leaf in traverse_util.flatten_dict(shapes["params"]).items():
    if path[0] not in CHECKPOINT_PARTS:  # a learned word embedding: not in T2M's file
      continue
    torch_name, layout = _torch_name(path)
    names["/".join(path)] = (torch_name, _to_torch_shape(tuple(leaf.shape), layout))
  return names


def _flat_state(state: Mapping[str, Any]) -> dict[str, Any]:
  flat = {}
  for key, value in state.items():
    if isinstance(value, Mapping):
      for inner, array in _flat_state(value).items():
        flat[f"{key}.{inner}"] = array
    else:
      flat[key] = value
  return flat


def load_official(state: Mapping[str, Any], model: T2MEvaluator | None = None,
                  source: str = "the state dict") -> Params:
  """T2M's evaluator weights → our parameter tree.

  Args:
    state: the checkpoint's tensors as arrays, either flat ('text_encoder.pos_emb.weight')
      or nested as in finest.tar ({'text_encoder': state_dict, ...}); other top-level
      entries (optimizer states, 'epoch', 'iter') are ignored.
    model: the architecture expected; default `T2MEvaluator()` (HumanML3D, 263 features).
      KIT-ML's checkpoint needs `T2MEvaluator(feature_dim=251)`. learned_embedding must be
      False: T2M's model reads fixed word vectors.
    source: how errors name the state (a file path).

  Returns:
    The `params` collection: nested dict of float32 numpy arrays, unboxed, with the tree of
    `model.init(...)["params"]`.

  Raises:
    ValueError: one message naming `source` and every missing, mis-shaped, non-float or
      unexpected tensor (expected shapes in PyTorch's layout).
  """
  model = T2MEvaluator() if model is None else model
  if model.learned_embedding:
    raise ValueError("T2M's checkpoint has no word embedding: load it into "
                     "T2MEvaluator(learned_embedding=False)")
  state = {k: v for k, v in state.items()
           if "." in k and k.split(".")[0] in CHECKPOINT_PARTS or k in CHECKPOINT_PARTS}
  flat = _flat_state(state)
  names = official_names(model)
  problems, params = [], {}
  for ours, (theirs, expected) in names.items():
    if theirs not in flat:
      problems.append(f"missing {theirs!r} (expected shape {expected})")
      continue
    array = flat[theirs]
    if hasattr(array, "detach"):  # a torch tensor
      array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if tuple(array.shape) != expected:
      problems.append(f"{theirs!r} has shape {tuple(array.shape)}, expected {expected}")
    elif not np.issubdtype(array.dtype, np.floating):
      problems.append(f"{theirs!r} has dtype {array.dtype}, expected floats")
    else:
      layout = _torch_name(tuple(ours.split("/")))[1]
      params[ours] = np.ascontiguousarray(_from_torch(array, layout), dtype=np.float32)
  known = {theirs for theirs, _ in names.values()}
  problems += [f"unexpected {name!r}" for name in sorted(set(flat) - known)]
  if problems:
    hint = ""
    if any("main.0.weight" in p and "shape" in p for p in problems):
      hint = (f" (the evaluator expects {model.feature_dim} motion features: 263 for "
              "HumanML3D, 251 for KIT-ML)")
    raise ValueError(f"{source}: cannot load T2M's evaluator{hint}:\n  " +
                     "\n  ".join(problems))
  return traverse_util.unflatten_dict(params, sep="/")


def load_official_checkpoint(path: str | os.PathLike, model: T2MEvaluator | None = None,
                             allow_pickle: bool = False) -> Params:
  """T2M's `text_mot_match/model/finest.tar` → our parameter tree (see `load_official`).

  The file is a `torch.save` pickle, so PyTorch reads it. By default with
  `weights_only=True` (tensors, dicts, numbers only: T2M's file is of that kind);
  allow_pickle=True permits arbitrary pickled objects, for a trusted file only.

  Raises:
    FileNotFoundError: no such file.
    ImportError: PyTorch is not installed.
    ValueError: the file is not a readable checkpoint, or its tensors do not fit the model.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such checkpoint file")
  try:
    import torch
  except ImportError as e:
    raise ImportError(f"{path}: T2M's .tar checkpoints are torch.save pickles; reading one "
                      "needs PyTorch (pip install torch, the CPU build is enough), or pass "
                      "its tensors as arrays to load_official") from e
  try:
    checkpoint = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
  except Exception as e:  # torch raises many types on a corrupt file or a refused global
    raise ValueError(f"{path}: not a readable PyTorch checkpoint ({e})") from e
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f"{path}: expected a dict with {CHECKPOINT_PARTS}, got "
                     f"{type(checkpoint).__name__}")
  missing = [k for k in CHECKPOINT_PARTS if k not in checkpoint]
  if missing:
    raise ValueError(f"{path}: expected the entries {CHECKPOINT_PARTS}, missing {missing}")
  if "epoch" in checkpoint:
    log.info("%s: T2M evaluator of epoch %s", path, checkpoint["epoch"])
  return load_official({k: checkpoint[k] for k in CHECKPOINT_PARTS}, model, str(path))
