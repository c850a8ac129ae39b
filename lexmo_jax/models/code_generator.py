"""An autoregressive transformer over motion codes, conditioned on a text vector.

The generator of a T2M-GPT-style text-to-motion model (Zhang et al., CVPR 2023;
github.com/Mael-zys/T2M-GPT, `models/t2m_trans.py`, `train_t2m_trans.py`,
`dataset/dataset_TM_train.py`): the condition vector, through a Dense layer (T2M-GPT's
`cond_emb`), is the first position; the motion's codes follow; a causal pre-LN transformer,
a final LayerNorm and a head over the K codes and END predict, at position t, token t of the
motion's sequence (position 0, seeing the condition only, predicts the first code).

Token ids: 0..K−1 codes, K = END, K+1 = PAD (PAD is read, never predicted).
Shapes use b (batch), n (codes), k (codebook size), c (condition width), d (model width).

Departures from T2M-GPT: learned positions (T2M-GPT adds fixed sinusoids); one stack of
`num_layers` blocks (T2M-GPT's "base" and "head" each hold `num_layers`); and a learned null
condition for classifier-free guidance, which T2M-GPT does not use. Its training corruption
(`--pkeep 0.5`: each input code replaced by a random code with probability 0.5; targets kept)
belongs to the training loop, not to this module.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lexmo_jax.models.transformer import Dtype, TransformerStack, constrain, dense, layer_norm


def end_token(codebook_size: int) -> int:
  """END's id: K, the one class past the codes that the head predicts."""
  return codebook_size


def pad_token(codebook_size: int) -> int:
  """PAD's id: K + 1, read as an input after END (T2M-GPT's batches), never predicted."""
  return codebook_size + 1


