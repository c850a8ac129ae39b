"""Exports a trained workdir's text encoder for PyTorch: transformers, and text-to-motion
generators that read CLIP's `encode_text`.

  python -m lexmo_jax.export --workdir=runs/demo/lexcmlp --out=exported/text_encoder \
      [--format=pytorch]

The folder (`--format=pytorch`, the default and only format) holds:
  config.json, model.safetensors     the encoder and its lexical (masked-LM) head under
                                     transformers' PyTorch names: transformers 5 loads them
                                     with AutoModel / AutoModelForMaskedLM, and so does
                                     `lexmo_jax.models.text_encoder.from_pretrained`;
  tokenizer files                    AutoTokenizer gives the workdir's token ids;
  lexical_pooling.json               the vocabulary mask (ids a lexical vector may not weigh),
                                     the text limit and the pooling rules, so that SPLADE-max
                                     over the exported logits gives the workdir's lexical
                                     text vectors;
  condition_projection.safetensors   only when the workdir trained a `text_condition`
                                     projection: `weight` (C, D) and `bias` (C,) of a
                                     torch.nn.Linear(D, C) over the pooled vector (C = 512,
                                     CLIP ViT-B/32's width, in the conditioning configs);
  README.md                          how to load it and use it in MoMask, T2M-GPT and MDM.
"""
from __future__ import annotations

import json
import logging
import pathlib
import string

import numpy as np
from absl import flags

from lexmo_jax.cli import fail, run, setup_logging

log = logging.getLogger(__name__)

FORMATS = ("pytorch",)
POOLING_FILE = "lexical_pooling.json"
CONDITION_FILE = "condition_projection.safetensors"
README_FILE = "README.md"

LEXICAL_RULE = ("max over the tokens with attention_mask 1 of log(1 + relu(logits)), then 0 at "
                "the excluded_ids")
POOLED_RULE = ("mean of last_hidden_state over the tokens with attention_mask 1 ([CLS] and "
               "[SEP] included)")


def condition_projection(params) -> tuple[np.ndarray, np.ndarray] | None:
  """The trained text conditioning projection in torch.nn.Linear's layout, if there is one.

  Args:
    params: the whole model's parameter tree (unboxed).

  Returns:
    (weight (C, D), bias (C,)) float32, C-contiguous; None when `params` has no
    `text_condition` group.

  Raises:
    ValueError: the group is there but is not a Dense `projection` (kernel (D, C), bias (C,)).
  """
  group = params.get("text_condition")
  if group is None:
    return None
  dense = group.get("projection", {}) if hasattr(group, "get") else {}
  kernel, bias = dense.get("kernel"), dense.get("bias")
  if kernel is None or bias is None:
    raise ValueError("the workdir's text_condition parameters hold no Dense 'projection' "
                     f"(kernel and bias); found {sorted(group)}")
  kernel_dc, bias_c = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
  if kernel_dc.ndim != 2 or bias_c.shape != kernel_dc.shape[1:]:
    raise ValueError(f"the text_condition projection has kernel {kernel_dc.shape} and bias "
                     f"{bias_c.shape}; expected (D, C) and (C,)")
  return np.ascontiguousarray(kernel_dc.T), np.ascontiguousarray(bias_c)


def write_condition_projection(params, out: pathlib.Path, hidden_size: int) -> int | None:
  """Writes `condition_projection.safetensors` (`weight` (C, D), `bias` (C,)) for
  `torch.nn.Linear(D, C).load_state_dict`, or removes an older export's when `params` has no
  `text_condition` group.

  Returns:
    C, the projection's output width, or None when there is none.

  Raises:
    ValueError: the projection's input width is not the text encoder's `hidden_size` (D).
  """
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  file = pathlib.Path(out) / CONDITION_FILE
  found = condition_projection(params)
  if found is None:
    if file.is_file():
      file.unlink()
      log.info("%s: removed an older export's %s", out, CONDITION_FILE)
    return None
  weight_cd, bias_c = found
  if weight_cd.shape[1] != hidden_size:
    raise ValueError(f"the text_condition projection reads {weight_cd.shape[1]} features, but "
                     f"the text encoder's width is {hidden_size}")
  safetensors.numpy.save_file({"weight": weight_cd, "bias": bias_c}, str(file),
                              metadata={"format": "pt"})
  return weight_cd.shape[0]


