"""Quaternions (w, x, y, z) for numpy and jax.numpy arrays alike.

Every function picks its array namespace from its inputs, so the same code runs
in the numpy feature extraction and inside a jitted jax graph. Conventions
follow HumanML3D's `common/quaternion.py`: `qmul(q, r)` is the Hamilton product
q·r and `qrot(q, v)` rotates v by q.
"""
from types import ModuleType

import numpy as np


def _is_jax(a) -> bool:
  # By module name, so that numpy-only users (the synthetic generator, which forks worker
  # processes) never import JAX and its thread pools.
  return type(a).__module__.split(".")[0] in ("jax", "jaxlib")


def array_namespace(*arrays) -> ModuleType:
  """jax.numpy when any input is a jax array (or tracer), else numpy."""
  if any(_is_jax(a) for a in arrays):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    return jnp
  return np


def qmul(q, r):
  """Hamilton product q·r: (..., 4), (..., 4) -> (..., 4)."""
  xp = array_namespace(q, r)
  qw, qx, qy, qz = (q[..., i] for i in range(4))
  rw, rx, ry, rz = (r[..., i] for i in range(4))
  return xp.stack([
      qw * rw - qx * rx - qy * ry - qz * rz,
      qw * rx + qx * rw + qy * rz - qz * ry,
      qw * ry - qx * rz + qy * rw + qz * rx,
      qw * rz + qx * ry - qy * rx + qz * rw,
  ], axis=-1)


def qinv(q):
  """Conjugate, the inverse of a unit quaternion: (..., 4) -> (..., 4)."""
  xp = array_namespace(q)
  return q * xp.asarray([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qrot(q, v):
  """Rotates vectors v by unit quaternions q: (..., 4), (..., 3) -> (..., 3)."""
  xp = array_namespace(q, v)
  w, axis = q[..., :1], q[..., 1:]
  uv = xp.cross(axis, v)
  uuv = xp.cross(axis, uv)
  return v + 2.0 * (w * uv + uuv)


def qbetween(v0, v1):
  """Unit quaternion of the shortest rotation taking v0 onto v1: (..., 3) x2 -> (..., 4).

  For opposite vectors, where the shortest rotation is not unique, it turns
  half a circle about an axis perpendicular to v0 (HumanML3D gives NaN there).
  """
  xp = array_namespace(v0, v1)
  axis = xp.cross(v0, v1)
  scale = xp.sqrt((v0**2).sum(-1, keepdims=True) * (v1**2).sum(-1, keepdims=True))
  w = scale + (v0 * v1).sum(-1, keepdims=True)
  q = xp.concatenate([w, axis], axis=-1)
  norm = xp.linalg.norm(q, axis=-1, keepdims=True)
  # Crossing v0 with the coordinate axis it is least aligned with never gives 0.
  least = xp.argmin(xp.abs(v0), axis=-1)
  basis = xp.eye(3, dtype=v0.dtype)[least]
  half_turn = xp.concatenate([xp.zeros_like(w), xp.cross(v0, basis)], axis=-1)
  half_turn = half_turn / xp.linalg.norm(half_turn, axis=-1, keepdims=True)
  opposite = norm <= 1e-6 * scale
  return xp.where(opposite, half_turn, q / xp.where(opposite, 1.0, norm))


def about_y(angle):
  """Quaternion (cos a, 0, sin a, 0): a rotation by 2·angle about +y. (...,) -> (..., 4)."""
  xp = array_namespace(angle)
  zero = xp.zeros_like(angle)
  return xp.stack([xp.cos(angle), zero, xp.sin(angle), zero], axis=-1)


def to_matrix(q):
  """Rotation matrices of unit quaternions: (..., 4) -> (..., 3, 3)."""
  xp = array_namespace(q)
  w, x, y, z = (q[..., i] for i in range(4))
  two_s = 2.0 / (q * q).sum(-1)
  rows = [
      1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
      two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
      two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
  ]
  return xp.stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))


def to_cont6d(q):
  """Continuous 6D rotation (first two matrix columns, concatenated): (..., 4) -> (..., 6)."""
  xp = array_namespace(q)
  m = to_matrix(q)
  return xp.concatenate([m[..., 0], m[..., 1]], axis=-1)


def cont6d_to_matrix(c):
  """Gram-Schmidt back to a rotation matrix: (..., 6) -> (..., 3, 3)."""
  xp = array_namespace(c)
  x = c[..., :3] / xp.linalg.norm(c[..., :3], axis=-1, keepdims=True)
  z = xp.cross(x, c[..., 3:])
  z = z / xp.linalg.norm(z, axis=-1, keepdims=True)
  y = xp.cross(z, x)
  return xp.stack([x, y, z], axis=-1)
