"""The text-to-motion generator's two models: the motion VQ-VAE and the code generator."""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lexmo_jax.models.code_generator import (CodeGenerator, cached_step_fn, generator_loss,
                                             generator_targets, sample, sample_uncached)
from lexmo_jax.models.motion_vqvae import (MotionVQVAE, code_statistics, vector_quantise,
                                           vqvae_loss)
from lexmo_jax.sharding.rules import LOGICAL_AXES

F, T, K, WIDTH, JOINTS = 263, 64, 16, 32, 22
C, N = 8, 8  # condition width, max codes


def tiny_vqvae(**kwargs) -> MotionVQVAE:
  return MotionVQVAE(feature_dim=F, width=WIDTH, depth=1, down_t=2, dilation_growth=3,
                     codebook_size=K, code_dim=WIDTH, **kwargs)


def assert_logically_named(variables):
  """Every parameter carries one known logical axis name per dimension, none twice."""
  boxed = jax.tree.leaves(variables, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  for p in boxed:
    assert isinstance(p, nn.Partitioned), p
    assert len(p.names) == p.value.ndim and len(set(p.names)) == len(p.names), p.names
    assert set(p.names) <= set(LOGICAL_AXES), p.names


def tiny_generator(dropout_rate: float = 0.0, num_layers: int = 1) -> CodeGenerator:
  return CodeGenerator(codebook_size=K, condition_dim=C, width=WIDTH, num_layers=num_layers,
                       num_heads=4, mlp_dim=2 * WIDTH, max_codes=N, dropout_rate=dropout_rate)


def motion_batch(batch: int = 2, seed: int = 0):
  rng = np.random.default_rng(seed)
  # Smooth in time, as motion features are: a random walk, standardised.
  x = np.cumsum(rng.normal(size=(batch, T, F)), axis=1)
  x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-6)
  return jnp.asarray(x, jnp.float32), jnp.ones((batch, T), bool)


@pytest.fixture(scope="module")
def vqvae_variables():
  motion, mask = motion_batch()
  return jax.jit(tiny_vqvae().init)(jax.random.key(0), motion, mask)