def pooling_record(vocab_mask_v: np.ndarray, max_text_length: int, hidden_size: int,
                   condition_width: int | None, phase: str, step: int) -> dict:
  """The contents of lexical_pooling.json.

  Args:
    vocab_mask_v: (V,) bool, the entries a lexical vector may weigh (`LexicalModel.vocab_mask`).
    max_text_length: word pieces per caption, [CLS] and [SEP] included, as the workdir
      encodes captions (config.data.max_text_length).
    hidden_size: D, the width of the token states and the pooled vector.
    condition_width: C of condition_projection.safetensors, or None when there is none.
    phase, step: where the weights come from.
  """
  mask = np.asarray(vocab_mask_v, bool)
  return {
      "vocab_size": int(mask.size),
      "excluded_ids": [int(i) for i in np.flatnonzero(~mask)],
      "max_text_length": int(max_text_length),
      "hidden_size": int(hidden_size),
      "lexical_vector": LEXICAL_RULE,
      "pooled": POOLED_RULE,
      "condition_projection": (None if condition_width is None else {
          "file": CONDITION_FILE, "in_features": int(hidden_size),
          "out_features": int(condition_width),
          "input": "the pooled vector"}),
      "source": {"phase": phase, "step": int(step)},
  }


# The folder's README. `$`-fields are filled in by `readme_text`; its ```python blocks run as
# they are (tests/test_export.py runs them), the first before the second.
_README = string.Template('''\
# Text encoder of a lexmo_jax model

Exported from a `$phase` workdir at step $step: a $model_name encoder ($layers, width
D = $hidden, vocabulary V = $vocab word pieces) with its lexical (masked-LM) head. Every
coordinate of a lexical vector is a word piece of the vocabulary, with a weight.

| file | what |
|---|---|
| `config.json`, `model.safetensors` | the encoder and its lexical head (`$architecture`) |
| tokenizer files | the word pieces the model was trained with |
| `lexical_pooling.json` | `excluded_ids` (the vocabulary mask), `max_text_length`, pooling rules |
$condition_row| `README.md` | this file |

## Load it (transformers 5, PyTorch)

`AutoModel` gives the token states, `AutoModelForMaskedLM` the same encoder plus the lexical
head (the vocabulary logits); `AutoModel` lists the head's weights as unexpected in its load
report, as it has no head. $token_types

```python
import json

import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

folder = "$folder"
tokenizer = AutoTokenizer.from_pretrained(folder)
encoder = AutoModel.from_pretrained(folder).eval()         # token states (B, L, D)
mlm = AutoModelForMaskedLM.from_pretrained(folder).eval()  # + lexical head: logits (B, L, V)
pooling = json.load(open(f"{folder}/lexical_pooling.json"))
vocab_mask = torch.ones(pooling["vocab_size"], dtype=torch.bool)
vocab_mask[pooling["excluded_ids"]] = False  # special tokens, [unusedN] slots

captions = ["a person jumps twice", "someone walks forward in a circle"]
tokens = tokenizer(captions, padding=True, truncation=True,
                   max_length=pooling["max_text_length"], return_tensors="pt")
valid = tokens["attention_mask"].bool()  # (B, L)
with torch.no_grad():
  # Lexical vector (SPLADE-max), (B, V) >= 0: the max over the valid tokens of
  # log(1 + relu(logits)), zero at the excluded ids.
  logits = mlm(**tokens).logits.masked_fill(~valid[..., None], float("-inf"))
  lexical = torch.log1p(torch.relu(logits.max(dim=1).values)) * vocab_mask
  # Pooled vector, (B, D): the mean of the valid token states, [CLS] and [SEP] included.
  states = encoder(**tokens).last_hidden_state
  pooled = (states * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
top = lexical[0].topk(8)
print([(word, round(weight, 3)) for word, weight in zip(
    tokenizer.convert_ids_to_tokens(top.indices.tolist()), top.values.tolist()) if weight > 0])
```

The lexical vectors are those of the workdir (`LexicalModel.encode_texts`); retrieval scores
are dot products of L2-normalised lexical vectors.

## A CLIP `encode_text` stand-in

Text-to-motion generators read one vector per caption from CLIP ViT-B/32:
`clip_model.encode_text(clip.tokenize(texts)).float()`, (B, 512). $condition_intro

```python
${condition_code}def encode_text(raw_text):
  """Captions (a list of B strings) -> (B, $width) float32, on the encoder's device."""
  device = next(encoder.parameters()).device
  tokens = tokenizer(list(raw_text), padding=True, truncation=True,
                     max_length=pooling["max_text_length"], return_tensors="pt").to(device)
  valid = tokens["attention_mask"][..., None].float()
  with torch.no_grad():
    states = encoder(**tokens).last_hidden_state
    pooled = (states * valid).sum(1) / valid.sum(1)
$condition_return
```

Keep `encoder`$condition_and outside the generator's `nn.Module`, frozen as CLIP is there, so
that the generator's optimizer and checkpoints do not take them in, and move them to its device
with `.to(device)`. Then, where each generator calls CLIP (files and lines as of the commits named):

- **MoMask** (EricGuo5513/momask-codes, 94a6636), `models/mask_transformer/transformer.py`:
  in `MaskTransformer.encode_text` (line 194) and `ResidualTransformer.encode_text` (line 747),
  replace `text = clip.tokenize(raw_text, truncate=True).to(device)` and
  `feat_clip_text = self.clip_model.encode_text(text).float()` by
  `feat_clip_text = encode_text(raw_text)`. The vector enters
  `self.cond_emb = nn.Linear(self.clip_dim, self.latent_dim)`; `clip_dim` is the `clip_dim=512`
  that `train_t2m_transformer.py`, `train_res_transformer.py`, `gen_t2m.py` and
  `eval_t2m_trans_res.py` pass: $width_advice
- **T2M-GPT** (Mael-zys/T2M-GPT, b1446f1): the pair
  `text = clip.tokenize(clip_text, truncate=True).cuda()` /
  `feat_clip_text = clip_model.encode_text(text).float()` becomes
  `feat_clip_text = encode_text(clip_text)` in the training loop of `train_t2m_trans.py`
  (lines 128-130) and in `utils/eval_trans.py`, `evaluation_transformer` (lines 192-194) and
  `evaluation_transformer_test` (lines 351-353; `GPT_eval_multi.py` calls it with the CLIP it
  loads at line 43). The vector enters `self.cond_emb = nn.Linear(clip_dim, embed_dim)` in
  `models/t2m_trans.py`, with `--clip-dim` (default 512): $width_advice
- **MDM** (GuyTevet/motion-diffusion-model, d4fd88c), `model/mdm.py`: `MDM.clip_encode_text`
  (line 163) ends in `return self.clip_model.encode_text(texts).float().unsqueeze(0)`, a
  (1, B, 512) tensor; make its body `return encode_text(raw_text).unsqueeze(0)`. The vector
  enters `self.embed_text = nn.Linear(self.clip_dim, self.latent_dim)` (line 126), with the
  constructor's `clip_dim=512`: $width_advice MDM's other text path,
  `text_encoder_type='bert'` (the `trans_dec` architecture only), reads token states through
  `AutoTokenizer` / `AutoModel.from_pretrained(bert_model_path)` (`model/BERT/BERT_encoder.py`):
  set `bert_model_path` (line 119) to this folder; $bert_width
''')


