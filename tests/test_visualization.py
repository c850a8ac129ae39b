"""Pictures are valid image files of the expected size and frame count; they name what they
show (side legend, axis labels, full titles, source); bad input is named."""
import math

import numpy as np
import pytest
from PIL import Image

from matplotlib.text import Text

from input_pipeline import dataset_kinds
from input_pipeline.motion import drawing as skeleton
from lexmo_jax.visualization import embedding_pca, lexical

# HumanML3D's kinematic chains (T2M paramUtil): legs, spine to head, arms.
CHAINS = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15],
          [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]
LONG_TITLE = ("M004211: a person walks forward slowly, turns around to the left and then walks "
              "back to where they started while waving the right hand above the head")


def _texts(fig):
  """Every non-empty text drawn on a figure."""
  return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _words(text):
  return " ".join(text.split()).split(" ")


def _pixels_near(rgb, colour, tol=40):
  """How many pixels of an (H, W, 3) image lie within tol of a '#rrggbb' colour."""
  target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
  return int(np.sum(np.abs(rgb.astype(int) - target).max(-1) <= tol))


def _first_frame(path):
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB")), im.size


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


def test_chain_sides_of_both_dataset_kinds():
  human = dataset_kinds.get_kind("humanml3d")
  assert skeleton.chain_sides(human.kinematic_chains, human.left_joints, human.right_joints) == [
      "right", "left", "centre", "right", "left"]
  kit = dataset_kinds.get_kind("kitml")
  # KIT-ML's chains follow MMM's names: the first leg and arm are the left ones.
  assert skeleton.chain_sides(kit.kinematic_chains, kit.left_joints, kit.right_joints) == [
      "left", "right", "centre", "left", "right"]


def test_gif_colours_the_sides_and_names_them(walking_joints, tmp_path):
  rgb, _ = _first_frame(skeleton.render_skeleton_gif(walking_joints, tmp_path / "w.gif",
                                                     CHAINS))
  left, right = skeleton.SIDE_COLOURS["left"], skeleton.SIDE_COLOURS["right"]
  assert _pixels_near(rgb, left) > 100 and _pixels_near(rgb, right) > 100
  # The sides come from the HumanML3D kind the chains belong to; the legend names them.
  fig, _ = skeleton._gif_figure("", skeleton._resolve_sides(CHAINS, None))
  (legend,) = fig.legends
  assert [t.get_text() for t in legend.get_texts()] == ["left", "right", "path of the root"]
  assert [h.get_color() for h in legend.legend_handles[:2]] == [left, right]
  # Explicit sides win: all centre leaves no blue or red, legend included.
  rgb, _ = _first_frame(skeleton.render_skeleton_gif(walking_joints, tmp_path / "c.gif",
                                                     CHAINS, sides=["centre"] * 5))
  assert _pixels_near(rgb, left) == 0 and _pixels_near(rgb, right) == 0
  # A skeleton of no known kind still draws, one colour per chain, without side legend.
  other = skeleton.render_skeleton_gif(walking_joints, tmp_path / "o.gif", [[0, 1], [0, 2]])
  assert _pixels_near(_first_frame(other)[0], left, tol=15) == 0  # tab10 blue is #1f77b4
  fig, _ = skeleton._gif_figure("", skeleton._resolve_sides([[0, 1], [0, 2]], None))
  assert [t.get_text() for t in fig.legends[0].get_texts()] == ["path of the root"]


def test_gif_title_is_wrapped_whole_and_the_picture_grows(walking_joints, tmp_path):
  fig, _ = skeleton._gif_figure(LONG_TITLE, None)
  (title,) = [t for t in _texts(fig) if t.startswith("M004211")]
  assert title.count("\n") >= 2
  assert _words(title) == _words(LONG_TITLE)
  _, short = _first_frame(skeleton.render_skeleton_gif(walking_joints[:2], tmp_path / "s.gif",
                                                       CHAINS, title="walks"))
  _, long = _first_frame(skeleton.render_skeleton_gif(walking_joints[:2], tmp_path / "l.gif",
                                                      CHAINS, title=LONG_TITLE))
  assert short[0] == long[0] >= 400
  assert long[1] > short[1] >= short[0]


def test_frame_strip_colours_the_sides(walking_joints, tmp_path):
  path = skeleton.render_skeleton_frames_png(walking_joints, tmp_path / "s.png", CHAINS,
                                             num_frames=3, title=LONG_TITLE)
  rgb, _ = _first_frame(path)
  for side in ("left", "right", "centre"):
    assert _pixels_near(rgb, skeleton.SIDE_COLOURS[side], tol=20) > 50


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
  with pytest.raises(ValueError, match="sides names 2 sides for 5 chains"):
    skeleton.render_skeleton_gif(walking_joints, tmp_path / "a.gif", CHAINS,
                                 sides=["left", "right"])
  with pytest.raises(ValueError, match=r"one of left, right, centre, got \['middle'\]"):
    skeleton.render_skeleton_frames_png(walking_joints, tmp_path / "a.png", CHAINS,
                                        sides=["left", "right", "middle", "left", "right"])
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


