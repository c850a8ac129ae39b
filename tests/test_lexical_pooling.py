"""Fused lexical pooling equals the unfused computation, values and gradients, ties included."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from input_pipeline import tokenizer as tokenizer_lib
from lexmo_jax.models import lexical_pooling
from lexmo_jax.models.build import random_batch
from lexmo_jax.train.compile_report import placeholder_constants
from lexmo_jax.train.state import merge_params, split_params
from lexmo_jax.train.trainer import build_trainer


def inputs(seed=0, b=3, t=7, d=16, v=101, ties=False):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(b, t, d)).astype(np.float32)
  if ties:  # whole tokens repeated: every word's maximum is shared by two tokens
    x[:, 4] = x[:, 1]
    x[:, 5] = x[:, 1]
  projection = rng.normal(size=(v, d)).astype(np.float32) / np.sqrt(d)
  bias = rng.normal(size=(v,)).astype(np.float32) * 0.1
  lengths = rng.integers(1, t + 1, size=b)
  lengths[0] = t
  mask = np.arange(t)[None] < lengths[:, None]
  return jnp.asarray(x), jnp.asarray(projection), jnp.asarray(bias), jnp.asarray(mask)


def objective(chunk_size, weights_bv):
  def f(x, projection, bias, mask):
    z = lexical_pooling.max_logits(x, projection, bias, mask, chunk_size)
    # A loss that reads every coordinate through the lexical map, as the phases do.
    return jnp.sum(weights_bv * jnp.log1p(jax.nn.relu(z))) + jnp.sum(jnp.tanh(z) ** 2)
  return f


@pytest.mark.parametrize("chunk_size", [1, 16, 37, 101, 4096])
@pytest.mark.parametrize("ties", [False, True])
def test_fused_equals_unfused_values_and_gradients(chunk_size, ties):
  x, projection, bias, mask = inputs(seed=chunk_size, ties=ties)
  z_ref = lexical_pooling.max_logits(x, projection, bias, mask, 0)
  z = lexical_pooling.max_logits(x, projection, bias, mask, chunk_size)
  np.testing.assert_allclose(z, z_ref, atol=1e-5, rtol=1e-5)
  weights = jax.random.normal(jax.random.key(1), z.shape)
  grads_ref = jax.grad(objective(0, weights), argnums=(0, 1, 2))(x, projection, bias, mask)
  grads = jax.jit(jax.grad(objective(chunk_size, weights), argnums=(0, 1, 2)))(
      x, projection, bias, mask)
  for g, g_ref, name in zip(grads, grads_ref, ("states", "projection", "bias")):
    assert float(jnp.abs(g_ref).max()) > 0, name
    np.testing.assert_allclose(g, g_ref, atol=1e-4, rtol=1e-4, err_msg=name)


def test_ties_send_the_gradient_to_the_first_maximal_token_only():
  x, projection, bias, mask = inputs(ties=True)
  mask = jnp.ones_like(mask)
  g_x = jax.grad(lambda x: jnp.sum(
      lexical_pooling.max_logits(x, projection, bias, mask, 16)))(x)
  # Tokens 4 and 5 repeat token 1: whatever word they tie on, token 1 takes the gradient.
  assert float(jnp.abs(g_x[:, 4]).max()) == 0.0
  assert float(jnp.abs(g_x[:, 5]).max()) == 0.0
  assert float(jnp.abs(g_x[:, 1]).max()) > 0.0


def test_padding_tokens_and_empty_rows_take_no_gradient():
  x, projection, bias, mask = inputs()
  mask = mask.at[2].set(False)  # a row without any valid token
  g_x, g_bias = jax.grad(lambda x, b: jnp.sum(
      lexical_pooling.max_logits(x, projection, b, mask, 32)), argnums=(0, 1))(x, bias)
  assert float(jnp.abs(jnp.where(mask[..., None], 0.0, g_x)).max()) == 0.0
  # Each valid row sends one unit of gradient to each word's bias.
  np.testing.assert_allclose(g_bias, np.full(bias.shape, 2.0), atol=1e-6)
  z = lexical_pooling.max_logits(x, projection, bias, mask, 32)
  assert bool(jnp.all(z[2] == jnp.finfo(jnp.float32).min))


def test_the_fused_step_never_holds_the_vocabulary_logits():
  b, t, d, v = 4, 64, 32, 8192
  x = jnp.zeros((b, t, d))
  projection, bias = jnp.zeros((v, d)), jnp.zeros((v,))
  mask = jnp.ones((b, t), bool)

  def temporaries(chunk_size):
    grad = jax.jit(jax.grad(lambda x, p: jnp.sum(jnp.log1p(jax.nn.relu(
        lexical_pooling.max_logits(x, p, bias, mask, chunk_size)))), argnums=(0, 1)))
    return grad.lower(x, projection).compile().memory_analysis().temp_size_in_bytes

  logits_bytes = b * t * v * 4
  assert temporaries(0) >= logits_bytes
  assert temporaries(512) < logits_bytes / 4


# LexMLM holds its text logits for its cross-entropies and pools them with `masked_max`.
@pytest.mark.parametrize("phase,fields", [
    ("lexmmm", {}), ("lexcmlp", {}), ("lexcmlp", {"loss.text_self_prediction_weight": 0.0})])
def test_every_phase_computes_the_same_loss_and_gradients_fused(phase, fields, tmp_path):
  """One step's loss, logged terms and gradients with the vocabulary logits pooled in chunks
  equal those of the whole logits."""

  results = []
  for chunk_size in (0, 1000):
    config = tiny_config(phase, tmp_path, **{"model.vocab_chunk_size": chunk_size, **fields})
    trainer = build_trainer(config, placeholder_constants(tokenizer_lib.load_tokenizer("")),
                            devices=jax.devices()[:1])
    batch = {k: jnp.asarray(v)
             for k, v in random_batch(config, np.random.default_rng(0)).items()}
    with trainer.activated():
      params = trainer.init_state(0).params
      trained, frozen = split_params(params, trainer.phase.trainable)

      def objective(p):
        return trainer.phase.loss(trainer.context, merge_params(p, frozen), batch,
                                  jax.random.key(3), jnp.int32(5))
      results.append(jax.jit(jax.value_and_grad(objective, has_aux=True))(trained))
  ((loss_ref, terms_ref), grads_ref), ((loss, terms), grads) = results
  np.testing.assert_allclose(loss, loss_ref, atol=1e-5, rtol=1e-5)
  for key in terms_ref:
    np.testing.assert_allclose(terms[key], terms_ref[key], atol=1e-5, rtol=1e-5, err_msg=key)
  for path, g_ref in jax.tree_util.tree_leaves_with_path(grads_ref):
    g = functools.reduce(lambda node, k: node[k.key], path, grads)
    np.testing.assert_allclose(g, g_ref, atol=1e-4, rtol=1e-4,
                               err_msg=jax.tree_util.keystr(path))
