"""The attention core (scores, softmax, weighted sum) as batched matmuls.

Keras' `MultiHeadAttention` computes the scores and the weighted sum with
`einsum` on its (batch, positions, heads, head_dim) layout whenever attention
dropout is on or the scores are returned (the tutorial does both). On CPU,
TensorFlow lowers those einsums to transposes around a batched matmul that
runs far below matmul speed: measured at real sentence lengths (batch 64,
8 heads, 90 x 90 positions, head_dim 128), about a seventh of a plain matmul's
GFLOP/s on a 2-core AVX2 machine (see `benchmarks/attention.py`).

`MatmulMultiHeadAttention` moves heads in front once — (batch, heads,
positions, head_dim) — and computes `softmax(q k^T) v` as two
`tf.matmul`s, which map straight onto oneDNN/cuBLAS batched GEMMs. The math
is Keras' exactly: queries scaled by 1/sqrt(key_dim) first, the same masked
softmax (Keras' own `_masked_softmax`), the same attention dropout, the same
causal mask; its weights, config and `.keras` files are `MultiHeadAttention`'s.

`attention_kernel()` says which class the tutorial's attention blocks build:
"einsum" (default: Keras' `MultiHeadAttention`, the tutorial's own path) or
"matmul" (opt-in), set by `use_attention_kernel` or the
`TFTRANSFORMER_ATTENTION` environment variable. It is opt-in because, measured
in whole training steps, it did not pay: the scores product alone runs about
1.5x faster as a matmul, but attention dropout's random draws, the softmax and
the transposes dominate the core, and training steps on long sentences were
no faster (README, "Attention at matmul speed").
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

KERNELS = ("matmul", "einsum")
ENVIRONMENT_VARIABLE = "TFTRANSFORMER_ATTENTION"
_chosen = None


class MatmulMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose attention core runs as two batched matmuls.

    Only the default layout (attention over axis 1 of 4-D projected
    tensors) is rewritten; anything else falls back to Keras' own path.
    """

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):  # fmt: skip
        if len(query.shape) != 4 or tuple(self._attention_axes) != (1,):
            return super()._compute_attention(query, key, value, attention_mask, training,
                                              return_attention_scores,
                                              use_causal_mask)  # fmt: skip
        if use_causal_mask:
            causal = self._compute_causal_mask(query, value)  # (1, T, S)
            attention_mask = causal if attention_mask is None else tf.logical_and(
                tf.cast(attention_mask, tf.bool), causal
            )  # fmt: skip
        # (batch, positions, heads, dim) -> (batch, heads, positions, dim), once each.
        query = tf.transpose(query * tf.cast(self._inverse_sqrt_key_dim, query.dtype),
                             [0, 2, 1, 3])  # fmt: skip
        key = tf.transpose(key, [0, 2, 1, 3])
        value = tf.transpose(value, [0, 2, 1, 3])
        scores = tf.matmul(query, key, transpose_b=True)  # (batch, heads, T, S)
        scores = self._masked_softmax(scores, attention_mask)
        weights = self._dropout_layer(scores, training=training) if self._dropout > 0 else scores
        output = tf.matmul(weights, value)  # (batch, heads, T, dim)
        return tf.transpose(output, [0, 2, 1, 3]), scores  # (batch, T, heads, dim)


def use_attention_kernel(kind):
    """Choose the attention core later-built tutorial attention blocks use."""
    global _chosen
    if kind not in KERNELS:
        raise ValueError(f"attention kernel must be one of {', '.join(KERNELS)}, got {kind!r}")
    _chosen = kind


def attention_kernel() -> str:
    """"einsum" (default) or "matmul", from `use_attention_kernel` or the environment."""
    if _chosen is not None:
        return _chosen
    kind = os.environ.get(ENVIRONMENT_VARIABLE, "einsum")
    if kind not in KERNELS:
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be one of {', '.join(KERNELS)}, "
                         f"got {kind!r}")  # fmt: skip
    return kind


def multi_head_attention_class():
    """The `MultiHeadAttention` class for `attention_kernel()`."""
    if attention_kernel() == "einsum":
        return keras.layers.MultiHeadAttention
    return MatmulMultiHeadAttention
