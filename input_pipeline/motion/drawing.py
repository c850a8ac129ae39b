"""Stick-figure pictures of a motion: an animated GIF and a strip of frames.

Joint positions follow HumanML3D: metres, y up, the body initially facing +z. The view
follows the root over the ground, so long walks stay in frame; the floor grid is fixed to
the world, so it slides under the body and shows the speed, and the root's path so far is
drawn on the floor.

Figures are built without pyplot (a bare Figure rendered by Agg), so importing or calling
this module never changes the interactive backend of the caller.
"""
from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np
from matplotlib import animation
from matplotlib import colormaps
from matplotlib.figure import Figure
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

_FLOOR_STEP = 0.5  # metres between floor grid lines
_VIEW = {"elev": 18.0, "azim": -60.0}
_ZOOM = 1.1  # the default leaves a wide empty margin around 3-D axes


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

  def __init__(self, joints: np.ndarray, chains: Sequence[Sequence[int]]):
    self.joints = joints
    self.chains = [list(c) for c in chains]
    self.floor = float(joints[..., 1].min())
    root_xz = joints[:, :1, [0, 2]]
    reach = float(np.abs(joints[..., [0, 2]] - root_xz).max())
    height = float(joints[..., 1].max()) - self.floor
    # One radius for the whole motion keeps the body's scale steady between frames.
    self.radius = max(0.6 * height, 1.15 * reach, 0.5)
    cmap = colormaps["tab10"]
    self.colors = [cmap(i % 10) for i in range(len(self.chains))]

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
    ax.plot(px, py, np.full(px.shape, self.floor), color="tab:red", lw=1.5, zorder=2)
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
      ax.text2D(0.02, 0.02, label, transform=ax.transAxes, fontsize=8)
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


def render_skeleton_gif(joints, path, chains: Sequence[Sequence[int]], fps: float = 20,
                        title: str = "", stride: int = 1) -> pathlib.Path:
  """Writes an animated GIF of a motion.

  Args:
    joints: (T, J, 3) joint positions (HumanML3D: metres, y up).
    path: output file, ending in .gif.
    chains: kinematic chains, each a list of joint indices drawn as connected bones
      (HumanML3D's five: legs, spine, arms).
    fps: frame rate of the motion (20 for HumanML3D, 12.5 for KIT-ML).
    title: text above the animation.
    stride: draw every stride-th frame; playback keeps real-time speed.

  Returns:
    The path written. The GIF has ceil(T / stride) frames.
  """
  joints = _check_joints(joints, chains)
  if not isinstance(stride, (int, np.integer)) or stride < 1:
    raise ValueError(f"stride must be a positive integer, got {stride!r}")
  if not fps > 0:
    raise ValueError(f"fps must be positive, got {fps!r}")
  path = _check_path(path, ".gif")
  scene = _Scene(joints, chains)
  fig = Figure(figsize=(4.0, 4.4), dpi=80)
  ax = fig.add_axes((0.0, 0.0, 1.0, 0.93 if title else 1.0), projection="3d")
  if title:
    fig.suptitle(title, fontsize=10, y=0.98)
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
                               fps: float = 20) -> pathlib.Path:
  """Writes a strip of evenly spaced frames of a motion as one PNG.

  Args:
    joints: (T, J, 3) joint positions (HumanML3D: metres, y up).
    path: output file, ending in .png.
    chains: kinematic chains, each a list of joint indices.
    num_frames: panels in the strip (at most T), first and last frame included.
    title: text above the strip.
    fps: frame rate of the motion, for the time under each panel.

  Returns:
    The path written.
  """
  joints = _check_joints(joints, chains)
  if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
    raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
  path = _check_path(path, ".png")
  num_frames = min(num_frames, joints.shape[0])
  picks = np.unique(np.round(np.linspace(0, joints.shape[0] - 1, num_frames)).astype(int))
  scene = _Scene(joints, chains)
  top = 0.85 if title else 0.95
  fig = Figure(figsize=(2.4 * len(picks), 2.9 if title else 2.7), dpi=100)
  width = 1.0 / len(picks)
  for i, t in enumerate(picks):
    ax = fig.add_axes((i * width, 0.0, width, top), projection="3d")
    scene.draw(ax, int(t), f"{t / fps:.2f} s")
  if title:
    fig.suptitle(title, fontsize=11)
  fig.savefig(path, format="png")
  return path
