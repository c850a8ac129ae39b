"""Does the lexicon bottleneck carry the caption? The weak decoder's check.

LexMLM and LexMMM train a weak decoder to rebuild a heavily masked caption from the
bottleneck b = softmax(max Z)·E of the text (LexMLM) or of the paired motion (LexMMM).
The phases did their job when the decoder rebuilds the masked words clearly better from the
real b than from a zeroed one: then b, and the word distribution behind it, says what the
caption says. Masks are drawn as the phases draw them (informativeness-weighted whole words,
the config's decoder mask rate), with a fixed seed, so numbers compare across workdirs.
"""
from __future__ import annotations

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lexmo_jax import atomic_write
from lexmo_jax.inference import LEXICAL_PHASES, LexicalModel
from lexmo_jax.models import lexical
from lexmo_jax.models.lexmo import LexMo
from lexmo_jax.phases import masking
from lexmo_jax.train import data as data_lib


@functools.partial(jax.jit, static_argnums=(0, 4))
def _hits(model, params, batch, dec_mask, source: str):
  """Masked words the decoder gets right from b of `source` and from a zero b, and their
  number. `model` is a LexicalModel (hashed by identity)."""
  module = model.model
  ids, am = batch["input_ids"], batch["attention_mask"]
  embeddings = module.apply({"params": params}, method=LexMo.word_embeddings)
  if source == "text":
    z_bv = module.apply({"params": params}, ids, am, method=LexMo.text_max_logits)
  else:
    z_bv = module.apply({"params": params}, batch["motion"], batch["motion_mask"],
                        method=LexMo.motion_max_logits)
  _, b_bd = lexical.bottleneck(z_bv, embeddings, model.vocab_mask)
  dec_ids = jnp.where(dec_mask, model.tokenizer.mask_id, ids)
  weights = dec_mask.astype(jnp.float32)

  def hits(b):
    out = module.apply({"params": params}, b, dec_ids, am, method=LexMo.decode)
    return jnp.sum((jnp.argmax(out, -1) == ids) * weights)
  return hits(b_bd), hits(jnp.zeros_like(b_bd)), jnp.sum(weights)


def decoder_accuracy(model, batches, word_weights: np.ndarray, source: str = "text",
                     seed: int = 0) -> dict[str, float]:
  """The weak decoder's accuracy on masked caption words, from the real and a zeroed b.

  Args:
    model: a `LexicalModel` (any phase after LexMLM; `source='motion'` needs LexMMM's head).
    batches: `EvalBatches` of the split (motion, caption).
    word_weights: (V,) informativeness the masks follow (the phase's word weights).
    source: 'text' (b of the caption itself) or 'motion' (b of the paired motion).
    seed: the masks' seed.

  Returns:
    {'from_bottleneck': accuracy, 'from_zero_bottleneck': accuracy, 'masked_words': count}.
  """
  if source not in ("text", "motion"):
    raise ValueError(f"source must be 'text' or 'motion', got {source!r}")
  rate = model.config.loss.get("decoder_mask_rate", 0.5)
  strength = model.config.loss.get("weighting_strength", 1.0)
  continuation = jnp.asarray(model.tokenizer.is_continuation)
  weights = jnp.asarray(word_weights)
  real = zero = count = 0.0
  for k in range(len(batches)):
    batch = batches.batch(k)
    valid = batch["valid"]
    ids = batch["input_ids"]
    am = batch["attention_mask"] * valid[:, None]
    dec_mask = masking.whole_word_mask(
        jax.random.key(seed + k), ids, am, rate=rate, is_continuation_v=continuation,
        word_weight_v=weights, strength=strength)
    keys = ("input_ids", "attention_mask") + (("motion", "motion_mask") if source == "motion"
                                              else ())
    r, z, n = _hits(model, model.params, {key: batch[key] for key in keys}, dec_mask, source)
    real, zero, count = real + float(r), zero + float(z), count + float(n)
  count = max(count, 1.0)
  return {"from_bottleneck": real / count, "from_zero_bottleneck": zero / count,
          "masked_words": int(count)}


def _phase_word_weights(model, workdir: str) -> np.ndarray:
  """The informativeness weights the workdir's phases masked captions with."""
  config = ml_collections.ConfigDict(model.config.to_dict())
  config.loss.word_weighting = config.loss.get("word_weighting", "idf")
  config.loss.weighting_strength = config.loss.get("weighting_strength", 1.0)
  split = data_lib.load_split(config, config.data.train_split)
  return data_lib.word_weights(config, model.tokenizer, split, pathlib.Path(workdir))


def evaluate_bottleneck(workdir: str, split: str = "test", out: str = "") -> dict:
  """The weak decoder's accuracy on masked caption words from the real and a zeroed b.

  Works on a LexMLM workdir (b of the caption) and on LexMMM/LexCMLP workdirs (b of the
  caption and of the paired motion). Writes DIR/eval/bottleneck.json (or --out).
  """
  model = LexicalModel.from_workdir(workdir, require_lexical=False)
  if model.phase == "cmmm":
    raise ValueError(f"{workdir} is a CMMM workdir: its weak decoder is LexMLM's, unchanged; "
                     "measure the LexMLM workdir")
  split_data = data_lib.load_split(model.config, split)
  batches = model.eval_batches(split_data.pairs, split_data.mean, split_data.std)
  weights = _phase_word_weights(model, workdir)
  sources = ("text", "motion") if model.phase in LEXICAL_PHASES else ("text",)
  result = {s: decoder_accuracy(model, batches, weights, s) for s in sources}
  path = pathlib.Path(out) if out else pathlib.Path(workdir) / "eval" / "bottleneck.json"
  atomic_write.write_text(path, json.dumps(result, indent=2) + "\n", "the bottleneck results")
  print(f"{split} split of {model.config.data.root}: the weak decoder rebuilds masked caption "
        f"words ({model.phase} step {model.step})")
  for source, r in result.items():
    print(f"  from the {source} bottleneck: accuracy {r['from_bottleneck']:.3f}; from a zeroed "
          f"bottleneck: {r['from_zero_bottleneck']:.3f} ({r['masked_words']} masked words)")
  print(f"written to {path}")
  return result
