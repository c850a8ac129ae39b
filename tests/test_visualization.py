"""Pictures are valid image files of the expected size and frame count; bad input is named."""
import math

import numpy as np
import pytest
from PIL import Image

from input_pipeline.motion import drawing as skeleton
from lexmo_jax.visualization import embedding_pca, lexical

# HumanML3D's kinematic chains (T2M paramUtil): legs, spine to head, arms.
CHAINS = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15],
          [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]


@pytest.fixture(scope="module")
def walking_joints(humanml3d_sample_dir):
  """(9, 22, 3): the real rest skeleton gliding forward while its right arm rises."""
  rest = np.load(humanml3d_sample_dir / "skeleton_example_smplh52.npy")[:22]
  rest = rest - rest[0] * np.array([1.0, 0.0, 1.0])
  frames = []
  for t in range(9):
    pose = rest.copy()
    pose[:, 2] += 0.1 * t
    pose[[19, 21], 1] += 0.05 * t
    frames.append(pose)
  return np.stack(frames)


def test_gif_has_one_frame_per_stride(walking_joints, tmp_path):
  path = skeleton.render_skeleton_gif(walking_joints, tmp_path / "out" / "walk.gif", CHAINS,
                                      fps=20, title="walks forward", stride=2)
  assert path.exists()
  with Image.open(path) as im:
    assert im.format == "GIF"
    assert im.n_frames == math.ceil(9 / 2)
    # Every other frame of a 20 fps motion plays at 10 fps: 100 ms each.
    assert im.info["duration"] == 100
    assert im.size[0] > 100 and im.size[1] > 100


def test_gif_of_a_still_pose_keeps_every_frame(walking_joints, tmp_path):
  still = np.repeat(walking_joints[:1], 4, axis=0)
  path = skeleton.render_skeleton_gif(still, tmp_path / "still.gif", CHAINS)
  with Image.open(path) as im:
    assert im.n_frames == 4


def test_frame_strip_png(walking_joints, tmp_path):
  path = skeleton.render_skeleton_frames_png(walking_joints, tmp_path / "strip.png", CHAINS,
                                             num_frames=4)
  with Image.open(path) as im:
    assert im.format == "PNG"
    width, height = im.size
    assert width > 3 * height
    pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 0
  one = skeleton.render_skeleton_frames_png(walking_joints[:1], tmp_path / "one.png", CHAINS)
  with Image.open(one) as im:
    assert im.size[0] < width


def test_skeleton_input_errors(walking_joints, tmp_path):
  with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
    skeleton.render_skeleton_gif(walking_joints[..., :2], tmp_path / "a.gif", CHAINS)
  with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
    skeleton.render_skeleton_frames_png(walking_joints[0], tmp_path / "a.png", CHAINS)
  with pytest.raises(ValueError, match="chain 1 names joints \\[30\\] outside 0..21"):
    skeleton.render_skeleton_gif(walking_joints, tmp_path / "a.gif", [[0, 1], [0, 30]])
  with pytest.raises(ValueError, match="must end in .gif"):
    skeleton.render_skeleton_gif(walking_joints, tmp_path / "a.png", CHAINS)
  with pytest.raises(ValueError, match="stride"):
    skeleton.render_skeleton_gif(walking_joints, tmp_path / "a.gif", CHAINS, stride=0)
  bad = walking_joints.copy()
  bad[3, 4, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    skeleton.render_skeleton_frames_png(bad, tmp_path / "a.png", CHAINS)
  assert not list(tmp_path.iterdir())


@pytest.fixture()
def lexical_vector():
  vocab = [f"word{i}" for i in range(200)] + ["walk", "##ing", "jump", "wave"]
  weights = np.zeros(len(vocab))
  weights[[200, 201, 202, 203]] = [2.5, 0.4, 1.7, 1.1]
  weights[:30] = np.linspace(0.3, 0.01, 30)
  return weights, vocab


def test_top_words_order_and_positivity(lexical_vector):
  weights, vocab = lexical_vector
  top = lexical.top_words(weights, vocab, top=4)
  assert [w for w, _ in top] == ["walk", "jump", "wave", "##ing"]
  assert [v for _, v in top] == [2.5, 1.7, 1.1, 0.4]
  assert len(lexical.top_words(weights, vocab, top=1000)) == 34


def test_word_pictures_are_pngs(lexical_vector, tmp_path):
  weights, vocab = lexical_vector
  bars = lexical.plot_top_words(weights, vocab, tmp_path / "bars.png", top=10, title="walk")
  cloud = lexical.plot_word_cloud(weights, vocab, tmp_path / "cloud.png", top=50)
  empty = lexical.plot_top_words(np.zeros(len(vocab)), vocab, tmp_path / "empty.png")
  for path in (bars, cloud, empty):
    with Image.open(path) as im:
      assert im.format == "PNG"
      assert np.asarray(im.convert("L")).std() > 0
  with Image.open(bars) as short, Image.open(
      lexical.plot_top_words(weights, vocab, tmp_path / "tall.png", top=30)) as tall:
    assert tall.size[1] > short.size[1]


def test_bar_chart_shows_the_top_words_with_their_weights(lexical_vector, tmp_path):
  weights, vocab = lexical_vector
  top = lexical.top_words(weights, vocab, top=6)
  fig = lexical.top_words_figure(weights, vocab, top=6, title="walk")
  ax = fig.axes[0]
  by_height = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]),
                     reverse=True)
  assert [label for _, label in by_height] == [w for w, _ in top]
  widths = sorted(((p.get_y(), p.get_width()) for p in ax.patches), reverse=True)
  np.testing.assert_allclose([w for _, w in widths], [v for _, v in top], rtol=1e-6)
  # The saved picture has as many coloured bars, longest on top.
  path = lexical.plot_top_words(weights, vocab, tmp_path / "bars.png", top=6)
  with Image.open(path) as im:
    rgb = np.asarray(im.convert("RGB")).astype(int)
  coloured = (rgb.max(-1) - rgb.min(-1)) > 60          # bars; text and frame are grey
  rows = np.flatnonzero(coloured.sum(1) > 5)
  bars = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
  assert len(bars) == 6
  lengths = [coloured[b].sum(1).max() for b in bars]
  assert lengths == sorted(lengths, reverse=True)
  assert lengths[-1] / lengths[0] == pytest.approx(top[-1][1] / top[0][1], abs=0.05)


