"""Cutting a normalised motion (B, T, F) into tokens (B, N, P) with a validity mask.

Two tokenisations, chosen by `config.motion.tokenizer`:
- `frames`: one token per `frames_per_token` consecutive frames of the feature vectors.
- `patches` (MotionPatches): joint positions are grouped into the kinematic chains, each
  chain resampled to `points_per_chain` points per frame, giving a (T × C·P × 3) "image"
  cut into `patch_frames` × P patches (one chain, `patch_frames` frames each).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from input_pipeline import dataset_kinds


def _pad_time(x, mask_bt, multiple: int):
  t = x.shape[1]
  pad = (-t) % multiple
  if pad:
    x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    mask_bt = jnp.pad(mask_bt, [(0, 0), (0, pad)])
  return x, mask_bt


def frame_tokens(motion_btf, mask_bt, frames_per_token: int):
  """Returns (tokens (B, T/k, k·F), mask (B, T/k))."""
  x, m = _pad_time(motion_btf, mask_bt, frames_per_token)
  b, t, f = x.shape
  n = t // frames_per_token
  return (x.reshape(b, n, frames_per_token * f),
          m.reshape(b, n, frames_per_token).any(axis=-1))


@functools.lru_cache(maxsize=None)
def chain_resampling_matrix(kind: str, points_per_chain: int) -> np.ndarray:
  """(C·P, J) matrix that linearly resamples every kinematic chain to P points."""
  body = dataset_kinds.get_kind(kind)
  rows = []
  for chain in body.kinematic_chains:
    s = np.linspace(0.0, len(chain) - 1, points_per_chain)
    lo = np.floor(s).astype(int)
    hi = np.minimum(lo + 1, len(chain) - 1)
    frac = s - lo
    for i in range(points_per_chain):
      row = np.zeros(body.num_joints, np.float32)
      row[chain[lo[i]]] += 1.0 - frac[i]
      row[chain[hi[i]]] += frac[i]
      rows.append(row)
  return np.stack(rows)


def joint_positions_from_features(motion_btf, num_joints: int):
  """Normalised joint positions (B, T, J, 3) read off normalised features.

  Joints 1..J−1 are the root-relative positions (the `ric` block); the root "joint" carries
  the root's xz velocity and height, so the trajectory stays visible to the encoder.
  """
  b, t, _ = motion_btf.shape
  groups = dataset_kinds.feature_groups(num_joints)
  ric = motion_btf[..., groups["joint_positions"]].reshape(b, t, num_joints - 1, 3)
  vx, height = groups["root_linear_velocity"].start, groups["root_height"].start
  root = jnp.stack([motion_btf[..., vx], motion_btf[..., height], motion_btf[..., vx + 1]],
                   axis=-1)
  return jnp.concatenate([root[:, :, None], ric], axis=2)


def patch_tokens(motion_btf, mask_bt, kind: str, points_per_chain: int, patch_frames: int):
  """Returns (tokens (B, T/pf · C, pf·P·3), mask (B, T/pf · C))."""
  body = dataset_kinds.get_kind(kind)
  joints_btj3 = joint_positions_from_features(motion_btf, body.num_joints)
  resample_cj = jnp.asarray(chain_resampling_matrix(kind, points_per_chain))
  image_btc3 = jnp.einsum("cj,btjk->btck", resample_cj, joints_btj3)
  image_btc3, m = _pad_time(image_btc3, mask_bt, patch_frames)
  b, t, _, _ = image_btc3.shape
  chains = len(body.kinematic_chains)
  nt = t // patch_frames
  x = image_btc3.reshape(b, nt, patch_frames, chains, points_per_chain, 3)
  x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, nt * chains, patch_frames * points_per_chain * 3)
  m = jnp.repeat(m.reshape(b, nt, patch_frames).any(axis=-1), chains, axis=1)
  return x, m


def num_tokens(tokenizer: str, max_frames: int, frames_per_token: int, patch_frames: int,
               kind: str) -> int:
  """N, the motion tokens of a max_frames clip: ceil(T / frames_per_token) frames tokens,
  or ceil(T / patch_frames) × chains MotionPatches tokens."""
  if tokenizer == "frames":
    return -(-max_frames // frames_per_token)
  return -(-max_frames // patch_frames) * len(dataset_kinds.get_kind(kind).kinematic_chains)
