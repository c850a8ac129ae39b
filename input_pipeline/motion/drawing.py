"""Stick-figure pictures of a motion: an animated GIF and a strip of frames.

Joint positions follow HumanML3D: metres, y up, the body initially facing +z. The view
follows the root over the ground, so long walks stay in frame; the floor grid is fixed to
the world, so it slides under the body and shows the speed, and the root's path so far is
drawn on the floor. Limbs are coloured by side (left blue, right red, the spine dark grey,
as on the browser page of `lexmo_jax.serve`) and a legend names the colours; long titles
wrap onto more lines, never cut.

Figures are built without pyplot (a bare Figure rendered by Agg), so importing or calling
this module never changes the interactive backend of the caller.
"""
from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib import animation
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from input_pipeline import dataset_kinds

SIDES = ("left", "right", "centre")
SIDE_COLOURS = {"left": "#1f6fd1", "right": "#d1431f", "centre": "#333333"}
_PATH_COLOUR = "#2e9e5b"  # the root's path on the floor: neither side's colour
_FLOOR_STEP = 0.5  # metres between floor grid lines
_VIEW = {"elev": 18.0, "azim": -60.0}
_ZOOM = 1.1  # the default leaves a wide empty margin around 3-D axes
# The GIF: a square 3-D view of _GIF_VIEW_IN inches, title lines above it, at _GIF_DPI.
_GIF_VIEW_IN = 5.5
_GIF_DPI = 90
_GIF_TITLE_PT = 12
_STRIP_PANEL_IN = 2.4
_STRIP_TITLE_PT = 11
_LINE_SPACING = 1.3  # title line height, in font sizes
_CHAR_WIDTH = 0.55  # mean width of a character of the default font, in font sizes


def chain_sides(chains: Sequence[Sequence[int]], left_joints: Sequence[int],
                right_joints: Sequence[int]) -> list[str]:
  """The side of each chain: 'left' or 'right' when its joints past the first lie on that
  side only, else 'centre' (the spine, or a chain that crosses).

  Args:
    chains: kinematic chains, each a list of joint indices starting at its parent joint.
    left_joints, right_joints: the body's left and right joint indices
      (`DatasetKind.left_joints`, `.right_joints`).
  """
  left, right = set(left_joints), set(right_joints)
  sides = []
  for chain in chains:
    limb = set(list(chain)[1:])
    sides.append("left" if limb & left and not limb & right else
                 "right" if limb & right and not limb & left else "centre")
  return sides


def _resolve_sides(chains: Sequence[Sequence[int]],
                   sides: Sequence[str] | None) -> list[str] | None:
  """The given sides, checked; else those of the dataset kind whose chains these are; else
  None (an unknown skeleton is drawn one colour per chain, without sides)."""
  if sides is not None:
    sides = [str(side) for side in sides]
    if len(sides) != len(chains):
      raise ValueError(f"sides names {len(sides)} sides for {len(chains)} chains")
    bad = sorted(set(sides) - set(SIDES))
    if bad:
      raise ValueError(f"sides must each be one of {', '.join(SIDES)}, got {bad}")
    return sides
  given = [tuple(int(j) for j in chain) for chain in chains]
  for kind in dataset_kinds.DATASET_KINDS.values():
    if given == [tuple(chain) for chain in kind.kinematic_chains]:
      return chain_sides(chains, kind.left_joints, kind.right_joints)
  return None


def _wrap(title: str, width_in: float, fontsize: float) -> str:
  """title broken at spaces into lines that fit width_in inches at fontsize points."""
  chars = max(int(width_in * 72 / (_CHAR_WIDTH * fontsize)), 10)
  return "\n".join(textwrap.wrap(" ".join(title.split()), chars, break_long_words=True))


def _title_height_in(title: str, fontsize: float) -> float:
  """Inches a wrapped title takes above the picture, margins included (0 for none)."""
  if not title:
    return 0.0
  return (title.count("\n") + 1) * _LINE_SPACING * fontsize / 72 + 0.2


def _add_legend(fig: Figure, sides: list[str] | None, fontsize: float, **where) -> None:
  """A figure legend: the colour of each side drawn, and the root's path."""
  handles = [Line2D([], [], color=SIDE_COLOURS[side], lw=3, label=side)
             for side in ("left", "right") if sides is not None and side in sides]
  handles.append(Line2D([], [], color=_PATH_COLOUR, lw=1.5, label="path of the root"))
  fig.legend(handles=handles, fontsize=fontsize, frameon=False, handlelength=1.6,
             borderaxespad=0.3, **where)


def _check_joints(joints, chains: Sequence[Sequence[int]]) -> np.ndarray:
  joints = np.asarray(joints, dtype=np.float64)
  if joints.ndim != 3 or joints.shape[-1] != 3 or joints.shape[0] < 1 or joints.shape[1] < 1:
    raise ValueError(f"joints must be (T, J, 3) positions with T, J ≥ 1, got shape "
                     f"{joints.shape}")
  if not np.all(np.isfinite(joints)):
    raise ValueError("joints hold NaN or infinite positions")
  num_joints = joints.shape[1]
  if not chains:
    raise ValueError("chains must list at least one kinematic chain of joint indices")
  for c, chain in enumerate(chains):
    chain = list(chain)
    if len(chain) < 2:
      raise ValueError(f"chain {c} needs at least two joints to draw a bone, got {chain}")
    bad = [j for j in chain if not isinstance(j, (int, np.integer)) or not 0 <= j < num_joints]
    if bad:
      raise ValueError(f"chain {c} names joints {bad} outside 0..{num_joints - 1}")
  return joints


