"""The motion encoder started from an image ViT: a Hugging Face ViT folder and a big_vision
.npz, compared with transformers' PyTorch ViT on the same motion image."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lexmo_jax.models import motion_tokens  # pylint: disable=g-import-not-at-top
from lexmo_jax.models.motion_encoder import MotionEncoder, MotionEncoderConfig
from lexmo_jax.models.vit_checkpoint import (ViTCheckpointError, adapt_positions,
                                             load_motion_vit)

ROWS, CHAINS, WIDTH, LAYERS = 4, 5, 32, 2


def _hf_vit(folder, image_size=(ROWS * 16, CHAINS * 16), patch=16):
  torch.manual_seed(0)
  config = transformers.ViTConfig(
      hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=64,
      image_size=list(image_size), patch_size=patch, num_channels=3, layer_norm_eps=1e-6,
      hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  model = transformers.ViTModel(config).eval()
  with torch.no_grad():  # non-zero biases and norms, so that every tensor's place is tested
    for p in model.parameters():
      p.add_(0.05 * torch.randn_like(p))
  model.save_pretrained(folder)
  return model


def _ours(max_frames=ROWS * 16):
  config = MotionEncoderConfig(kind="humanml3d", tokenizer="patches", max_frames=max_frames,
                               hidden_size=WIDTH, num_layers=LAYERS, num_heads=4, mlp_dim=64,
                               dropout_rate=0.0)
  module = MotionEncoder(config)
  motion = jnp.zeros((1, max_frames, 263))
  fresh = module.init(jax.random.key(1), motion, jnp.ones((1, max_frames), bool),
                      jnp.zeros((1, config.num_tokens), bool))["params"]
  from flax import linen as nn
  return config, module, jax.device_get(nn.unbox(fresh))


def _motion_image(motion_btf):
  """The (B, 3, T, chains · points) image the tokenizer cuts into patches."""
  joints = motion_tokens.joint_positions_from_features(jnp.asarray(motion_btf), 22)
  resample = jnp.asarray(motion_tokens.chain_resampling_matrix("humanml3d", 16))
  image = jnp.einsum("cj,btjk->btck", resample, joints)  # (B, T, C, P, 3)
  b, t = image.shape[:2]
  return np.asarray(image.reshape(b, t, -1, 3).transpose(0, 3, 1, 2))


def test_a_hugging_face_vit_gives_transformers_states(tmp_path):
  hf = _hf_vit(tmp_path / "vit")
  config, module, fresh = _ours()
  params, report = load_motion_vit(tmp_path / "vit", config, fresh)
  motion = np.random.default_rng(0).normal(size=(2, ROWS * 16, 263)).astype(np.float32)
  ours, _ = module.apply({"params": params}, jnp.asarray(motion),
                         jnp.ones((2, ROWS * 16), bool))
  with torch.no_grad():
    theirs = hf(pixel_values=torch.tensor(_motion_image(motion))).last_hidden_state.numpy()
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4)
  text = "\n".join(report)
  assert "adapted  token_embedding/kernel" in text and "loaded   cls" in text
  assert "new      mask_embedding" in text and "unused   pooler.dense.weight" in text
  assert sum(line.startswith("loaded") for line in report) == 4 + LAYERS * 16


def test_a_big_vision_npz_loads_the_same_tensors(tmp_path):
  _hf_vit(tmp_path / "vit")
  from safetensors.numpy import load_file
  # The Hub layout's names, as the saved file holds them.
  sd = load_file(str(tmp_path / "vit" / "model.safetensors"))
  d, h = WIDTH, 4
  npz = {"cls": sd["embeddings.cls_token"],
         "Transformer/posembed_input/pos_embedding": sd["embeddings.position_embeddings"],
         "embedding/kernel": sd["embeddings.patch_embeddings.projection.weight"].transpose(
             2, 3, 1, 0),
         "embedding/bias": sd["embeddings.patch_embeddings.projection.bias"],
         "Transformer/encoder_norm/scale": sd["layernorm.weight"],
         "Transformer/encoder_norm/bias": sd["layernorm.bias"],
         "head/kernel": np.zeros((d, 10), np.float32)}
  for i in range(LAYERS):
    block, p = f"Transformer/encoderblock_{i}", f"encoder.layer.{i}."
    for name in ("query", "key", "value"):
      npz[f"{block}/MultiHeadDotProductAttention_1/{name}/kernel"] = sd[
          f"{p}attention.attention.{name}.weight"].T.reshape(d, h, d // h)
      npz[f"{block}/MultiHeadDotProductAttention_1/{name}/bias"] = sd[
          f"{p}attention.attention.{name}.bias"].reshape(h, d // h)
    npz[f"{block}/MultiHeadDotProductAttention_1/out/kernel"] = sd[
        f"{p}attention.output.dense.weight"].T.reshape(h, d // h, d)
    npz[f"{block}/MultiHeadDotProductAttention_1/out/bias"] = sd[f"{p}attention.output.dense.bias"]
    for ours, theirs in (("LayerNorm_0", "layernorm_before"), ("LayerNorm_2", "layernorm_after")):
      npz[f"{block}/{ours}/scale"] = sd[f"{p}{theirs}.weight"]
      npz[f"{block}/{ours}/bias"] = sd[f"{p}{theirs}.bias"]
    for ours, theirs in (("Dense_0", "intermediate.dense"), ("Dense_1", "output.dense")):
      npz[f"{block}/MlpBlock_3/{ours}/kernel"] = sd[f"{p}{theirs}.weight"].T
      npz[f"{block}/MlpBlock_3/{ours}/bias"] = sd[f"{p}{theirs}.bias"]
  np.savez(tmp_path / "vit.npz", **npz)
  config, _, fresh = _ours()
  from_hf, _ = load_motion_vit(tmp_path / "vit", config, fresh)
  from_npz, report = load_motion_vit(tmp_path / "vit.npz", config, fresh)
  for a, b in zip(jax.tree.leaves(from_hf), jax.tree.leaves(from_npz)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  assert "unused   head/kernel (32, 10)" in report


def test_a_square_vit_grid_is_resampled_to_the_motion_grid(tmp_path):
  _hf_vit(tmp_path / "vit", image_size=(32, 32))
  config, _, fresh = _ours()
  params, report = load_motion_vit(tmp_path / "vit", config, fresh)
  assert params["position_embeddings"].shape == (1 + ROWS * CHAINS, WIDTH)
  assert any("grid 2×2 → 4×5 (time × chains, bicubic)" in line for line in report)
  # A constant field stays constant; [CLS]'s own embedding is kept.
  table = np.concatenate([np.full((1, 3), 7.0), np.ones((9, 3))]).astype(np.float32)
  resampled = adapt_positions(table, ROWS, CHAINS)
  np.testing.assert_allclose(resampled[0], 7.0)
  np.testing.assert_allclose(resampled[1:], 1.0, atol=1e-5)


def test_mismatches_are_named(tmp_path):
  _hf_vit(tmp_path / "vit")
  config, _, fresh = _ours()
  import dataclasses
  with pytest.raises(ViTCheckpointError, match="has 2 transformer layers; config.motion.num_"):
    load_motion_vit(tmp_path / "vit", dataclasses.replace(config, num_layers=3), fresh)
  with pytest.raises(ViTCheckpointError, match="tokenizer='patches'"):
    load_motion_vit(tmp_path / "vit", dataclasses.replace(config, tokenizer="frames"), fresh)
  raw = json.loads((tmp_path / "vit" / "config.json").read_text())
  raw["model_type"] = "bert"
  (tmp_path / "vit" / "config.json").write_text(json.dumps(raw))
  with pytest.raises(ViTCheckpointError, match="expected 'vit'"):
    load_motion_vit(tmp_path / "vit", config, fresh)
  with pytest.raises(ViTCheckpointError, match="neither a Hugging Face ViT folder nor"):
    load_motion_vit(tmp_path / "nothing", config, fresh)
