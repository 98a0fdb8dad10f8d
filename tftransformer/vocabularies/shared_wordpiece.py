"""WordPiece with one vocabulary for both languages (`train --shared-vocabulary`).

Beyond the tutorial, which learns a pt and an en vocabulary separately
(`tftransformer.tokenizers.build_tokenizers`). Here the guide's learner
(`build_vocab`, `bert_vocab_from_dataset` with the guide's arguments) sees the
sentences of both languages, and `.pt` and `.en` are one `CustomTokenizer`.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tftransformer.tokenizers import (
    MIN_TOKEN_COUNT,
    RESERVED_TOKENS,
    VOCAB_SIZE,
    CustomTokenizer,
    build_vocab,
    write_vocab_file,
)

# The shared vocabulary's file name in the vocab directory (and the SavedModel's assets).
SHARED_VOCAB_FILE = "shared_vocab.txt"


def _source(pt, en):
    return pt


def _target(pt, en):
    return en


def build_shared_wordpiece_tokenizers(
    pairs: tf.data.Dataset,
    vocab_size: int = VOCAB_SIZE,
    vocab_dir=".",
    min_token_count: int = MIN_TOKEN_COUNT,
    bert_tokenizer_params=None,
):
    """One WordPiece vocabulary learned from the pt and en sides of `(pt, en)` pairs.

    A `tf.Module` whose `.pt` and `.en` are the same `CustomTokenizer`, to save
    with `save_tokenizers`; `vocab_dir` receives `shared_vocab.txt`.
    `vocab_size` is the target for the one vocabulary (both languages together).
    """
    sentences = pairs.map(_source).concatenate(pairs.map(_target))
    vocab = build_vocab(sentences, vocab_size, min_token_count, bert_tokenizer_params)
    path = Path(vocab_dir) / SHARED_VOCAB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_vocab_file(path, vocab)
    tokenizers = tf.Module()
    tokenizers.pt = tokenizers.en = CustomTokenizer(
        RESERVED_TOKENS, str(path), bert_tokenizer_params
    )
    return tokenizers
