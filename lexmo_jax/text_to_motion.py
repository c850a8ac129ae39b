"""A trained text-to-motion generator: captions in, motions (features, joints) out.

  from lexmo_jax.text_to_motion import TextToMotion
  t2m = TextToMotion.from_workdir("runs/demo/generation/generator_lexical")
  motions = t2m.generate(["a person jumps twice"], seed=0)   # [(T, F) raw features]

The generator workdir names the text encoder that conditions it (`config.generator`); its
`init_from` VQ-VAE is inside its own checkpoint. Sampling: `config.generator`'s classifier-free
guidance scale, temperature and top-k (`code_generator.sample`).
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import dataset_kinds, humanml3d
from input_pipeline.motion.features import features_to_joints
from lexmo_jax.conditioning import ConditionEncoder, condition_encoder
from lexmo_jax.inference import open_workdir, restore_params
from lexmo_jax.models import code_generator, generation
from lexmo_jax.models.generation import GenerationModel

# Conditions per compiled sampling batch (the last batch is padded).
BATCH_SIZE = 64


class TextToMotion:
  """A generator workdir's VQ-VAE, code generator and condition encoder, on one device."""

  def __init__(self, config, params, conditions: ConditionEncoder, step: int):
    self.config = config
    self.params = params
    self.conditions = conditions
    self.step = step
    dim = int(params["generator"]["condition_embedding"]["kernel"].shape[0])
    c = generation.model_config(config, dim)
    self.model = GenerationModel(c)
    self.kind = dataset_kinds.get_kind(config.data.kind)
    self.frames_per_code = 2**c.down_t
    self.max_codes = c.max_codes

  @classmethod
  def from_workdir(cls, workdir, text_encoder: str | None = None) -> TextToMotion:
    """Loads a finished generator workdir; `text_encoder` overrides the path its config
    names (`generator.text_encoder`), for a workdir moved to another machine.

    Raises:
      lexmo_jax.inference.WorkdirError: not a finished generator workdir.
      ValueError, FileNotFoundError: the condition encoder cannot be loaded.
    """
    config, ckpt, step, _ = open_workdir(workdir, ("generator",))
    g = config.generator
    conditions = condition_encoder(g.condition, g.text_encoder if text_encoder is None
                                   else text_encoder)
    dim = conditions(["a person walks forward"]).shape[1]
    model = GenerationModel(generation.model_config(config, dim))
    params = restore_params(ckpt, step, model, config)
    return cls(config, params, conditions, step)

  @property
  def label(self) -> str:
    """What conditions this generator, for tables."""
    return self.conditions.label

  def normalisation(self) -> tuple[np.ndarray, np.ndarray]:
    return humanml3d.load_normalisation(self.config.data.root, self.config.data.kind)

  def __hash__(self):
    return id(self)

  @functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
  def _sample(self, params, condition_bc, rng, guidance_scale, temperature, top_k):
    step_fn = code_generator.cached_step_fn(self.model, params,
                                            lambda m, *a: m.generator.step(*a))
    codes, lengths = code_generator.sample(
        step_fn, condition_bc, rng, max_codes=self.max_codes, guidance_scale=guidance_scale,
        temperature=temperature, top_k=top_k, min_codes=self.config.generator.min_codes)
    motion = self.model.apply({"params": params}, codes, method=GenerationModel.decode)
    return motion, lengths * self.frames_per_code

  def sample(self, conditions_nc: np.ndarray, seed: int = 0, guidance_scale: float | None = None,
             temperature: float | None = None, top_k: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Generated motions for conditions (N, C): normalised features (N, T, F) (zero past each
    motion's end) and lengths (N,) in frames (a multiple of 2**down_t).

    Row n of batch k draws with fold_in(key(seed), k): the same seed gives the same motions.
    guidance_scale, temperature, top_k: None = the workdir's config.generator values.
    """
    g = self.config.generator
    scale = float(g.guidance_scale if guidance_scale is None else guidance_scale)
    temp = float(g.temperature if temperature is None else temperature)
    k = int(g.top_k if top_k is None else top_k)
    motions, lengths = [], []
    key = jax.random.key(seed)
    for b, start in enumerate(range(0, len(conditions_nc), BATCH_SIZE)):
      chunk = np.asarray(conditions_nc[start:start + BATCH_SIZE], np.float32)
      n = len(chunk)
      padded = np.pad(chunk, [(0, BATCH_SIZE - n), (0, 0)])
      motion, length = jax.device_get(self._sample(self.params, padded,
                                                   jax.random.fold_in(key, b), scale, temp, k))
      frames = np.arange(motion.shape[1])[None, :, None] < length[:, None, None]
      motions.append(np.where(frames, motion, 0.0)[:n])
      lengths.append(length[:n])
    return np.concatenate(motions), np.concatenate(lengths).astype(np.int32)

  def generate(self, texts: Sequence[str], seed: int = 0, **sampling) -> list[np.ndarray]:
    """Raw (unnormalised) (T_i, F) feature arrays of one generated motion per text.

    Raises:
      ValueError: an empty text or one without a known word (named).
    """
    motions, lengths = self.sample(self.conditions(list(texts)), seed, **sampling)
    mean, std = self.normalisation()
    return [m[:n] * std + mean for m, n in zip(motions, lengths)]

  def joints(self, features: np.ndarray) -> np.ndarray:
    """(T, J, 3) joint positions in metres of raw features (T, F)."""
    return features_to_joints(features, self.kind.num_joints)
