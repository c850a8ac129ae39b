"""The visualize command: word pictures of a caption or a motion, PCA map of a split."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from lexmo_jax.inference import LexicalModel, MotionFileError, WorkdirError
from lexmo_jax.train import data as data_lib
from lexmo_jax.visualize import OTHER, action_label, pca_picture, words_picture



@pytest.fixture(scope="module")
def model(chain):
  return LexicalModel.from_workdir(chain["lexcmlp"])


@pytest.fixture(scope="module")
def clip(model):
  return data_lib.load_split(model.config, "test").pairs[0].motion


def _assert_are_top_words(words, vector, vocab, k):
  """words are the k heaviest of vector, heaviest first (near-equal weights may swap)."""
  assert len(words) == k
  weights = np.array([v for _, v in words])
  assert np.all(np.diff(weights) <= 0)
  np.testing.assert_allclose(weights, vector[[vocab.index(w) for w, _ in words]], atol=1e-5)
  np.testing.assert_allclose(weights, np.sort(vector)[::-1][:k], atol=1e-5)


def _png_size(path):
  with Image.open(path) as image:
    assert image.format == "PNG"
    return image.size


@pytest.mark.parametrize("caption, action", [
    ("A person walks forward and then turns around.", "walk"),
    ("someone is running in a circle", "run"),
    ("the man sat down on a chair, then stood up", "sit"),
    ("a figure hops on the left foot and claps", "hop"),
    ("person lying on the floor", "lie"),
    ("a person's arms are held high", OTHER),
])
def test_action_is_the_first_action_verb_in_base_form(caption, action):
  assert action_label(caption) == action


def test_words_of_a_caption_as_bar_chart(chain, model, tmp_path):
  path, words = words_picture(str(chain["lexcmlp"]), str(tmp_path / "w.png"),
                              text="a person jumps twice", top=12)
  assert _png_size(path)[1] > 0
  vector = model.encode_texts(["a person jumps twice"])[0]
  _assert_are_top_words(words, vector, model.vocab, 12)


def test_words_of_a_motion_file_as_cloud(chain, model, clip, tmp_path):
  motion = tmp_path / "clip.npy"
  np.save(motion, clip)
  path, words = words_picture(str(chain["lexcmlp"]), str(tmp_path / "c.png"),
                              motion=str(motion), cloud=True, top=30)
  assert _png_size(path) == (800, 450)
  _assert_are_top_words(words, model.encode_motions([clip])[0], model.vocab, 30)


def test_pca_map_is_coloured_by_action(chain, model, tmp_path):
  path, labels = pca_picture(str(chain["lexmmm"]), str(tmp_path / "pca.png"), split="train")
  assert _png_size(path)[0] > 0
  pairs = data_lib.load_split(model.config, "train").pairs
  assert labels == [action_label(p.captions[0]) for p in pairs]
  assert len(set(labels) - {OTHER}) >= 3


def test_bad_inputs_are_refused_by_name(chain, tmp_path):
  workdir = str(chain["lexcmlp"])
  with pytest.raises(ValueError, match="exactly one of --text and --motion"):
    words_picture(workdir, str(tmp_path / "x.png"))
  with pytest.raises(ValueError, match="the text is empty"):
    words_picture(workdir, str(tmp_path / "x.png"), text=" ")
  with pytest.raises(ValueError, match="must be a .png file"):
    words_picture(workdir, str(tmp_path / "x.jpg"), text="a person runs")
  with pytest.raises(ValueError, match="--text \"...\" holds no word of the vocabulary"):
    words_picture(workdir, str(tmp_path / "x.png"), text="...")
  with pytest.raises(MotionFileError, match="nothing.npy does not exist"):
    words_picture(workdir, str(tmp_path / "x.png"), motion=str(tmp_path / "nothing.npy"))
  with pytest.raises(WorkdirError, match="'lexmlm' workdir, whose motion encoder is untrained"):
    pca_picture(str(chain["lexmlm"]), str(tmp_path / "x.png"))
  assert not (tmp_path / "x.png").exists()


def test_wrong_width_motion_exits_2_with_one_line(chain, clip, tmp_path):
  motion = tmp_path / "wide.npy"
  np.save(motion, np.concatenate([clip, clip[:, :1]], axis=1))
  result = subprocess.run(
      [sys.executable, "-m", "lexmo_jax.visualize", "words", f"--workdir={chain['lexcmlp']}",
       f"--motion={motion}", f"--out={tmp_path / 'x.png'}"],
      cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: motion file {motion} has shape ({len(clip)}, 264) and dtype float32; expected "
      "raw (T, 263) humanml3d features or (T, 22, 3) joint positions"]