def test_lexical_input_errors(lexical_vector, tmp_path):
  weights, vocab = lexical_vector
  with pytest.raises(ValueError, match=r"shape \(V,\)"):
    lexical.plot_top_words(weights[None], vocab, tmp_path / "a.png")
  with pytest.raises(ValueError, match="vocab has 203 entries but weights has V=204"):
    lexical.plot_word_cloud(weights, vocab[:-1], tmp_path / "a.png")
  with pytest.raises(ValueError, match="must end in .png"):
    lexical.plot_word_cloud(weights, vocab, tmp_path / "a.jpg")


def test_pca_matches_covariance_eigenvectors():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, 6)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.2, 0.1]) + 7.0
  coords, explained = embedding_pca.pca_2d(x)
  centred = x - x.mean(axis=0)
  eigvals, eigvecs = np.linalg.eigh(np.cov(centred, rowvar=False))
  order = np.argsort(eigvals)[::-1][:2]
  expected = centred @ eigvecs[:, order]
  for c in range(2):
    assert np.allclose(coords[:, c], expected[:, c]) or np.allclose(coords[:, c],
                                                                     -expected[:, c])
  np.testing.assert_allclose(explained, eigvals[order] / eigvals.sum(), rtol=1e-8)
  one_dim, one_explained = embedding_pca.pca_2d(np.arange(5.0)[:, None])
  np.testing.assert_allclose(one_dim[:, 0], [2.0, 1.0, 0.0, -1.0, -2.0])
  assert np.all(one_dim[:, 1] == 0) and one_explained.tolist() == [1.0, 0.0]
  on_a_line, line_explained = embedding_pca.pca_2d(np.outer(np.arange(5.0), [1.0, 2.0]))
  np.testing.assert_allclose(on_a_line[:, 1], 0.0, atol=1e-12)
  assert line_explained[0] == pytest.approx(1.0)


def test_pca_plot_png_and_errors(tmp_path):
  rng = np.random.default_rng(1)
  features = rng.normal(size=(40, 16))
  labels = ["walk", "run", "jump", "wave"] * 10
  path = embedding_pca.plot_pca(features, labels, tmp_path / "pca.png", title="clips")
  with Image.open(path) as im:
    assert im.format == "PNG"
  many = embedding_pca.plot_pca(features, [f"a{i}" for i in range(40)], tmp_path / "many.png")
  with Image.open(many) as im:
    assert im.format == "PNG"
  with pytest.raises(ValueError, match="got 39 labels for 40 feature rows"):
    embedding_pca.plot_pca(features, labels[:-1], tmp_path / "b.png")
  with pytest.raises(ValueError, match=r"\(N, D\) with N ≥ 2"):
    embedding_pca.plot_pca(features[:1], labels[:1], tmp_path / "b.png")
  with pytest.raises(ValueError, match=r"\(N, D\)"):
    embedding_pca.plot_pca(features[0], labels[:1], tmp_path / "b.png")