class CodeGenerator(nn.Module):
  """Logits (B, 1 + N, K + 1) of motion codes and END given a condition and code prefixes.

  T2M-GPT's sizes: K 512, condition 512 (CLIP ViT-B/32 text), width 1024, 16 heads, MLP 4096,
  2 × 9 layers, dropout 0.1 (attention, residual and MLP; none on the embeddings), and
  max_codes 50 (its block size 51 = the condition + 50 tokens; a 196-frame motion gives 49
  codes, then END).

  `step` computes one position at a time from a key/value cache, for sampling.
  """
  codebook_size: int
  condition_dim: int
  width: int
  num_layers: int
  num_heads: int
  mlp_dim: int
  max_codes: int
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  def __call__(self, condition_bc, codes_bn, deterministic: bool = True,
               drop_condition_b=None):
    """Next-token logits.

    condition (B, C) float; codes (B, N) int in [0, K + 2), N ≤ max_codes (what follows a
    row's END may be anything: no position before it reads it). `drop_condition_b` (B,)
    bool, or None: True rows read the learned null condition instead of theirs (training
    for classifier-free guidance, and the unconditional pass when sampling).
    Returns float32 logits (B, 1 + N, K + 1); a ValueError when N > max_codes or the
    condition is not `condition_dim` wide.
    """
    n = codes_bn.shape[1]
    if n > self.max_codes:
      raise ValueError(f"{n} codes exceed max_codes={self.max_codes}")
    return self._logits(condition_bc, codes_bn, deterministic, drop_condition_b, None)

  def step(self, condition_bc, code_b, position, drop_condition_b=None):
    """The logits (B, K + 1) `__call__` gives at one position, from a key/value cache.

    Position t reads the condition when t = 0, else `code_b` (B,) int, the code at t − 1
    (read only when t ≥ 1); earlier positions' keys and values come from the 'cache'
    collection, into which the call writes t's (apply with `mutable=["cache"]`; a call without
    one creates it). Feed t = 0, 1, … in turn, the same condition and `drop_condition_b`
    (as in `__call__`) each time: position t's logits are then those of `__call__` over the
    codes fed, to rounding. position: int scalar in [0, max_codes]. Deterministic.
    """
    if code_b.shape != condition_bc.shape[:1]:
      raise ValueError(f"code {code_b.shape} is not (B={condition_bc.shape[0]},)")
    return self._logits(condition_bc, code_b[:, None], True, drop_condition_b,
                        jnp.asarray(position, jnp.int32))[:, 0]

  @nn.compact
  def _logits(self, condition_bc, codes_bn, deterministic, drop_condition_b, position):
    """`__call__` (position None: positions 0 … N) and `step` (position t: codes (B, 1))."""
    dtype = jnp.dtype(self.dtype)
    b = codes_bn.shape[0]
    if condition_bc.shape != (b, self.condition_dim):
      raise ValueError(f"condition {condition_bc.shape} is not (B={b}, {self.condition_dim})")
    d, k = self.width, self.codebook_size
    init = nn.initializers.normal(0.02)  # T2M-GPT's (and GPT's) initialisation
    condition_bd = dense(d, ("embed_proj", "embed"), "condition_embedding", dtype)(
        condition_bc.astype(dtype))
    null_d = self.param("null_condition", nn.with_logical_partitioning(init, ("embed",)), (d,),
                        jnp.float32)
    if drop_condition_b is not None:
      condition_bd = jnp.where(drop_condition_b[:, None], null_d.astype(dtype), condition_bd)
    code_embedding_vd = self.param(
        "code_embedding", nn.with_logical_partitioning(init, ("vocab", "embed")), (k + 2, d),
        jnp.float32)
    position_nd = self.param(
        "position_embedding", nn.with_logical_partitioning(init, ("position", "embed")),
        (self.max_codes + 1, d), jnp.float32)
    codes_bnd = jnp.take(code_embedding_vd, codes_bn, axis=0).astype(dtype)
    if position is None:
      n = codes_bn.shape[1]
      x_bnd = jnp.concatenate([condition_bd[:, None], codes_bnd], axis=1)
      x_bnd = x_bnd + position_nd[None, :n + 1].astype(dtype)
      mask_bns = jnp.broadcast_to(jnp.tril(jnp.ones((n + 1, n + 1), bool)), (b, n + 1, n + 1))
    else:
      x_bnd = jnp.where(position == 0, condition_bd[:, None], codes_bnd)
      x_bnd = x_bnd + jax.lax.dynamic_slice_in_dim(position_nd, position, 1)[None].astype(dtype)
      # One query over the cache's max_codes + 1 slots, of which positions ≤ t are written.
      mask_bns = jnp.broadcast_to(jnp.arange(self.max_codes + 1) <= position,
                                  (b, 1, self.max_codes + 1))
    x_bnd = constrain(x_bnd, ("batch", "length", "embed"))
    # LayerNorm ε 1e-5 and exact GELU: PyTorch's defaults, which T2M-GPT's blocks use.
    x_bnd = TransformerStack(self.num_layers, self.num_heads, self.mlp_dim, self.dropout_rate,
                             pre_norm=True, layer_norm_eps=1e-5, dtype=dtype, name="decoder")(
                                 x_bnd, mask_bns, deterministic, cache_position=position)
    x_bnd = layer_norm("final_norm", 1e-5, dtype)(x_bnd)
    logits_bnv = dense(k + 1, ("embed", "vocab"), "head", dtype, use_bias=False)(x_bnd)
    return constrain(logits_bnv.astype(jnp.float32), ("batch", "length", "vocab"))


def generator_targets(codes_bn, lengths_b, codebook_size: int):
  """(targets (B, 1 + N) int32, valid (B, 1 + N) bool): a row's L codes, then END at L.

  Positions past a row's END are invalid (their target reads 0). lengths (B,) int in [0, N].
  """
  n = codes_bn.shape[1]
  positions = jnp.arange(n + 1)[None]
  lengths = lengths_b.astype(jnp.int32)[:, None]
  codes = jnp.pad(codes_bn.astype(jnp.int32), [(0, 0), (0, 1)])
  targets = jnp.where(positions < lengths, codes,
                      jnp.where(positions == lengths, end_token(codebook_size), 0))
  return targets, positions <= lengths


