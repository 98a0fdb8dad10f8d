"""Positional encoding and the token + position embedding layer.

Tutorial: "The embedding and positional encoding layer".
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tftransformer._building import build_once


def positional_encoding(length, depth):
    """Sinusoidal position encodings, shape `(length, depth)`, float32.

    Tutorial: "The embedding and positional encoding layer".

    As in the tutorial, the sin and cos halves are *concatenated* along the
    last axis (first `depth/2` columns sin, last `depth/2` cos) rather than
    interleaved as in the paper; the two are the same up to a fixed
    permutation of channels.

    Args:
        length: number of positions.
        depth: encoding width; must be even.
    """
    length, depth = int(length), int(depth)
    if depth % 2:
        # Deviation from tutorial: an odd depth silently produced depth+1
        # columns there; we refuse it with a clear message instead.
        raise ValueError(f"positional_encoding depth must be even, got depth={depth}")
    half = depth / 2
    positions = np.arange(length)[:, np.newaxis]  # (length, 1)
    depths = np.arange(half)[np.newaxis, :] / half  # (1, depth/2)
    angle_rates = 1 / (10000**depths)  # (1, depth/2)
    angle_rads = positions * angle_rates  # (length, depth/2)
    pos_encoding = np.concatenate([np.sin(angle_rads), np.cos(angle_rads)], axis=-1)
    return ops.convert_to_tensor(pos_encoding, dtype="float32")


def as_int(value, name):
    """`int(value)` for Python/numpy ints and scalar tensors, else a clear error.

    Deviation from tutorial: Keras 3 rejects `numpy.int32` sizes (such as
    `tokenizer.get_vocab_size().numpy()`), which the tutorial passes straight in.
    """
    try:
        as_integer = int(np.asarray(value).item())
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an integer, got {value!r}") from error
    if as_integer != np.asarray(value).item() or as_integer < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return as_integer


@keras.saving.register_keras_serializable(package="tftransformer")
class PositionalEmbedding(keras.layers.Layer):
    """Token embedding scaled by `sqrt(d_model)` plus the positional encoding.

    Tutorial: "The embedding and positional encoding layer".

    Args:
        vocab_size: number of token ids (Python int, numpy int or scalar
            tensor; see the deviation in `as_int`).
        d_model: embedding width (even).
        max_length: positions precomputed (the tutorial's 2048).

    Masking: id 0 is padding; `compute_mask` returns `ids != 0` (the
    embedding's `mask_zero=True` mask), which the encoder and decoder pass on
    to every attention layer.
    """

    def __init__(self, vocab_size, d_model, max_length=2048, **kwargs):
        super().__init__(**kwargs)
        # Deviation from tutorial: numpy/tensor ints accepted (Keras 3 rejects them).
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.d_model = as_int(d_model, "d_model")
        # Deviation from tutorial: `max_length` is an argument (the tutorial fixes 2048).
        self.max_length = as_int(max_length, "max_length")
        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.d_model, mask_zero=True, name="embedding"
        )
        self.pos_encoding = positional_encoding(length=self.max_length, depth=self.d_model)

    def build(self, input_shape):
        build_once(self.embedding, input_shape)
        self.built = True

    def compute_mask(self, *args, **kwargs):
        return self.embedding.compute_mask(*args, **kwargs)

    def call(self, x):
        length = ops.shape(x)[1]
        x = self.embedding(x)  # (batch, seq, d_model)
        # The tutorial's scaling: embeddings and encodings get similar magnitude.
        x = x * ops.sqrt(ops.cast(self.d_model, x.dtype))
        # Deviation from tutorial: cast to the layer's compute dtype (the tutorial's is
        # always float32), so that the layer also runs under mixed precision.
        pos = ops.cast(self.pos_encoding[None, :length, :], x.dtype)
        return x + pos  # (batch, seq, d_model)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, d_model=self.d_model, max_length=self.max_length)
        return config
