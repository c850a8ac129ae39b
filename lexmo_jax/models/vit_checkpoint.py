"""The motion encoder started from a pre-trained image ViT (`config.motion.init`).

MotionPatches owes much of its gain to a ViT-B/16 initialised from ImageNet-21k: its motion
"image" is the joints' positions along the 5 kinematic chains (each resampled to 16 points) over
time, with x, y, z as the three colour channels, cut into 16×16 patches (16 frames × 16 points
of one chain). lexmo_jax's motion encoder is that ViT (pre-LN blocks, [CLS] token, learned
positions, final LayerNorm), so a checkpoint's tensors load by name, and two are adapted:

- **patch embedding**: the convolution kernel (D, 3, ph, pw) over (channel, height, width)
  becomes the token embedding over a patch's values in the tokenizer's order (frame, point,
  coordinate): channel c reads coordinate c (R=x, G=y, B=z), height is time, width runs along
  the chain. A kernel whose patch is not `patch_frames` × `points_per_chain` is resized to it
  (bilinear, scaled by the area ratio so that a constant patch gives the same response).
- **position embeddings**: the checkpoint's square grid (14×14 for 224-pixel ViT-B/16) is
  resampled (bicubic, as timm and Hugging Face resample a ViT's grid) to the motion grid:
  ceil(max_frames / patch_frames) rows of time × one column per kinematic chain. [CLS]'s own
  embedding is kept.

Formats: a Hugging Face folder (`config.json` with model_type "vit", and `model.safetensors`
or `flax_model.msgpack`; `ViTModel` or `ViTForImageClassification`), or a big_vision/timm
`.npz` (augreg's layout: `embedding/kernel`, `Transformer/encoderblock_i/...`). Every tensor is
reported as loaded, adapted, new (ours only: the CMMM mask token) or unused (theirs only:
pooler and classifier heads).
"""
from __future__ import annotations

import json
import pathlib
import re

import jax
import numpy as np

from lexmo_jax.models.motion_encoder import MotionEncoderConfig


class ViTCheckpointError(ValueError):
  pass


def _flatten(tree, prefix=""):
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(_flatten(value, name + "/"))
    else:
      out[name] = np.asarray(value, np.float32)
  return out


def _unflatten(flat):
  tree = {}
  for name, value in flat.items():
    node = tree
    *parents, last = name.split("/")
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = value
  return tree


def _read_hf(folder: pathlib.Path) -> dict[str, np.ndarray]:
  """HF ViT tensors in PyTorch's names and layouts ('vit.' prefix dropped)."""
  raw = json.loads((folder / "config.json").read_text())
  if raw.get("model_type") != "vit":
    raise ViTCheckpointError(f"{folder / 'config.json'}: model_type {raw.get('model_type')!r}, "
                             "expected 'vit'")
  if (folder / "model.safetensors").is_file():
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    tensors = {k: np.asarray(v, np.float32) for k, v in load_file(
        str(folder / "model.safetensors")).items()}
  elif (folder / "flax_model.msgpack").is_file():
    from flax import serialization  # pylint: disable=g-import-not-at-top
    flat = _flatten(serialization.msgpack_restore((folder / "flax_model.msgpack").read_bytes()))
    tensors = {}
    for name, value in flat.items():
      parts = name.split("/")
      leaf = parts[-1]
      if leaf == "kernel":
        # Flax Dense (in, out) → torch (out, in); Conv (kh, kw, in, out) → (out, in, kh, kw).
        value = value.T if value.ndim == 2 else value.transpose(3, 2, 0, 1)
        leaf = "weight"
      elif leaf == "scale":
        leaf = "weight"
      tensors[".".join(parts[:-1] + [leaf])] = value
  else:
    raise ViTCheckpointError(f"{folder} holds neither model.safetensors nor flax_model.msgpack")
  return {re.sub(r"^vit\.", "", k): v for k, v in tensors.items()}


class _Renamed:
  """A checkpoint's tensors taken under our names: `ours` (our name → tensor), `source` (our
  name → theirs) and `used` (their names taken)."""

  def __init__(self, tensors: dict[str, np.ndarray]):
    self.tensors, self.ours, self.source, self.used = tensors, {}, {}, set()

  def take(self, our_name: str, their_name: str, transform=lambda x: x) -> None:
    """Takes `their_name` as `our_name` (through `transform`), if the checkpoint has it."""
    if their_name not in self.tensors:
      return
    self.ours[our_name] = transform(self.tensors[their_name])
    self.source[our_name] = their_name
    self.used.add(their_name)