def generator_loss(logits_bnv, codes_bn, lengths_b):
  """Cross-entropy of each row's codes and then END, as T2M-GPT trains its transformer.

  logits (B, 1 + N, K + 1) from `CodeGenerator`; codes (B, N) int (values past a row's
  length are ignored); lengths (B,) int in [0, N]. Each row's loss is its mean over its
  L + 1 targets, and the batch's the mean of its rows (T2M-GPT's per-sample
  `CrossEntropyLoss` / batch size). Returns (loss, {"code_cross_entropy",
  "code_accuracy"}): accuracy of the argmax over all valid targets of the batch. A ValueError
  when the logits are not one position longer than the codes.
  """
  b, n = codes_bn.shape
  if logits_bnv.shape[:2] != (b, n + 1):
    raise ValueError(f"logits {logits_bnv.shape} do not match codes {codes_bn.shape}: "
                     "expected (B, 1 + N, K + 1)")
  codebook_size = logits_bnv.shape[-1] - 1
  targets_bn, valid_bn = generator_targets(codes_bn, lengths_b, codebook_size)
  logits = logits_bnv.astype(jnp.float32)
  weight_bn = valid_bn.astype(jnp.float32)
  cross_entropy_bn = optax.softmax_cross_entropy_with_integer_labels(logits, targets_bn)
  per_row_b = jnp.sum(cross_entropy_bn * weight_bn, axis=1) / jnp.sum(weight_bn, axis=1)
  loss = jnp.mean(per_row_b)
  correct = (jnp.argmax(logits, axis=-1) == targets_bn).astype(jnp.float32)
  accuracy = jnp.sum(correct * weight_bn) / jnp.sum(weight_bn)
  return loss, {"code_cross_entropy": loss, "code_accuracy": accuracy}


def cached_step_fn(model: nn.Module, params, method: Callable | None = None) -> Callable:
  """`sample`'s step function for a `CodeGenerator` `model` and its params (the 'params'
  collection).

  `method(module, condition_bc, code_b, position, drop_condition_b) -> logits (B, K + 1)`
  reaches the generator of a model that holds one, e.g. `lambda m, *a: m.generator.step(*a)`;
  None: `model` is the generator (`CodeGenerator.step`).
  """
  method = CodeGenerator.step if method is None else method

  def step_fn(cache, condition_bc, drop_condition_b, code_b, position):
    logits_bv, variables = model.apply({"params": params, "cache": cache}, condition_bc, code_b,
                                       position, drop_condition_b, method=method,
                                       mutable=["cache"])
    return logits_bv, variables["cache"]

  return step_fn


def sample(step_fn: Callable, condition_bc, rng, *, max_codes: int,
           guidance_scale: float = 1.0, temperature: float = 1.0, top_k: int = 0,
           min_codes: int = 1):
  """Draws code sequences for conditions (B, C), one position at a time. Jittable.

  `step_fn(cache, condition_bc, drop_condition_b, code_b, position) -> (logits (B, K + 1),
  cache)` is one incremental step of the generator (`CodeGenerator.step`): the logits at
  `position` t given the code at t − 1 (ignored at t = 0), the earlier positions' keys and
  values held in `cache` (a pytree; `{}` makes the step create it, and `sample` takes its
  zeros as the start). `cached_step_fn(model, params)` builds it. Each step costs one
  position's forward pass, not the whole sequence's (`sample_uncached`); both draw the same
  codes from the same `rng`.

  guidance_scale s: classifier-free guidance, logits = uncond + s · (cond − uncond) with the
    null condition for uncond (both passes in one batch of 2B rows); at s = 1 only the
    conditional pass runs.
  temperature: logits / temperature before sampling; 0 takes the argmax (greedy).
  top_k: when > 0, only the k most likely tokens (codes and END) can be drawn.
  min_codes: END is masked at positions < min_codes.
  Python numbers, all four (static under jit), as is max_codes.

  A row stops at its first END; its later positions are ignored. Returns
  (codes (B, max_codes) int32, positions from a row's length on holding 0;
   lengths (B,) int32, the codes before END, max_codes when none came).
  Randomness: position t draws with `jax.random.fold_in(rng, t)`.
  """
  def init_cache(conditions_rc, drop_r):
    shapes = jax.eval_shape(step_fn, {}, conditions_rc, drop_r,
                            jnp.zeros(drop_r.shape, jnp.int32), jnp.int32(0))[1]
    return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

  def logits_at(cache, conditions_rc, drop_r, codes_rn, t):
    # The code at t − 1 feeds position t (at t = 0 the condition does; the code is unread).
    previous_r = jax.lax.dynamic_index_in_dim(codes_rn, jnp.maximum(t - 1, 0), axis=1,
                                              keepdims=False)
    return step_fn(cache, conditions_rc, drop_r, previous_r, t)

  return _sample_loop(logits_at, init_cache, condition_bc, rng, max_codes=max_codes,
                      guidance_scale=guidance_scale, temperature=temperature, top_k=top_k,
                      min_codes=min_codes)