def readme_text(folder: str, model_type: str, layers: int, hidden_size: int, vocab_size: int,
                max_text_length: int, condition_width: int | None, phase: str,
                step: int) -> str:
  """The exported folder's README.md: loading, the lexical and pooled vectors in torch, and
  the CLIP `encode_text` replacement in MoMask, T2M-GPT and MDM."""
  distilbert = model_type == "distilbert"
  if condition_width is None:
    width = hidden_size
    condition_row = ""
    condition_intro = (
        f"This workdir has no trained conditioning projection (no `text_condition` parameters; "
        f"the conditioning phase trains one), so the stand-in gives the pooled vector, "
        f"{hidden_size} wide: the generator's text width becomes {hidden_size}.")
    condition_code = ""
    condition_return = "  return pooled"
    condition_and = ""
    width_advice = (f"make it {hidden_size} (that layer, trained with the generator, then "
                    f"reads the {hidden_size}-d pooled vector).")
  else:
    width = condition_width
    condition_row = (f"| `{CONDITION_FILE}` | the trained conditioning projection: `weight` "
                     f"({condition_width}, {hidden_size}) and `bias` ({condition_width},) of a "
                     f"`torch.nn.Linear({hidden_size}, {condition_width})` over the pooled "
                     "vector |\n")
    condition_intro = (
        f"This workdir trained a projection of the pooled vector to {condition_width} "
        f"(`{CONDITION_FILE}`), so the stand-in has CLIP's shape.")
    condition_code = (
        "from safetensors.torch import load_file\n\n"
        f"condition = torch.nn.Linear({hidden_size}, {condition_width})\n"
        f'condition.load_state_dict(load_file(f"{{folder}}/{CONDITION_FILE}"))\n'
        "condition.eval()\n\n\n")
    condition_return = ("    # L2-normalised, as TextConditioner.projected and the generators trained here\n"
                        "    return torch.nn.functional.normalize(condition(pooled), dim=-1)")
    condition_and = " and `condition`"
    width_advice = (f"it stays {condition_width}." if condition_width == 512 else
                    f"make it {condition_width}.")
  token_types = (
      "DistilBERT takes no `token_type_ids`: the tokenizer here gives `input_ids` and "
      "`attention_mask` only, so `model(**tokens)` works as written." if distilbert else
      "BERT's pooler (`pooler_output`) is not part of this model (AutoModel builds it with "
      "random weights and says so): use `last_hidden_state`.")
  return _README.substitute(
      phase=phase, step=step, model_name="DistilBERT" if distilbert else "BERT",
      layers=f"{layers} layer" + ("s" if layers != 1 else ""), hidden=hidden_size, vocab=vocab_size,
      architecture="DistilBertForMaskedLM" if distilbert else "BertForMaskedLM",
      max_text_length=max_text_length, condition_row=condition_row, token_types=token_types,
      folder=folder, condition_intro=condition_intro, condition_code=condition_code,
      width=width, condition_return=condition_return,
      condition_and=condition_and, width_advice=width_advice,
      bert_width=("`self.clip_dim = 768` (line 122) is already D." if hidden_size == 768 else
                  f"`self.clip_dim = 768` (line 122) becomes {hidden_size}."))