def _hf_to_ours(t: dict[str, np.ndarray], layers: int) -> tuple[dict, dict, set[str]]:
  """(our flat tensors, their source names, the checkpoint names used) from HF names."""
  renamed = _Renamed(t)
  take = renamed.take

  take("cls", "embeddings.cls_token", lambda x: x.reshape(-1))
  take("position_embeddings", "embeddings.position_embeddings", lambda x: x.reshape(
      -1, x.shape[-1]))
  # (D, C, ph, pw) → (ph, pw, C, D), the big_vision layout both loaders adapt from.
  take("token_embedding/kernel", "embeddings.patch_embeddings.projection.weight",
       lambda x: x.transpose(2, 3, 1, 0))
  take("token_embedding/bias", "embeddings.patch_embeddings.projection.bias")
  pairs = {"attention/query": "attention.attention.query", "attention/key":
           "attention.attention.key", "attention/value": "attention.attention.value",
           "attention/out": "attention.output.dense", "mlp/wi": "intermediate.dense",
           "mlp/wo": "output.dense"}
  norms = {"attention_norm": "layernorm_before", "mlp_norm": "layernorm_after"}
  for i in range(layers):
    for ours_name, theirs in pairs.items():
      take(f"encoder/layer_{i}/{ours_name}/kernel", f"encoder.layer.{i}.{theirs}.weight",
           lambda x: x.T)
      take(f"encoder/layer_{i}/{ours_name}/bias", f"encoder.layer.{i}.{theirs}.bias")
    for ours_name, theirs in norms.items():
      take(f"encoder/layer_{i}/{ours_name}/scale", f"encoder.layer.{i}.{theirs}.weight")
      take(f"encoder/layer_{i}/{ours_name}/bias", f"encoder.layer.{i}.{theirs}.bias")
  take("final_norm/scale", "layernorm.weight")
  take("final_norm/bias", "layernorm.bias")
  return renamed.ours, renamed.source, renamed.used


def _npz_to_ours(t: dict[str, np.ndarray], layers: int) -> tuple[dict, dict, set[str]]:
  """As `_hf_to_ours`, from big_vision/timm `.npz` names."""
  renamed = _Renamed(t)
  take = renamed.take

  take("cls", "cls", lambda x: x.reshape(-1))
  take("position_embeddings", "Transformer/posembed_input/pos_embedding",
       lambda x: x.reshape(-1, x.shape[-1]))
  take("position_embeddings", "pos_embedding", lambda x: x.reshape(-1, x.shape[-1]))
  take("token_embedding/kernel", "embedding/kernel")
  take("token_embedding/bias", "embedding/bias")
  for i in range(layers):
    block = f"Transformer/encoderblock_{i}"
    attention = f"{block}/MultiHeadDotProductAttention_1"
    for name in ("query", "key", "value"):
      take(f"encoder/layer_{i}/attention/{name}/kernel", f"{attention}/{name}/kernel",
           lambda x: x.reshape(x.shape[0], -1))
      take(f"encoder/layer_{i}/attention/{name}/bias", f"{attention}/{name}/bias",
           lambda x: x.reshape(-1))
    take(f"encoder/layer_{i}/attention/out/kernel", f"{attention}/out/kernel",
         lambda x: x.reshape(-1, x.shape[-1]))
    take(f"encoder/layer_{i}/attention/out/bias", f"{attention}/out/bias")
    for ours_name, theirs in (("attention_norm", "LayerNorm_0"), ("mlp_norm", "LayerNorm_2")):
      take(f"encoder/layer_{i}/{ours_name}/scale", f"{block}/{theirs}/scale")
      take(f"encoder/layer_{i}/{ours_name}/bias", f"{block}/{theirs}/bias")
    for ours_name, theirs in (("mlp/wi", "Dense_0"), ("mlp/wo", "Dense_1")):
      take(f"encoder/layer_{i}/{ours_name}/kernel", f"{block}/MlpBlock_3/{theirs}/kernel")
      take(f"encoder/layer_{i}/{ours_name}/bias", f"{block}/MlpBlock_3/{theirs}/bias")
  take("final_norm/scale", "Transformer/encoder_norm/scale")
  take("final_norm/bias", "Transformer/encoder_norm/bias")
  return renamed.ours, renamed.source, renamed.used


def adapt_patch_kernel(kernel_hwcd: np.ndarray, patch_frames: int, points: int) -> np.ndarray:
  """A ViT patch kernel (ph, pw, 3, D) as the token embedding (patch_frames · points · 3, D) of
  the tokenizer's (frame, point, coordinate) order; resized bilinearly when the patch differs
  (scaled by the area ratio)."""
  ph, pw, c, d = kernel_hwcd.shape
  if c != 3:
    raise ViTCheckpointError(f"the patch embedding reads {c} channels; motion patches have 3 "
                             "(x, y, z)")
  if (ph, pw) != (patch_frames, points):
    resized = jax.image.resize(kernel_hwcd, (patch_frames, points, c, d), "bilinear",
                               antialias=False)
    kernel_hwcd = np.asarray(resized) * (ph * pw) / (patch_frames * points)
  return kernel_hwcd.reshape(patch_frames * points * 3, d)