def _check_path(path, suffix: str) -> pathlib.Path:
  path = pathlib.Path(path)
  if path.suffix.lower() != suffix:
    raise ValueError(f"{path} must end in {suffix}")
  path.parent.mkdir(parents=True, exist_ok=True)
  return path


def _to_plot(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """HumanML3D (x, y up, z) to matplotlib's (X, Y, Z up) by a rotation, not a mirror.

  Swapping y and z alone would flip left and right; (x, −z, y) keeps the handedness.
  """
  return xyz[..., 0], -xyz[..., 2], xyz[..., 1]


class _Scene:
  """What every frame of one motion shares: floor height, view radius, colours."""

  def __init__(self, joints: np.ndarray, chains: Sequence[Sequence[int]],
               sides: list[str] | None):
    self.joints = joints
    self.chains = [list(c) for c in chains]
    self.floor = float(joints[..., 1].min())
    root_xz = joints[:, :1, [0, 2]]
    reach = float(np.abs(joints[..., [0, 2]] - root_xz).max())
    height = float(joints[..., 1].max()) - self.floor
    # One radius for the whole motion keeps the body's scale steady between frames.
    self.radius = max(0.6 * height, 1.15 * reach, 0.5)
    if sides is None:
      cmap = colormaps["tab10"]
      self.colors = [cmap(i % 10) for i in range(len(self.chains))]
    else:
      self.colors = [SIDE_COLOURS[side] for side in sides]

  def draw(self, ax, t: int, label: str = "", label_below: bool = False) -> None:
    ax.cla()
    # mplot3d sorts artists by mean depth, which would lay the floor over the feet; the
    # scene is simple enough to draw in a fixed order instead.
    ax.computed_zorder = False
    root = self.joints[t, 0]
    cx, cz, r = root[0], root[2], self.radius
    self._draw_floor(ax, cx, cz)
    path = self.joints[:t + 1, 0].copy()
    # 3-D axes do not clip lines to their box; NaN breaks the path where it leaves the floor.
    outside = np.any(np.abs(path[:, [0, 2]] - root[[0, 2]]) > r, axis=1)
    path[outside] = np.nan
    px, py, _ = _to_plot(path)
    ax.plot(px, py, np.full(px.shape, self.floor), color=_PATH_COLOUR, lw=1.5,
            zorder=2)
    for chain, color in zip(self.chains, self.colors):
      x, y, z = _to_plot(self.joints[t, chain])
      ax.plot(x, y, z, color=color, lw=2.5, solid_capstyle="round", zorder=3)
    x, y, z = _to_plot(self.joints[t])
    ax.scatter(x, y, z, color="black", s=4, depthshade=False, zorder=4)
    ax.set_xlim(cx - r, cx + r)
    ax.set_ylim(-cz - r, -cz + r)
    ax.set_zlim(self.floor, self.floor + 2 * r)
    ax.set_box_aspect((1, 1, 1), zoom=_ZOOM)
    ax.view_init(**_VIEW)
    ax.set_axis_off()
    if label and label_below:
      ax.text2D(0.02, 0.02, label, transform=ax.transAxes, fontsize=10)
    elif label:
      ax.set_title(label, fontsize=9)

  def _draw_floor(self, ax, cx: float, cz: float) -> None:
    r = self.radius
    corners = np.array([[cx - r, cz - r], [cx + r, cz - r], [cx + r, cz + r], [cx - r, cz + r]])
    quad = np.stack([corners[:, 0], -corners[:, 1], np.full(4, self.floor)], axis=-1)
    ax.add_collection3d(Poly3DCollection([quad], facecolor=(0.93, 0.93, 0.93, 1.0),
                                         edgecolor=(0.6, 0.6, 0.6), zorder=0))
    for along_x in (True, False):
      centre = cz if along_x else cx
      start = np.ceil((centre - r) / _FLOOR_STEP) * _FLOOR_STEP
      for v in np.arange(start, centre + r, _FLOOR_STEP):
        if along_x:
          xs, zs = np.array([cx - r, cx + r]), np.array([v, v])
        else:
          xs, zs = np.array([v, v]), np.array([cz - r, cz + r])
        ax.plot(xs, -zs, np.full(2, self.floor), color=(0.75, 0.75, 0.75), lw=0.6, zorder=1)


def _gif_figure(title: str, sides: list[str] | None):
  """The GIF's figure and its 3-D axes: title (wrapped) on top, side legend in the upper
  right of the view (the sky above the body, which the floor and the path never reach)."""
  title = _wrap(title, _GIF_VIEW_IN - 0.2, _GIF_TITLE_PT) if title else ""
  height_in = _GIF_VIEW_IN + _title_height_in(title, _GIF_TITLE_PT)
  fig = Figure(figsize=(_GIF_VIEW_IN, height_in), dpi=_GIF_DPI)
  ax = fig.add_axes((0.0, 0.0, 1.0, _GIF_VIEW_IN / height_in), projection="3d")
  if title:
    fig.text(0.5, 1.0 - 0.1 / height_in, title, ha="center", va="top",
             fontsize=_GIF_TITLE_PT, linespacing=_LINE_SPACING)
  _add_legend(fig, sides, 10, loc="upper right", bbox_to_anchor=(1.0, _GIF_VIEW_IN / height_in))
  return fig, ax


def render_skeleton_gif(joints, path, chains: Sequence[Sequence[int]], fps: float = 20,
                        title: str = "", stride: int = 1,
                        sides: Sequence[str] | None = None) -> pathlib.Path:
  """Writes an animated GIF of a motion.

  The picture is 495 pixels wide: a square view of the body with the time in its lower left
  and a legend of the side colours in its upper right, above it the title wrapped onto as
  many lines as it needs.

  Args:
    joints: (T, J, 3) joint positions (HumanML3D: metres, y up).
    path: output file, ending in .gif.
    chains: kinematic chains, each a list of joint indices drawn as connected bones
      (HumanML3D's five: legs, spine, arms).
    fps: frame rate of the motion (20 for HumanML3D, 12.5 for KIT-ML).
    title: text above the animation, wrapped to the picture's width.
    stride: draw every stride-th frame; playback keeps real-time speed.
    sides: 'left', 'right' or 'centre' per chain (`chain_sides`), drawn blue, red and dark
      grey. None takes them from the dataset kind (HumanML3D, KIT-ML) whose chains these
      are; chains of no known kind get one colour each and no side legend.

  Returns:
    The path written. The GIF has ceil(T / stride) frames.
  """
  joints = _check_joints(joints, chains)
  sides = _resolve_sides(chains, sides)
  if not isinstance(stride, (int, np.integer)) or stride < 1:
    raise ValueError(f"stride must be a positive integer, got {stride!r}")
  if not fps > 0:
    raise ValueError(f"fps must be positive, got {fps!r}")
  path = _check_path(path, ".gif")
  scene = _Scene(joints, chains, sides)
  fig, ax = _gif_figure(title, sides)
  frames = range(0, joints.shape[0], stride)
  writer = animation.PillowWriter(fps=fps / stride)
  with writer.saving(fig, str(path), dpi=fig.dpi):
    for t in frames:
      # The counter also keeps consecutive frames distinct, which GIF encoders would merge.
      scene.draw(ax, t, f"{t / fps:.2f} s  (frame {t + 1}/{joints.shape[0]})",
                 label_below=True)
      writer.grab_frame()
  return path


def render_skeleton_frames_png(joints, path, chains: Sequence[Sequence[int]],
                               num_frames: int = 6, title: str = "",
                               fps: float = 20,
                               sides: Sequence[str] | None = None) -> pathlib.Path:
  """Writes a strip of evenly spaced frames of a motion as one PNG.

  Args:
    joints: (T, J, 3) joint positions (HumanML3D: metres, y up).
    path: output file, ending in .png.
    chains: kinematic chains, each a list of joint indices.
    num_frames: panels in the strip (at most T), first and last frame included.
    title: text above the strip, wrapped to its width.
    fps: frame rate of the motion, for the time above each panel.
    sides: 'left', 'right' or 'centre' per chain, as for `render_skeleton_gif`.

  Returns:
    The path written: 240 pixels wide per panel.
  """
  joints = _check_joints(joints, chains)
  sides = _resolve_sides(chains, sides)
  if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
    raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
  path = _check_path(path, ".png")
  num_frames = min(num_frames, joints.shape[0])
  picks = np.unique(np.round(np.linspace(0, joints.shape[0] - 1, num_frames)).astype(int))
  scene = _Scene(joints, chains, sides)
  width_in = _STRIP_PANEL_IN * len(picks)
  title = _wrap(title, width_in - 0.2, _STRIP_TITLE_PT) if title else ""
  panel_in, legend_in = 2.6, 0.3
  top_in = _title_height_in(title, _STRIP_TITLE_PT) + 0.15  # the panels' times above them
  height_in = legend_in + panel_in + top_in
  fig = Figure(figsize=(width_in, height_in), dpi=100)
  width = 1.0 / len(picks)
  for i, t in enumerate(picks):
    ax = fig.add_axes((i * width, legend_in / height_in, width, panel_in / height_in),
                      projection="3d")
    scene.draw(ax, int(t), f"{t / fps:.2f} s")
  if title:
    fig.text(0.5, 1.0 - 0.1 / height_in, title, ha="center", va="top",
             fontsize=_STRIP_TITLE_PT, linespacing=_LINE_SPACING)
  _add_legend(fig, sides, 9, loc="lower center", ncol=3)
  fig.savefig(path, format="png")
  return path