def export(workdir: str, out: str,
           format: str = "pytorch") -> pathlib.Path:  # pylint: disable=redefined-builtin
  """Writes the workdir's text encoder, vocabulary mask, pooling rules, conditioning
  projection (when trained) and a README to `out` (created; files of the same names are
  overwritten).

  Args:
    workdir: a training workdir of any phase.
    out: the folder to write.
    format: "pytorch" (transformers' PyTorch names in model.safetensors), the only one.

  Returns:
    The folder.

  Raises:
    WorkdirError: `workdir` is not a finished training workdir.
    ValueError: an unknown format, or parameters that do not match the workdir's config.
  """
  if format not in FORMATS:
    raise ValueError(f"unknown export format {format!r}; expected one of {FORMATS}")
  from lexmo_jax.inference import LexicalModel  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models import hf_checkpoint  # pylint: disable=g-import-not-at-top
  from lexmo_jax.models.build import model_config  # pylint: disable=g-import-not-at-top

  model = LexicalModel.from_workdir(workdir, require_lexical=False)
  text_config = model_config(model.config).text
  path = hf_checkpoint.save_pretrained(text_config, model.params["text"], model.tokenizer, out)
  width = write_condition_projection(model.params, path, text_config.hidden_size)
  max_text_length = int(model.config.data.max_text_length)
  record = pooling_record(np.asarray(model.vocab_mask), max_text_length,
                          text_config.hidden_size, width, model.phase, model.step)
  # One field a line, the id list on one line: short enough to read, valid JSON.
  (path / POOLING_FILE).write_text(
      "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items())
      + "\n}\n")
  (path / README_FILE).write_text(readme_text(
      str(out), text_config.model_type, text_config.num_layers, text_config.hidden_size,
      text_config.vocab_size, max_text_length, width, model.phase, model.step))
  print(f"exported the text encoder of {workdir} ({model.phase}, step {model.step}) to {path}"
        + ("" if width is None else f", with its {width}-d conditioning projection")
        + f"; {path / README_FILE} says how to load it")
  return path


def main(argv):
  del argv
  setup_logging()
  workdir, out = flags.FLAGS.workdir, flags.FLAGS.out
  if not workdir or not out:
    fail("--workdir and --out are required")
  from lexmo_jax.inference import WorkdirError  # pylint: disable=g-import-not-at-top
  try:
    export(workdir, out, flags.FLAGS.format)
  except (WorkdirError, ValueError, FileNotFoundError) as e:
    fail(str(e))


if __name__ == "__main__":
  # Flags exist only when this runs as a command, so importing it next to other commands
  # (which define --workdir too) is safe.
  flags.DEFINE_string("workdir", None, "A training workdir (any phase).")
  flags.DEFINE_string("out", None, "Folder to write the exported text encoder to.")
  flags.DEFINE_enum("format", "pytorch", list(FORMATS),
                    "Weights layout: 'pytorch' (model.safetensors under transformers' PyTorch "
                    "names, which transformers 5 loads).")
  run(main)