def adapt_positions(position_nd: np.ndarray, rows: int, cols: int,
                    grid_shape: tuple[int, int] | None = None) -> np.ndarray:
  """[CLS] + a grid of position embeddings (1 + gh·gw, D), row-major, resampled (bicubic) to
  [CLS] + rows × cols (time rows, chain columns). `grid_shape` (gh, gw); None = square."""
  cls_d, grid = position_nd[:1], position_nd[1:]
  if grid_shape is None:
    g = int(round(np.sqrt(grid.shape[0])))
    grid_shape = (g, g)
  if grid_shape[0] * grid_shape[1] != grid.shape[0]:
    raise ViTCheckpointError(f"{grid.shape[0]} position embeddings after [CLS] do not form "
                             f"a {grid_shape[0]}×{grid_shape[1]} grid")
  if tuple(grid_shape) != (rows, cols):
    grid = np.asarray(jax.image.resize(grid.reshape(*grid_shape, -1),
                                       (rows, cols, grid.shape[-1]), "bicubic",
                                       antialias=False))
  return np.concatenate([cls_d, grid.reshape(rows * cols, -1)], axis=0)


def _hf_grid(folder: pathlib.Path) -> tuple[int, int]:
  """(rows, cols) of a HF ViT's patch grid, from its config.json."""
  raw = json.loads((folder / "config.json").read_text())
  size, patch = raw.get("image_size", 224), raw.get("patch_size", 16)
  h, w = (size, size) if isinstance(size, int) else size
  ph, pw = (patch, patch) if isinstance(patch, int) else patch
  return h // ph, w // pw


def load_motion_vit(path, config: MotionEncoderConfig, fresh: dict) -> tuple[dict, list[str]]:
  """The motion encoder's parameters from a ViT checkpoint, and a report line per tensor.

  Args:
    path: a Hugging Face ViT folder or a big_vision/timm `.npz` file.
    config: the motion encoder's config (patches tokenizer).
    fresh: the freshly initialised motion parameters (their tree and shapes; kept where the
      checkpoint has nothing).

  Raises:
    ViTCheckpointError: not a ViT checkpoint, a frames tokenizer, or widths or layers that
      differ (each named with the file).
  """
  path = pathlib.Path(path)
  if config.tokenizer != "patches":
    raise ViTCheckpointError("config.motion.init loads an image ViT over motion patches: set "
                             "config.motion.tokenizer='patches'")
  if path.is_dir():
    tensors = _read_hf(path)
    convert = _hf_to_ours
    grid_shape = _hf_grid(path)
    n_layers = len({m.group(1) for k in tensors
                    if (m := re.match(r"encoder\.layer\.(\d+)\.", k))})
  elif path.suffix == ".npz" and path.is_file():
    with np.load(path) as z:
      tensors = {k: np.asarray(z[k], np.float32) for k in z.files}
    convert = _npz_to_ours
    grid_shape = None
    n_layers = len({m.group(1) for k in tensors
                    if (m := re.match(r"Transformer/encoderblock_(\d+)/", k))})
  else:
    raise ViTCheckpointError(f"{path} is neither a Hugging Face ViT folder nor a .npz file")
  if n_layers != config.num_layers:
    raise ViTCheckpointError(f"{path} has {n_layers} transformer layers; "
                             f"config.motion.num_layers is {config.num_layers}")
  ours, source, used = convert(tensors, n_layers)
  flat = _flatten(fresh)
  rows = -(-config.max_frames // config.patch_frames)
  from input_pipeline import dataset_kinds  # pylint: disable=g-import-not-at-top
  cols = len(dataset_kinds.get_kind(config.kind).kinematic_chains)
  report, out = [], {}
  for name, value in flat.items():
    if name not in ours:
      out[name] = value
      report.append(f"new      {name} {tuple(value.shape)} (not in {path.name})")
      continue
    theirs = ours[name]
    how = ""
    if name == "token_embedding/kernel":
      shape = theirs.shape
      theirs = adapt_patch_kernel(theirs, config.patch_frames, config.points_per_chain)
      how = (f"patch kernel {shape[0]}×{shape[1]}×{shape[2]} → (frame, point, xyz) "
             f"{config.patch_frames}×{config.points_per_chain}×3")
    elif name == "position_embeddings":
      if grid_shape is None:  # a .npz does not say: the motion grid if the count fits, else square
        g = int(round(np.sqrt(theirs.shape[0] - 1)))
        grid_shape = (rows, cols) if theirs.shape[0] - 1 == rows * cols else (g, g)
      theirs = adapt_positions(theirs, rows, cols, grid_shape)
      how = (f"grid {grid_shape[0]}×{grid_shape[1]} → {rows}×{cols} (time × chains"
             + (", bicubic)" if tuple(grid_shape) != (rows, cols) else ", same grid)"))
    if theirs.shape != value.shape:
      raise ViTCheckpointError(f"{path}: {source[name]} gives {name} the shape {theirs.shape}, "
                               f"but the motion encoder's is {tuple(value.shape)} (check "
                               "config.motion.hidden_size, mlp_dim)")
    out[name] = theirs.astype(np.float32)
    report.append((f"adapted  {name} from {source[name]}: {how}" if how else
                   f"loaded   {name} from {source[name]}"))
  report += [f"unused   {name} {tuple(tensors[name].shape)}" for name in sorted(tensors)
             if name not in used]
  return _unflatten(out), report
