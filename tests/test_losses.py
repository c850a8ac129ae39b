"""The sparsity terms of the lexical phases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lexmo_jax import losses


def test_flops_penalty_is_the_squared_mean_weight_of_each_word():
  v = jnp.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
  assert float(losses.flops_penalty(v)) == pytest.approx(2.0 ** 2 + 0.0 + 1.0 ** 2)


def test_off_target_l1_counts_only_words_outside_each_rows_targets():
  v = jnp.array([[1.0, 0.5, 2.0], [3.0, 0.25, 0.0]])
  on = jnp.array([[True, False, False], [False, False, True]])
  # Row 0: 0.5 + 2.0 off target; row 1: 3.0 + 0.25.
  assert float(losses.off_target_l1(v, on)) == pytest.approx((2.5 + 3.25) / 2)
  assert float(losses.off_target_l1(v, jnp.ones_like(on))) == 0.0
  # Its gradient reaches only the off-target weights.
  g = jax.grad(lambda x: losses.off_target_l1(x, on))(v)
  np.testing.assert_allclose(np.asarray(g), [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])