def test_vqvae_shapes_and_encode_decode_agree_with_the_forward_pass(vqvae_variables):
  model = tiny_vqvae()
  motion, mask = motion_batch()
  params = nn.unbox(vqvae_variables)
  out = jax.jit(model.apply)(params, motion, mask)
  assert out["reconstruction"].shape == (2, T, F)
  assert out["codes"].shape == (2, T // 4) and out["codes"].dtype == jnp.int32
  for name in ("codebook_loss", "commitment_loss", "perplexity", "code_usage"):
    assert out[name].shape == ()
  assert params["params"]["codebook"].shape == (K, WIDTH)
  codes = jax.jit(functools.partial(model.apply, method="encode"))(params, motion)
  np.testing.assert_array_equal(codes, out["codes"])
  assert int(codes.min()) >= 0 and int(codes.max()) < K
  decoded = jax.jit(functools.partial(model.apply, method="decode"))(params, codes)
  assert decoded.shape == (2, T, F)
  np.testing.assert_allclose(decoded, out["reconstruction"], atol=1e-5)
  assert_logically_named(vqvae_variables)  # the sharded trainer needs them
  with pytest.raises(ValueError, match="multiple"):
    jax.eval_shape(model.apply, params, motion[:, :62], mask[:, :62])


def test_straight_through_gradient_reaches_the_encoder_not_the_codebook(vqvae_variables):
  model = tiny_vqvae()
  motion, mask = motion_batch()
  params = nn.unbox(vqvae_variables)

  @jax.jit
  def gradients(p):
    out = lambda p: model.apply(p, motion, mask)
    return (jax.grad(lambda p: jnp.mean(out(p)["reconstruction"] ** 2))(p)["params"],
            jax.grad(lambda p: out(p)["codebook_loss"])(p)["params"])

  grads, codebook_grads = gradients(params)
  assert float(jnp.abs(grads["encoder"]["conv_in"]["kernel"]).max()) > 0
  assert float(jnp.abs(grads["encoder"]["conv_out"]["kernel"]).max()) > 0
  np.testing.assert_array_equal(grads["codebook"], 0.0)
  # The codebook learns from the codebook loss alone, the encoder from the commitment alone.
  assert float(jnp.abs(codebook_grads["codebook"]).max()) > 0
  np.testing.assert_array_equal(codebook_grads["encoder"]["conv_out"]["kernel"], 0.0)


@pytest.mark.parametrize("normalise", [False, True])
def test_quantiser_losses_vanish_when_latents_are_codes(normalise):
  codebook = jax.random.normal(jax.random.key(2), (K, 6))
  index = jnp.asarray([[3, 0, 15, 7], [7, 7, 1, 2]])
  scale = 2.5 if normalise else 1.0  # cosine lookup ignores the latents' norm
  latents = scale * codebook[index]
  quantise = jax.jit(vector_quantise, static_argnames="normalise")
  out = quantise(latents, codebook, normalise=normalise)
  np.testing.assert_array_equal(out["codes"], index)
  np.testing.assert_allclose(out["codebook_loss"], 0.0, atol=1e-10)
  np.testing.assert_allclose(out["commitment"], 0.0, atol=1e-10)
  expected = codebook[index] / jnp.linalg.norm(codebook[index], axis=-1,
                                               keepdims=True) if normalise else latents
  np.testing.assert_allclose(out["quantised"], expected, rtol=1e-5)
  # Off the codes, both losses are the squared distance to the nearest code.
  moved = quantise(codebook[index] + 0.01, codebook, normalise=False)
  np.testing.assert_allclose(moved["codebook_loss"], 1e-4, rtol=1e-3)
  np.testing.assert_allclose(moved["commitment"], 1e-4, rtol=1e-3)


def test_code_statistics():
  statistics = jax.jit(code_statistics, static_argnums=2)
  codes = jnp.tile(jnp.arange(K), (3, 2))
  perplexity, usage = statistics(codes, jnp.ones_like(codes, bool), K)
  np.testing.assert_allclose(perplexity, K, rtol=1e-5)
  np.testing.assert_allclose(usage, 1.0)
  one_code = jnp.zeros((2, 5), jnp.int32)
  perplexity, usage = statistics(one_code, jnp.ones((2, 5), bool), K)
  np.testing.assert_allclose(perplexity, 1.0, rtol=1e-6)
  np.testing.assert_allclose(usage, 1.0 / K)
  # Masked positions do not count: two codes, equally often, among the valid ones.
  codes = jnp.asarray([[1, 2, 9, 9], [2, 1, 9, 9]])
  mask = jnp.asarray([[True, True, False, False]] * 2)
  perplexity, usage = statistics(codes, mask, K)
  np.testing.assert_allclose(perplexity, 2.0, rtol=1e-5)
  np.testing.assert_allclose(usage, 2.0 / K)


def test_vqvae_loss_on_a_hand_built_case():
  motion = jnp.zeros((1, 8, F))
  mask = jnp.asarray([[True] * 6 + [False] * 2])
  # Off by 0.5 everywhere on valid frames (smooth L1 = ½·0.5² = 0.125), wildly off on the
  # masked ones, which must not count.
  reconstruction = jnp.where(mask[..., None], 0.5, 100.0) * jnp.ones((1, 8, F))
  outputs = {"reconstruction": reconstruction, "commitment_loss": jnp.float32(2.0),
             "codebook_loss": jnp.float32(3.0), "perplexity": jnp.float32(1.0),
             "code_usage": jnp.float32(0.1)}
  loss_fn = jax.jit(functools.partial(vqvae_loss, joints=JOINTS, commitment=0.02,
                                      velocity_weight=0.5))
  loss, terms = loss_fn(outputs, motion, mask)
  np.testing.assert_allclose(terms["reconstruction"], 0.125, rtol=1e-6)
  np.testing.assert_allclose(terms["position"], 0.125, rtol=1e-6)
  np.testing.assert_allclose(loss, 0.125 + 0.5 * 0.125 + 0.02 * 2.0 + 3.0, rtol=1e-6)
  # The position term compares features [4, 4 + 21·3) only.
  off_positions = jnp.zeros((1, 8, F)).at[..., 67:].set(0.5)
  _, terms = loss_fn(dict(outputs, reconstruction=off_positions), motion, mask)
  np.testing.assert_allclose(terms["position"], 0.0)
  with pytest.raises(ValueError, match="joints"):
    vqvae_loss(outputs, motion[..., :200], mask, joints=JOINTS)


def test_vqvae_ignores_padded_frames(vqvae_variables):
  model = tiny_vqvae()
  motion, _ = motion_batch(seed=3)
  mask = jnp.arange(T)[None] < jnp.asarray([[40], [64]])
  params = nn.unbox(vqvae_variables)
  noisy = jnp.where(mask[..., None], motion, 50.0)
  loss_fn = jax.jit(
      lambda m: vqvae_loss(model.apply(params, m, mask), m, mask, joints=JOINTS)[0])
  np.testing.assert_allclose(loss_fn(motion), loss_fn(noisy), rtol=1e-5)


def test_a_few_adam_steps_lower_the_vqvae_loss():
  model = tiny_vqvae(normalise_codes=True)
  motion, mask = motion_batch(seed=4)
  params = nn.unbox(jax.jit(model.init)(jax.random.key(5), motion, mask))
  optimizer = optax.adam(2e-3)

  def loss_fn(p):
    return vqvae_loss(model.apply(p, motion, mask), motion, mask, joints=JOINTS)[0]

  @jax.jit
  def step(p, state):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, state = optimizer.update(grads, state, p)
    return optax.apply_updates(p, updates), state, loss

  state = optimizer.init(params)
  losses = []
  for _ in range(25):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert losses[-1] < 0.8 * losses[0], losses


@pytest.fixture(scope="module")
def generator_params():
  model = tiny_generator()
  condition = jnp.zeros((2, C))
  codes = jnp.zeros((2, N), jnp.int32)
  variables = jax.jit(model.init)(jax.random.key(0), condition, codes)
  assert_logically_named(variables)
  return nn.unbox(variables)


def test_generator_shapes_causality_and_null_condition(generator_params):
  model = tiny_generator()
  apply = jax.jit(lambda c, z, drop=None: model.apply(generator_params, c, z, True, drop))
  rng = np.random.default_rng(0)
  condition = jnp.asarray(rng.normal(size=(2, C)), jnp.float32)
  codes = jnp.asarray(rng.integers(0, K + 2, size=(2, N)), jnp.int32)
  logits = apply(condition, codes)
  assert logits.shape == (2, 1 + N, K + 1) and logits.dtype == jnp.float32
  assert jax.eval_shape(apply, condition, codes[:, :5]).shape == (2, 6, K + 1)
  # Position t reads the condition and codes[:t]: changing code 3 leaves positions 0..3 alone.
  changed = apply(condition, codes.at[:, 3].set((codes[:, 3] + 1) % K))
  np.testing.assert_allclose(changed[:, :4], logits[:, :4], atol=1e-6)
  assert float(jnp.abs(changed[:, 4:] - logits[:, 4:]).max()) > 1e-4
  # Dropped rows read the null condition: their logits no longer depend on the condition.
  drop = jnp.asarray([True, False])
  a = apply(condition, codes, drop)
  b = apply(-3.0 * condition, codes, drop)
  np.testing.assert_allclose(a[0], b[0], atol=1e-6)
  assert float(jnp.abs(a[1] - b[1]).max()) > 1e-4
  with pytest.raises(ValueError, match="max_codes"):
    jax.eval_shape(apply, condition, jnp.zeros((2, N + 1), jnp.int32))


def test_generator_loss_on_a_hand_built_case():
  k = 4
  codes = jnp.asarray([[2, 0, 3], [1, 1, 2]])
  lengths = jnp.asarray([2, 3])
  targets, valid = generator_targets(codes, lengths, k)
  np.testing.assert_array_equal(targets, [[2, 0, 4, 0], [1, 1, 2, 4]])
  np.testing.assert_array_equal(valid, [[1, 1, 1, 0], [1, 1, 1, 1]])
  logits = np.zeros((2, 4, k + 1), np.float32)
  logits[0, 0, 2] = 2.0   # right
  logits[0, 1, 1] = 1.0   # wrong: argmax 1, target 0
  logits[0, 2, 4] = 3.0   # right (END)
  logits[0, 3, 0] = 50.0  # past the end: ignored
  logits[1, :, 1] = 1.0   # right, right, wrong, wrong

  def cross_entropy(row, target):
    return np.log(np.exp(row).sum()) - row[target]

  row0 = np.mean([cross_entropy(logits[0, t], tt) for t, tt in enumerate([2, 0, 4])])
  row1 = np.mean([cross_entropy(logits[1, t], tt) for t, tt in enumerate([1, 1, 2, 4])])
  loss, terms = jax.jit(generator_loss)(jnp.asarray(logits), codes, lengths)
  np.testing.assert_allclose(loss, (row0 + row1) / 2, rtol=1e-5)
  np.testing.assert_allclose(terms["code_cross_entropy"], loss)
  np.testing.assert_allclose(terms["code_accuracy"], 4 / 7, rtol=1e-6)
  with pytest.raises(ValueError, match="expected"):
    generator_loss(jnp.asarray(logits[:, :3]), codes, lengths)


def generator_apply(params, model=None):
  model = tiny_generator() if model is None else model
  return lambda condition, codes, drop: model.apply(params, condition, codes, True, drop)


def generator_step(params, model=None):
  return cached_step_fn(tiny_generator() if model is None else model, params["params"])


def jit_sample(step_fn, **kwargs):
  return jax.jit(functools.partial(sample, step_fn, max_codes=N, **kwargs))


def jit_sample_uncached(apply_fn, **kwargs):
  return jax.jit(functools.partial(sample_uncached, apply_fn, max_codes=N, **kwargs))


@pytest.fixture(scope="module")
def two_layer_params():
  """A two-layer generator's parameters, its logits sharpened (head × 30) and its null
  condition far from 0, so that draws and guidance depend on the model's logits."""
  model = tiny_generator(num_layers=2)
  variables = nn.unbox(jax.jit(model.init)(jax.random.key(10), jnp.zeros((2, C)),
                                           jnp.zeros((2, N), jnp.int32)))
  p = dict(variables["params"])
  p["head"] = {"kernel": 30.0 * p["head"]["kernel"]}
  p["null_condition"] = jax.random.normal(jax.random.key(11), p["null_condition"].shape)
  return {"params": p}


def test_cached_steps_give_the_full_forward_logits(two_layer_params):
  model = tiny_generator(num_layers=2)
  rng = np.random.default_rng(1)
  condition = jnp.asarray(rng.normal(size=(3, C)), jnp.float32)
  codes = jnp.asarray(rng.integers(0, K + 2, size=(3, N)), jnp.int32)
  drop = jnp.asarray([False, True, False])
  full = jax.jit(generator_apply(two_layer_params, model))(condition, codes, drop)

  @jax.jit
  def stepwise(condition, codes, drop):
    step_fn = generator_step(two_layer_params, model)
    cache = {}
    logits = []
    for t in range(N + 1):  # position t reads code t − 1 (the condition at t = 0)
      logits_bv, cache = step_fn(cache, condition, drop, codes[:, max(t - 1, 0)], t)
      logits.append(logits_bv)
    return jnp.stack(logits, axis=1), cache

  logits, cache = stepwise(condition, codes, drop)
  np.testing.assert_allclose(logits, full, atol=1e-5, rtol=1e-5)
  # Each layer caches keys and values (B, heads, 1 + max_codes, head width).
  assert set(cache["decoder"]) == {"layer_0", "layer_1"}
  assert cache["decoder"]["layer_1"]["attention"]["cached_key"].shape == (3, 4, N + 1, WIDTH // 4)
  # The cached path reads the parameters of the full pass, and creates no others.
  step_params = jax.eval_shape(functools.partial(model.init, method="step"), jax.random.key(0),
                               condition, codes[:, 0], jnp.int32(0))["params"]
  assert (jax.tree.structure(nn.unbox(step_params))
          == jax.tree.structure(two_layer_params["params"]))
  with pytest.raises(ValueError, match="code"):
    jax.eval_shape(generator_step(two_layer_params, model), {}, condition, drop, codes, 0)


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
@pytest.mark.parametrize("temperature, top_k", [(0.0, 0), (1.0, 0), (1.0, 5)])
def test_cached_sampling_draws_what_uncached_sampling_draws(two_layer_params, guidance_scale,
                                                           temperature, top_k):
  model = tiny_generator(num_layers=2)
  condition = jax.random.normal(jax.random.key(12), (6, C))
  rng = jax.random.key(13)
  kwargs = dict(guidance_scale=guidance_scale, temperature=temperature, top_k=top_k)
  codes, lengths = jit_sample(generator_step(two_layer_params, model), **kwargs)(condition, rng)
  reference_codes, reference_lengths = jit_sample_uncached(
      generator_apply(two_layer_params, model), **kwargs)(condition, rng)
  np.testing.assert_array_equal(codes, reference_codes)
  np.testing.assert_array_equal(lengths, reference_lengths)
  if guidance_scale != 1.0:  # guidance changes the draws: the null pass is in the batch
    unguided = jit_sample(generator_step(two_layer_params, model),
                          **dict(kwargs, guidance_scale=1.0))(condition, rng)
    assert not np.array_equal(codes, unguided[0])


def test_guidance_scale_one_is_conditional_sampling(generator_params):
  condition = jax.random.normal(jax.random.key(1), (3, C))
  rng = jax.random.key(2)
  step_fn = generator_step(generator_params)
  batch_sizes = []

  def recording(cache, c, drop, z, t):
    batch_sizes.append(c.shape[0])
    return step_fn(cache, c, drop, z, t)

  codes, lengths = jit_sample(recording, guidance_scale=1.0)(condition, rng)
  assert set(batch_sizes) == {3}  # one conditional pass per step, nothing unconditional
  # With the null condition made the condition itself, any scale gives conditional samples;
  # a guided draw runs both passes in one batch.
  batch_sizes.clear()
  conditional_only = lambda cache, c, drop, z, t: recording(cache, c, None, z, t)
  codes_guided, lengths_guided = jit_sample(conditional_only, guidance_scale=3.0)(condition, rng)
  assert set(batch_sizes) == {6}
  np.testing.assert_array_equal(codes, codes_guided)
  np.testing.assert_array_equal(lengths, lengths_guided)


def test_temperature_zero_is_greedy(generator_params):
  condition = jax.random.normal(jax.random.key(3), (4, C))
  apply_fn = generator_apply(generator_params)
  codes, lengths = jit_sample(generator_step(generator_params),
                              temperature=0.0)(condition, jax.random.key(0))
  assert codes.shape == (4, N) and codes.dtype == jnp.int32 and lengths.dtype == jnp.int32
  # Every step's choice is the argmax of that step's logits (END masked at position 0).
  logits = np.array(jax.jit(apply_fn)(condition, codes, jnp.zeros((4,), bool)))
  logits[:, 0, K] = -np.inf
  greedy = logits.argmax(-1)
  for row in range(4):
    length = int(lengths[row])
    np.testing.assert_array_equal(codes[row, :length], greedy[row, :length])
    if length < N:
      assert greedy[row, length] == K
    np.testing.assert_array_equal(codes[row, length:], 0)


def constant_logits_sampler(cached: bool, logits_v, **kwargs):
  """A sampler of either kind over a model whose logits are `logits_v` everywhere."""
  if cached:
    step_fn = lambda cache, c, drop, z, t: (jnp.broadcast_to(logits_v, (c.shape[0], K + 1)),
                                            cache)
    return jit_sample(step_fn, **kwargs)
  apply_fn = lambda c, z, drop: jnp.broadcast_to(logits_v, (c.shape[0], z.shape[1] + 1, K + 1))
  return jit_sample_uncached(apply_fn, **kwargs)


@pytest.mark.parametrize("cached", [True, False])
def test_end_is_never_drawn_before_min_codes_and_top_k_keeps_the_likeliest(cached):
  end_heavy = jnp.zeros((K + 1,)).at[K].set(30.0)
  condition = jnp.zeros((16, C))
  codes, lengths = constant_logits_sampler(cached, end_heavy, min_codes=3)(condition,
                                                                           jax.random.key(4))
  np.testing.assert_array_equal(lengths, 3)
  assert int(codes[:, :3].max()) < K
  np.testing.assert_array_equal(codes[:, 3:], 0)
  # Never ending: the full length. top_k = 1 leaves only the favourite code (5) to draw.
  favourite = jnp.zeros((K + 1,)).at[5].set(1.0).at[K].set(-1e9)
  codes, lengths = constant_logits_sampler(cached, favourite, top_k=1)(condition,
                                                                       jax.random.key(5))
  np.testing.assert_array_equal(lengths, N)
  np.testing.assert_array_equal(codes, 5)


def test_a_trained_generator_reproduces_its_sequence_greedily(generator_params):
  model = tiny_generator()
  target = jnp.asarray([[3, 7, 1, 12, 5, 9, K, K + 1]], jnp.int32)  # 6 codes, END, PAD
  lengths = jnp.asarray([6])
  condition = jax.random.normal(jax.random.key(6), (1, C))
  optimizer = optax.adam(3e-3)

  @jax.jit
  def train(params, rng):
    def step(carry, rng):
      p, state = carry
      def loss_fn(p):
        logits = model.apply(p, condition, target, False, rngs={"dropout": rng})
        return generator_loss(logits, target, lengths)[0]
      loss, grads = jax.value_and_grad(loss_fn)(p)
      updates, state = optimizer.update(grads, state, p)
      return (optax.apply_updates(p, updates), state), loss
    (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)),
                                       jax.random.split(rng, 150))
    return params, losses

  params, losses = train(generator_params, jax.random.key(8))
  assert float(losses[-1]) < 0.1
  codes, length = jit_sample(generator_step(params), temperature=0.0)(condition,
                                                                      jax.random.key(9))
  np.testing.assert_array_equal(length, [6])
  np.testing.assert_array_equal(codes, [[3, 7, 1, 12, 5, 9, 0, 0]])