def sample_uncached(apply_fn: Callable, condition_bc, rng, *, max_codes: int,
                    guidance_scale: float = 1.0, temperature: float = 1.0, top_k: int = 0,
                    min_codes: int = 1):
  """`sample`, recomputing the whole causal forward pass at every position.

  `apply_fn(condition_bc, codes_bn, drop_condition_b) -> logits (B, 1 + N, K + 1)` is a
  closure over the parameters, e.g. `lambda c, z, drop: model.apply(params, c, z, True, drop)`
  (deterministic: no dropout). Every step runs it over a (B, max_codes) buffer whose positions
  from the current one on are 0 (causality makes them unread). The arguments after it, the
  result and the draws are `sample`'s.
  """
  def logits_at(state, conditions_rc, drop_r, codes_rn, t):
    logits_rnv = apply_fn(conditions_rc, codes_rn, drop_r)
    return jax.lax.dynamic_index_in_dim(logits_rnv, t, axis=1, keepdims=False), state

  return _sample_loop(logits_at, lambda conditions_rc, drop_r: (), condition_bc, rng,
                      max_codes=max_codes, guidance_scale=guidance_scale,
                      temperature=temperature, top_k=top_k, min_codes=min_codes)


def _sample_loop(logits_at: Callable, init_state: Callable, condition_bc, rng, *,
                 max_codes: int, guidance_scale: float, temperature: float, top_k: int,
                 min_codes: int):
  """The sampling loop of `sample` and `sample_uncached`.

  `logits_at(state, conditions_rc, drop_r, codes_rn, t) -> (logits (R, K + 1), state)`: the
  model's logits at position t for R rows (B, or 2B when guided: the conditional rows, then
  the same with the null condition), codes_rn holding the codes drawn before t (0 from t on);
  `init_state(conditions_rc, drop_r)` its first state.
  """
  b = condition_bc.shape[0]
  guided = guidance_scale != 1.0
  if guided:
    conditions_rc = jnp.concatenate([condition_bc, condition_bc], axis=0)
    drop_r = jnp.concatenate([jnp.zeros((b,), bool), jnp.ones((b,), bool)])
  else:
    conditions_rc, drop_r = condition_bc, jnp.zeros((b,), bool)

  def step_logits(state, codes_bn, t):
    codes_rn = jnp.concatenate([codes_bn, codes_bn], axis=0) if guided else codes_bn
    logits_rv, state = logits_at(state, conditions_rc, drop_r, codes_rn, t)
    if guided:
      cond_bv, uncond_bv = logits_rv[:b], logits_rv[b:]
      logits_bv = uncond_bv + guidance_scale * (cond_bv - uncond_bv)
    else:
      logits_bv = logits_rv
    logits_bv = logits_bv.astype(jnp.float32)
    end = logits_bv.shape[-1] - 1
    big_neg = jnp.finfo(jnp.float32).min
    logits_bv = logits_bv.at[:, end].set(jnp.where(t < min_codes, big_neg, logits_bv[:, end]))
    if top_k > 0 and top_k < logits_bv.shape[-1]:
      kth_b1 = jax.lax.top_k(logits_bv, top_k)[0][:, -1:]
      logits_bv = jnp.where(logits_bv < kth_b1, big_neg, logits_bv)
    return logits_bv, end, state

  def draw(logits_bv, t):
    if temperature == 0:
      return jnp.argmax(logits_bv, axis=-1).astype(jnp.int32)
    return jax.random.categorical(jax.random.fold_in(rng, t), logits_bv / temperature,
                                  axis=-1).astype(jnp.int32)

  def cond_fn(loop):
    t, _, _, done_b, _ = loop
    return (t < max_codes) & ~jnp.all(done_b)

  def body_fn(loop):
    t, codes_bn, lengths_b, done_b, state = loop
    logits_bv, end, state = step_logits(state, codes_bn, t)
    token_b = draw(logits_bv, t)
    ends_b = ~done_b & (token_b == end)
    lengths_b = jnp.where(ends_b, t, lengths_b)
    done_b = done_b | ends_b
    codes_bn = jax.lax.dynamic_update_index_in_dim(
        codes_bn, jnp.where(done_b, 0, token_b), t, axis=1)
    return t + 1, codes_bn, lengths_b, done_b, state

  loop = (jnp.int32(0), jnp.zeros((b, max_codes), jnp.int32),
          jnp.full((b,), max_codes, jnp.int32), jnp.zeros((b,), bool),
          init_state(conditions_rc, drop_r))
  _, codes_bn, lengths_b, _, _ = jax.lax.while_loop(cond_fn, body_fn, loop)
  return codes_bn, lengths_b
