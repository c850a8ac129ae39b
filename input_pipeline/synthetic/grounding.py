"""Places a clip in the world: the weight-bearing joints stay on the floor and still.

The root is not animated by the actions. Its height puts the lowest weight-bearing joint
on the floor (y = 0) and, between contacts, follows a ballistic arc; its horizontal
motion is whatever keeps the weight-bearing joints from sliding. So the body travels
exactly as far as its steps carry it, and turns pivot about the planted foot.
"""
import numpy as np

from input_pipeline.synthetic import body
from input_pipeline.synthetic.clip import FPS, Clip

GRAVITY = 9.81


def _heights(rel: np.ndarray, contacts: np.ndarray) -> np.ndarray:
  """Root heights (T,) that put contacts on the floor, with arcs while airborne."""
  num_frames = rel.shape[0]
  grounded = contacts.any(1)
  if not grounded.any():
    raise ValueError("a clip must touch the floor at least once")
  low = np.where(contacts, rel[..., 1], np.inf).min(1)
  height = np.where(grounded, -low, np.nan)
  frames = np.arange(num_frames)
  down = frames[grounded]
  height = np.interp(frames, down, height[grounded])
  # Between the last contact a and the next one b the root rises and falls like a
  # thrown body: g/2 * s * (D - s), s the time since a, D the time in the air.
  last = np.maximum.accumulate(np.where(grounded, frames, -1))
  nxt = np.minimum.accumulate(np.where(grounded, frames, num_frames)[::-1])[::-1]
  flying = (~grounded) & (last >= 0) & (nxt < num_frames)
  s = (frames - last) / FPS
  span = (nxt - last) / FPS
  height += np.where(flying, 0.5 * GRAVITY * s * (span - s), 0.0)
  # Nothing may sink below the floor, whatever the pose.
  return np.maximum(height, -rel[..., 1].min(1))


def _travel(rel: np.ndarray, clip: Clip, heading: np.ndarray) -> np.ndarray:
  """Horizontal root displacements (T, 2) (world x, z) that keep contacts still."""
  num_frames = rel.shape[0]
  step = np.zeros((num_frames, 2))
  held = clip.contacts[1:] & clip.contacts[:-1]
  count = held.sum(1)
  slide = (rel[:-1][..., [0, 2]] - rel[1:][..., [0, 2]]) * held[..., None]
  step[1:] = slide.sum(1) / np.maximum(count, 1)[:, None]
  standing = np.concatenate([[False], count > 0])
  # In the air the body moves as the action says (a run keeps its pace, a jump
  # forward carries it forward), turned with the heading.
  c, s = np.cos(heading), np.sin(heading)
  dx, dz = clip.drift[:, 0], clip.drift[:, 1]
  push = np.stack([c * dx + s * dz, -s * dx + c * dz], -1)
  return np.where(standing[:, None], step, push)


def ground(clip: Clip, offsets: np.ndarray) -> np.ndarray:
  """Joint positions (T, 22, 3) of a clip, starting at the origin facing +z."""
  num_frames = clip.num_frames
  heading = clip.turn - clip.turn[0]
  rel = body.forward_kinematics(clip.angles, heading, np.zeros((num_frames, 3)), offsets)
  root = np.zeros((num_frames, 3))
  root[:, 1] = _heights(rel, clip.contacts)
  root[:, [0, 2]] = np.cumsum(_travel(rel, clip, heading), 0)
  return rel + root[:, None, :]
