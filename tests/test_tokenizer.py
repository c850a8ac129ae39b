"""Tests of the word-piece tokenizer wrapper, against HF's BERT tokenizer as reference."""
import pathlib
import pickle

import numpy as np
import pytest

from input_pipeline import tokenizer as tokenizer_lib

CAPTIONS = [
    "A person walks forward, then turns around and jumps!",
    "",
    "someone does a cartwheel-like move 3.5 times",
    "the man waves his left hand while squatting down.",
    "Ünïcode façade naïve — café",
    "a person jogs in a counterclockwise circle " * 10,
]


@pytest.fixture(scope="module")
def default_tokenizer():
  return tokenizer_lib.load_tokenizer()


@pytest.fixture(scope="module")
def model_dir():
  return tokenizer_lib.default_tokenizer_path()


def test_default_vocabulary_is_bert_uncased(default_tokenizer):
  tok = default_tokenizer
  assert tok.vocab_size == 30522 == len(tok.vocab)
  assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
  np.testing.assert_array_equal(tok.special_ids, [0, 100, 101, 102, 103])
  assert tok.special_ids.dtype == np.int32
  assert tok.id_to_token(101) == "[CLS]"
  assert tok.token_to_id("walk") == tok.vocab.index("walk")
  assert tok.token_to_id("qqzzxxnotaword") is None


def test_encode_matches_hf_bert_tokenizer(default_tokenizer, model_dir):
  import transformers  # pylint: disable=g-import-not-at-top
  reference = transformers.BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)
  expected = reference(CAPTIONS, max_length=24, padding="max_length", truncation=True,
                       return_tensors="np")
  got = default_tokenizer.encode(CAPTIONS, 24)
  np.testing.assert_array_equal(got["input_ids"], expected["input_ids"])
  np.testing.assert_array_equal(got["attention_mask"], expected["attention_mask"])
  assert got["input_ids"].dtype == np.int32 and got["attention_mask"].dtype == np.int32


def test_vocab_txt_build_equals_tokenizer_json(default_tokenizer, model_dir):
  from_vocab = tokenizer_lib.load_tokenizer(str(model_dir / "vocab.txt"))
  assert from_vocab.vocab == default_tokenizer.vocab
  a = from_vocab.encode(CAPTIONS, 32)
  b = default_tokenizer.encode(CAPTIONS, 32)
  np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
  np.testing.assert_array_equal(a["attention_mask"], b["attention_mask"])
  np.testing.assert_array_equal(from_vocab.special_ids, default_tokenizer.special_ids)


def test_folder_and_file_paths(model_dir, tmp_path):
  assert tokenizer_lib.load_tokenizer(str(model_dir)).source.endswith("tokenizer.json")
  assert tokenizer_lib.load_tokenizer(str(model_dir / "tokenizer.json")).vocab_size == 30522
  only_vocab = tmp_path / "bert"
  only_vocab.mkdir()
  (only_vocab / "vocab.txt").write_bytes((model_dir / "vocab.txt").read_bytes())
  assert tokenizer_lib.load_tokenizer(str(only_vocab)).source.endswith("vocab.txt")


def test_missing_paths_name_the_path(tmp_path):
  missing = tmp_path / "no_such_tokenizer"
  with pytest.raises(FileNotFoundError, match="no_such_tokenizer"):
    tokenizer_lib.load_tokenizer(str(missing))
  with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor vocab.txt"):
    tokenizer_lib.load_tokenizer(str(tmp_path))


def test_bad_vocab_files_name_the_file_and_problem(tmp_path):
  no_mask = tmp_path / "no_mask.txt"
  no_mask.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nwalk\n")
  with pytest.raises(ValueError, match=r"no_mask\.txt.*\[MASK\]"):
    tokenizer_lib.load_tokenizer(str(no_mask))
  repeated = tmp_path / "repeated.txt"
  repeated.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nwalk\nwalk\n")
  with pytest.raises(ValueError, match=r"repeated\.txt: line 7 repeats"):
    tokenizer_lib.load_tokenizer(str(repeated))
  broken_json = tmp_path / "tokenizer.json"
  broken_json.write_text("{not json")
  with pytest.raises(ValueError, match="tokenizer.json"):
    tokenizer_lib.load_tokenizer(str(broken_json))


def test_tiny_vocabulary(tmp_path):
  vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "person", "walk", "##s", "jump"]
  (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
  tok = tokenizer_lib.load_tokenizer(str(tmp_path))
  assert tok.vocab == vocab
  ids = tok.encode(["A person WALKS", "a person dances"], 8)["input_ids"]
  np.testing.assert_array_equal(ids, [[2, 5, 6, 7, 8, 3, 0, 0], [2, 5, 6, 1, 3, 0, 0, 0]])
  np.testing.assert_array_equal(tok.is_continuation, [t.startswith("##") for t in vocab])


def test_truncation_keeps_sep_and_counts(default_tokenizer):
  tok = tokenizer_lib.load_tokenizer()
  before = tok.num_truncated
  out = tok.encode(["walk " * 50, "walk", ""], 6)
  ids, mask = out["input_ids"], out["attention_mask"]
  assert ids.shape == mask.shape == (3, 6)
  walk = tok.token_to_id("walk")
  np.testing.assert_array_equal(ids[0], [tok.cls_id, walk, walk, walk, walk, tok.sep_id])
  np.testing.assert_array_equal(ids[1], [tok.cls_id, walk, tok.sep_id, 0, 0, 0])
  np.testing.assert_array_equal(ids[2], [tok.cls_id, tok.sep_id, 0, 0, 0, 0])
  np.testing.assert_array_equal(mask.sum(1), [6, 3, 2])
  assert tok.num_truncated - before == 1
  # A caption that exactly fills the length is not a truncation.
  tok.encode(["walk walk walk walk"], 6)
  assert tok.num_truncated - before == 1
  assert default_tokenizer.encode([], 5)["input_ids"].shape == (0, 5)
  with pytest.raises(ValueError, match="max_length"):
    tok.encode(["walk"], 1)
  with pytest.raises(TypeError, match="sequence of texts"):
    tok.encode("walk", 8)


def test_continuation_pieces(default_tokenizer):
  tok = default_tokenizer
  assert tok.is_continuation.shape == (tok.vocab_size,) and tok.is_continuation.dtype == bool
  pieces = tok.tokenize("somersaulting")
  assert len(pieces) > 1
  flags = [bool(tok.is_continuation[tok.token_to_id(p)]) for p in pieces]
  assert flags == [False] + [True] * (len(pieces) - 1)
  assert not tok.is_continuation[tok.cls_id] and not tok.is_continuation[tok.token_to_id("walk")]


def test_decode_round_trip(default_tokenizer):
  ids = default_tokenizer.encode(["a person walks forward and jumps", ""], 16)["input_ids"]
  assert default_tokenizer.decode(ids[0]) == "a person walks forward and jumps"
  assert default_tokenizer.decode(ids) == ["a person walks forward and jumps", ""]


def test_pickle_round_trip(default_tokenizer):
  copy = pickle.loads(pickle.dumps(default_tokenizer))
  a = copy.encode(CAPTIONS, 20)["input_ids"]
  b = default_tokenizer.encode(CAPTIONS, 20)["input_ids"]
  np.testing.assert_array_equal(a, b)
  assert copy.vocab_size == default_tokenizer.vocab_size
  assert pathlib.Path(copy.source) == pathlib.Path(default_tokenizer.source)