def test_bar_chart_of_a_description_adds_forms():
  vocab = ["walk", "walks", "walking", "##s", "jump", "wave"]
  weights = np.array([0.5, 0.7, 0.9, 1.5, 1.2, 0.1])
  fig = lexical.top_words_figure(weights, vocab, top=3, forms_together=True)
  ax = fig.axes[0]
  by_height = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]),
                     reverse=True)
  assert [label for _, label in by_height] == ["walk/walks/walking", "##s", "jump"]
  widths = sorted(((p.get_y(), p.get_width()) for p in ax.patches), reverse=True)
  np.testing.assert_allclose([w for _, w in widths], [2.1, 1.5, 1.2], rtol=1e-6)
  assert ax.get_xlabel() == lexical.WEIGHT_LABEL + " (forms of a word added)"


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


def test_bar_chart_labels_its_axes_names_its_source_and_keeps_the_title(lexical_vector):
  weights, vocab = lexical_vector
  fig = lexical.top_words_figure(weights, vocab, top=6, title=LONG_TITLE,
                                 source="runs/demo/lexcmlp (lexcmlp step 400)")
  ax = fig.axes[0]
  assert ax.get_xlabel() == "weight in the lexical vector"
  assert ax.get_ylabel() == "word"
  assert "\n" in ax.get_title() and _words(ax.get_title()) == _words(LONG_TITLE)
  assert "source: runs/demo/lexcmlp (lexcmlp step 400)" in _texts(fig)
  bare = lexical.top_words_figure(weights, vocab, top=6)
  assert not [t for t in _texts(bare) if t.startswith("source")]
  assert bare.get_figheight() < fig.get_figheight()


def test_every_word_chart_can_name_its_source(lexical_vector, tmp_path):
  weights, vocab = lexical_vector
  top = lexical.top_words(weights, vocab, 5)
  charts = {
      "cloud": lambda path, **kw: lexical.plot_word_cloud(weights, vocab, path, **kw),
      "distribution": lambda path, **kw: lexical.plot_word_distribution(
          [("walk", 9), ("jump", 4)], 12, path, **kw),
      "side_by_side": lambda path, **kw: lexical.plot_words_side_by_side(
          [("caption", top), ("motion", top[::-1])], path, **kw),
  }
  for name, draw in charts.items():
    with Image.open(draw(tmp_path / f"{name}.png", title=LONG_TITLE)) as plain, Image.open(
        draw(tmp_path / f"{name}_src.png", title=LONG_TITLE, source="runs/x (lexmmm step 9)")
        ) as sourced:
      assert plain.format == sourced.format == "PNG"
      plain_px, sourced_px = (np.asarray(im.convert("L")) for im in (plain, sourced))
    if name == "cloud":
      assert plain_px.shape == sourced_px.shape == (450, 800)
      # The source line is ink in the bottom band that the plain cloud leaves white.
      assert (sourced_px[-20:] < 200).sum() > (plain_px[-20:] < 200).sum() + 50
    else:
      assert sourced_px.shape[0] > plain_px.shape[0]


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


def test_label_groups_keep_the_most_frequent_and_group_the_rest():
  labels = ["walk"] * 5 + ["run"] * 3 + ["other"] * 2 + ["jump"] * 3 + ["sit", "kick"]
  names, grouped, rarer = embedding_pca.label_groups(labels, max_colours=6)
  assert names == ["walk", "run", "jump", "sit", "kick"] and rarer == 0
  assert grouped == labels
  names, grouped, rarer = embedding_pca.label_groups(labels, max_colours=3)
  assert names == ["walk", "run"] and rarer == 3
  assert grouped.count("other") == 2 + 3 + 2
  with pytest.raises(ValueError, match="max_colours"):
    embedding_pca.label_groups(labels, max_colours=1)


def test_pca_figure_names_every_colour_and_what_it_plots():
  rng = np.random.default_rng(2)
  # 25 actions, action k held by 30 - k points: the 6 rarest are grouped.
  labels = [f"act{k:02d}" for k in range(25) for _ in range(30 - k)]
  features = rng.normal(size=(len(labels), 12))
  fig = embedding_pca.pca_figure(features, labels, subject="the pooled [CLS] states",
                                 label_name="action", source="runs/x (lexmmm step 9)")
  ax = fig.axes[0]
  entries = [t.get_text() for t in ax.get_legend().get_texts()]
  assert len(entries) == embedding_pca.MAX_COLOURS == 20
  assert entries[:19] == [f"act{k:02d} ({30 - k})" for k in range(19)]
  assert entries[19] == f"other ({sum(30 - k for k in range(19, 25))}, 6 rarer labels)"
  colours = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections]
  assert len(set(colours)) == len(colours) == 20
  # Every point is drawn once, in the scatter of its entry.
  assert sum(len(c.get_offsets()) for c in ax.collections) == len(labels)
  assert ax.get_xlabel().startswith("principal component 1 (")
  assert ax.get_xlabel().endswith("% of the variance)")
  assert ax.get_ylabel().startswith("principal component 2 (")
  assert _words(ax.get_title()) == _words("PCA of the pooled [CLS] states, coloured by action")
  assert ax.get_legend().get_title().get_text() == "action (points)"
  assert "source: runs/x (lexmmm step 9)" in _texts(fig)
  few = embedding_pca.pca_figure(features[:40], labels[:40], title=LONG_TITLE)
  assert [t.get_text() for t in few.axes[0].get_legend().get_texts()] == ["act00 (30)",
                                                                          "act01 (10)"]
  assert _words(few.axes[0].get_title()) == _words(LONG_TITLE)


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
