"""The transformer blocks' own pieces: dropout and its random bits."""
import jax
import jax.numpy as jnp
import numpy as np

from lexmo_jax.models.transformer import Dropout, uniform16


def test_uniform16_is_uniform_and_independent_across_keys():
  a = np.asarray(uniform16(jax.random.key(0), (1000, 1001)), np.int64)
  b = np.asarray(uniform16(jax.random.key(1), (1000, 1001)), np.int64)
  assert a.shape == (1000, 1001)
  # 64 equal buckets: chi-square with 63 degrees of freedom stays well under 120.
  counts = np.bincount(a.ravel() >> 10, minlength=64)
  expected = a.size / 64
  assert ((counts - expected) ** 2 / expected).sum() < 120
  # Neighbouring elements, and two keys, are uncorrelated.
  flat = a.ravel().astype(np.float64)
  assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01
  assert abs(np.corrcoef(flat, b.ravel())[0, 1]) < 0.01
  np.testing.assert_array_equal(a, np.asarray(uniform16(jax.random.key(0), (1000, 1001))))


def test_dropout_drops_at_its_rate_and_keeps_the_mean():
  x = jnp.ones((512, 513))
  layer = Dropout(0.1)
  y = layer.apply({}, x, False, rngs={"dropout": jax.random.key(3)})
  dropped = float(jnp.mean(y == 0))
  assert abs(dropped - 0.1) < 0.003
  assert abs(float(jnp.mean(y)) - 1.0) < 0.005
  kept = np.asarray(y[y > 0])
  np.testing.assert_allclose(kept, 1.0 / (1.0 - round(0.1 * 2**16) / 2**16), rtol=1e-6)
  assert layer.apply({}, x, True) is x
  np.testing.assert_array_equal(Dropout(1.0).apply({}, x, False,
                                                   rngs={"dropout": jax.random.key(0)}), 0.0)
