"""A motion VQ-VAE: normalised feature sequences ↔ sequences of discrete codes.

The tokeniser of a T2M-GPT-style text-to-motion generator (Zhang et al., "T2M-GPT:
Generating Human Motion from Textual Descriptions with Discrete Representations", CVPR 2023;
github.com/Mael-zys/T2M-GPT, `models/encdec.py`, `models/resnet.py`, `models/vqvae.py`,
`models/quantize_cnn.py`, `utils/losses.py`, `train_vq.py`). A 1-D convolutional encoder
halves time `down_t` times, each latent vector is replaced by its nearest codebook entry, and
a mirrored decoder (nearest-neighbour upsampling, convolutions) writes the features back.

Shapes use b (batch), t (frames), f (features per frame), n (codes: t / 2**down_t),
k (codebook size), c (code width), w (network width).

Departure from T2M-GPT: it updates the codebook by exponential moving averages with a reset of
unused codes to random latents (`QuantizeEMAReset`, μ = 0.99). Here every model is trained by
one gradient loop, so the codebook is a parameter learned by the gradient of the codebook loss
‖sg(z) − e‖² (the loss whose stochastic-gradient step the EMA update approximates), and
`normalise_codes` (cosine lookup between l2-normalised latents and codes, as in ViT-VQGAN) is
offered to keep the codebook in use without a reset.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lexmo_jax.models.transformer import Dtype

# PyTorch's default Conv1d initialisation (kaiming_uniform with a = √5): U(±1/√fan_in),
# which T2M-GPT's convolutions start from.
_conv_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# Logical names of a convolution kernel (kernel width, in, out) by role. The kernel width
# is never split; feature-sized sides (263 / 251) are replicated, being indivisible.
_FEATURES_IN = ("length", "embed_proj", "embed")
_HIDDEN = ("length", "embed", "mlp")
_FEATURES_OUT = ("length", "embed", "embed_out")


def conv1d(features: int, kernel: int, axes: tuple[str, str, str], name: str, dtype: Dtype,
           stride: int = 1, dilation: int = 1) -> nn.Conv:
  """A 'same'-style 1-D convolution over (B, T, C) with logical names on its parameters.

  Padding is PyTorch's symmetric `dilation · (kernel − 1) // 2` frames, except the strided
  kernel-4 downsampling convolution, which pads 1 as T2M-GPT does (T → T / 2 for even T).
  """
  pad = 1 if stride > 1 else dilation * (kernel - 1) // 2
  return nn.Conv(
      features,
      kernel_size=(kernel,),
      strides=(stride,),
      padding=[(pad, pad)],
      kernel_dilation=(dilation,),
      dtype=dtype,
      param_dtype=jnp.float32,
      kernel_init=nn.with_logical_partitioning(_conv_kernel_init, axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[2],)),
      name=name)


class ResidualStack(nn.Module):
  """T2M-GPT's `Resnet1D`: `depth` blocks x ← x + conv₁(relu(dilated conv₃(relu(x)))).

  Dilations are growth**i for i < depth, applied largest first (T2M-GPT builds both the
  encoder's and the decoder's stacks with `reverse_dilation=True`: 9, 3, 1 for growth 3).
  (B, T, W) → (B, T, W).
  """
  depth: int
  dilation_growth: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x_btw):
    w = x_btw.shape[-1]
    for i in reversed(range(self.depth)):
      h_btw = conv1d(w, 3, _HIDDEN, f"block_{i}_dilated", self.dtype,
                     dilation=self.dilation_growth**i)(nn.relu(x_btw))
      h_btw = conv1d(w, 1, _HIDDEN, f"block_{i}_pointwise", self.dtype)(nn.relu(h_btw))
      x_btw = x_btw + h_btw
    return x_btw


class ConvEncoder(nn.Module):
  """(B, T, F) → latents (B, T / 2**down_t, C)."""
  width: int
  depth: int
  down_t: int
  dilation_growth: int
  code_dim: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, motion_btf):
    x = nn.relu(conv1d(self.width, 3, _FEATURES_IN, "conv_in", self.dtype)(motion_btf))
    for level in range(self.down_t):
      x = conv1d(self.width, 4, _HIDDEN, f"down_{level}", self.dtype, stride=2)(x)
      x = ResidualStack(self.depth, self.dilation_growth, self.dtype, name=f"res_{level}")(x)
    return conv1d(self.code_dim, 3, _HIDDEN, "conv_out", self.dtype)(x)


class ConvDecoder(nn.Module):
  """Quantised latents (B, N, C) → features (B, N · 2**down_t, F)."""
  feature_dim: int
  width: int
  depth: int
  down_t: int
  dilation_growth: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, latents_bnc):
    x = nn.relu(conv1d(self.width, 3, _HIDDEN, "conv_in", self.dtype)(latents_bnc))
    for level in range(self.down_t):
      x = ResidualStack(self.depth, self.dilation_growth, self.dtype, name=f"res_{level}")(x)
      x = jnp.repeat(x, 2, axis=1)  # T2M-GPT's Upsample(scale_factor=2, mode="nearest")
      x = conv1d(self.width, 3, _HIDDEN, f"up_{level}", self.dtype)(x)
    x = nn.relu(conv1d(self.width, 3, _HIDDEN, "conv_hidden", self.dtype)(x))
    return conv1d(self.feature_dim, 3, _FEATURES_OUT, "conv_out", self.dtype)(x)


def _symmetric_uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _l2_normalise(x, axis: int = -1):
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), 1e-12))


def vector_quantise(latents_bnc, codebook_kc, *, normalise: bool = False):
  """Nearest-code quantisation with the straight-through estimator.

  latents (B, N, C), codebook (K, C), both float. With `normalise`, both are l2-normalised
  first and the nearest code is the one of highest cosine similarity; the returned
  quantised vectors are then the normalised codes.

  Returns a dict:
    quantised      (B, N, C) z + sg(e − z): the codes' values forward, the identity backward
                   (so the reconstruction's gradient reaches the encoder).
    codes          (B, N) int32 in [0, K).
    codebook_loss  (B, N) mean over C of (sg(z) − e)²: moves the codes only.
    commitment     (B, N) mean over C of (z − sg(e))²: moves the latents only.
  Distances are computed in float32 whatever the inputs' dtype.
  """
  z = latents_bnc.astype(jnp.float32)
  e = codebook_kc.astype(jnp.float32)
  if normalise:
    z, e = _l2_normalise(z), _l2_normalise(e)
    codes = jnp.argmax(jnp.einsum("bnc,kc->bnk", z, e), axis=-1)
  else:
    # ‖z‖² is the same for every code and leaves the argmin alone.
    distance_bnk = jnp.sum(e * e, axis=-1) - 2.0 * jnp.einsum("bnc,kc->bnk", z, e)
    codes = jnp.argmin(distance_bnk, axis=-1)
  e_bnc = jnp.take(e, codes, axis=0)
  return {
      "quantised": (z + jax.lax.stop_gradient(e_bnc - z)).astype(latents_bnc.dtype),
      "codes": codes.astype(jnp.int32),
      "codebook_loss": jnp.mean((jax.lax.stop_gradient(z) - e_bnc) ** 2, axis=-1),
      "commitment": jnp.mean((z - jax.lax.stop_gradient(e_bnc)) ** 2, axis=-1),
  }


def code_statistics(codes_bn, mask_bn, codebook_size: int):
  """(perplexity, usage) of the codes at valid positions.

  perplexity = exp(−Σ p log p) of the code histogram (T2M-GPT's codebook health measure: K
  when every code is used equally, 1 when one code is used); usage = fraction of the K codes
  used at least once. Both scalars, float32; 1 and 0 when no position is valid.
  """
  counts_k = jnp.zeros((codebook_size,), jnp.float32).at[codes_bn.reshape(-1)].add(
      mask_bn.reshape(-1).astype(jnp.float32))
  p_k = counts_k / jnp.maximum(jnp.sum(counts_k), 1.0)
  entropy = -jnp.sum(jnp.where(p_k > 0, p_k * jnp.log(jnp.where(p_k > 0, p_k, 1.0)), 0.0))
  return jnp.exp(entropy), jnp.mean((counts_k > 0).astype(jnp.float32))


class MotionVQVAE(nn.Module):
  """Convolutional VQ-VAE over normalised motion features (B, T, F).

  T must be a multiple of 2**down_t (T2M-GPT trains on 64-frame windows, codes every 4
  frames); a ValueError otherwise. T2M-GPT's sizes: width = code_dim = 512, codebook 512,
  depth 3, dilation growth 3, down_t 2, ReLU, no normalisation layers.
  """
  feature_dim: int  # 263 HumanML3D, 251 KIT-ML
  width: int = 512
  depth: int = 3
  down_t: int = 2
  dilation_growth: int = 3
  codebook_size: int = 512
  code_dim: int = 512
  normalise_codes: bool = False
  dtype: Dtype = jnp.float32

  def setup(self):
    dtype = jnp.dtype(self.dtype)
    self.encoder = ConvEncoder(self.width, self.depth, self.down_t, self.dilation_growth,
                                   self.code_dim, dtype, name="encoder")
    self.decoder = ConvDecoder(self.feature_dim, self.width, self.depth, self.down_t,
                                   self.dilation_growth, dtype, name="decoder")
    # T2M-GPT's gradient-learned quantiser (`Quantizer`) starts its codes at U(±1/K).
    k = self.codebook_size
    self.codebook = self.param(
        "codebook", nn.with_logical_partitioning(_symmetric_uniform(1.0 / k), ("vocab", "embed")),
        (k, self.code_dim), jnp.float32)

  @property
  def frames_per_code(self) -> int:
    return 2**self.down_t

  def _check(self, motion_btf):
    if motion_btf.ndim != 3 or motion_btf.shape[-1] != self.feature_dim:
      raise ValueError(f"motion must be (B, T, {self.feature_dim}), got {motion_btf.shape}")
    if motion_btf.shape[1] % self.frames_per_code:
      raise ValueError(f"T={motion_btf.shape[1]} frames is not a multiple of "
                       f"2**down_t = {self.frames_per_code}")

  def _latents(self, motion_btf):
    self._check(motion_btf)
    return self.encoder(motion_btf.astype(jnp.dtype(self.dtype)))

  def encode(self, motion_btf):
    """Motion (B, T, F) → codes (B, T / 2**down_t) int32 in [0, K)."""
    return vector_quantise(self._latents(motion_btf), self.codebook,
                           normalise=self.normalise_codes)["codes"]

  def decode(self, codes_bn):
    """Codes (B, N) int → features (B, N · 2**down_t, F) float32."""
    e_kc = self.codebook
    if self.normalise_codes:
      e_kc = _l2_normalise(e_kc)
    latents_bnc = jnp.take(e_kc, codes_bn, axis=0).astype(jnp.dtype(self.dtype))
    return self.decoder(latents_bnc).astype(jnp.float32)

  def __call__(self, motion_btf, mask_bt, deterministic: bool = True):
    """Reconstruction and quantiser terms of motion (B, T, F) with frame mask (B, T).

    Frames outside the mask are zeroed before encoding (what the convolutions' padding
    sees at the ends), and the code mask is the frame mask read every 2**down_t frames.
    `deterministic` is accepted for the trainer's common interface: nothing here is random.

    Returns a dict: reconstruction (B, T, F) float32, codes (B, N) int32, code_mask (B, N),
    codebook_loss and commitment_loss (scalars: means over valid codes and code channels),
    perplexity and code_usage (scalars over the valid codes of the batch).
    """
    del deterministic
    mask_bt = mask_bt.astype(bool)
    motion_btf = jnp.where(mask_bt[..., None], motion_btf, 0.0)
    quant = vector_quantise(self._latents(motion_btf), self.codebook,
                            normalise=self.normalise_codes)
    mask_bn = mask_bt[:, ::self.frames_per_code]
    weight_bn = mask_bn.astype(jnp.float32)
    denominator = jnp.maximum(jnp.sum(weight_bn), 1.0)
    perplexity, usage = code_statistics(quant["codes"], mask_bn, self.codebook_size)
    return {
        "reconstruction": self.decoder(quant["quantised"]).astype(jnp.float32),
        "codes": quant["codes"],
        "code_mask": mask_bn,
        "codebook_loss": jnp.sum(quant["codebook_loss"] * weight_bn) / denominator,
        "commitment_loss": jnp.sum(quant["commitment"] * weight_bn) / denominator,
        "perplexity": perplexity,
        "code_usage": usage,
    }


def _masked_smooth_l1(prediction_btx, target_btx, weight_bt):
  per_element = optax.huber_loss(prediction_btx, target_btx, delta=1.0)
  denominator = jnp.maximum(jnp.sum(weight_bt) * prediction_btx.shape[-1], 1.0)
  return jnp.sum(per_element * weight_bt[..., None]) / denominator


def vqvae_loss(outputs: dict, motion_btf, mask_bt, *, joints: int, commitment: float = 0.02,
               velocity_weight: float = 0.5, codebook_weight: float = 1.0):
  """T2M-GPT's VQ-VAE objective, masked over valid frames. Returns (loss, terms).

  reconstruction  smooth L1 (PyTorch's SmoothL1Loss, β = 1) between `outputs`'
                  reconstruction and the motion over the first (J − 1)·12 + 11 features
                  (all of HumanML3D's 263 and KIT-ML's 251).
  position        smooth L1 over features [4, 4 + (J − 1)·3): the root-relative joint
                  positions. T2M-GPT calls it the velocity loss (`forward_vel`, `--loss-vel`)
                  but compares the positions themselves, not their differences over time; its
                  released recipe weights it 0.5.
  commitment      weighted `commitment` (T2M-GPT: 0.02);
  codebook        weighted `codebook_weight`: it only moves the codes, standing in for
                  T2M-GPT's EMA update (see the module docstring).

  motion (B, T, F) float, mask (B, T) bool, joints J (22 HumanML3D, 21 KIT-ML). Smooth-L1
  terms are means over valid frames × compared features. A ValueError when F does not match
  J. The terms dict holds the four (unweighted) terms plus perplexity and code_usage.
  """
  feature_dim = (joints - 1) * 12 + 4 + 3 + 4
  if motion_btf.shape[-1] < feature_dim:
    raise ValueError(f"{joints} joints need at least {feature_dim} features per frame, got "
                     f"{motion_btf.shape[-1]}")
  weight_bt = mask_bt.astype(jnp.float32)
  prediction = outputs["reconstruction"].astype(jnp.float32)
  target = motion_btf.astype(jnp.float32)
  reconstruction = _masked_smooth_l1(prediction[..., :feature_dim], target[..., :feature_dim],
                                     weight_bt)
  positions = slice(4, 4 + (joints - 1) * 3)
  position = _masked_smooth_l1(prediction[..., positions], target[..., positions], weight_bt)
  loss = (reconstruction + velocity_weight * position + commitment * outputs["commitment_loss"]
          + codebook_weight * outputs["codebook_loss"])
  terms = {
      "reconstruction": reconstruction,
      "position": position,
      "commitment": outputs["commitment_loss"],
      "codebook": outputs["codebook_loss"],
      "perplexity": outputs["perplexity"],
      "code_usage": outputs["code_usage"],
  }
  return loss, terms
