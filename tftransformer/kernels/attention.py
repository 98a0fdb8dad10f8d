"""The tutorial's attention layer computed head-major, as batched matmuls, transpose-free.

Keras' `MultiHeadAttention` projects to (batch, positions, heads, head_dim)
and, whenever attention dropout is on or the scores are returned (the
tutorial does both), computes the scores and the weighted sum with `einsum`
on that layout. On CPU TensorFlow runs those einsums as transposes of the
large projected tensors around a batched matmul, forward and backward, far
below matmul speed (about a seventh of a plain matmul's GFLOP/s on a 2-core
AVX2 machine at real sentence lengths; see `benchmarks/attention.py`).

`MatmulMultiHeadAttention` computes the same layer with no transpose of a
projected tensor: each projection is one batched matmul, kernel^T x^T, that
writes (batch, heads, head_dim, positions) directly; the scores are
`matmul(q^T, k)` and the weighted sum `matmul(v, weights^T)` on that layout
(operand transposes are free in oneDNN/cuBLAS GEMMs); the output projection
reads it back with one more matmul. Only the matmuls touch the large
tensors, plus Keras' own masked softmax and attention dropout on the scores,
which keep Keras' (batch, heads, T, S) layout: one dropout seed draws the
same mask, so a training step is Keras' step to float32 rounding. The
1/sqrt(key_dim) query scale is folded into the query kernel and bias. Its
weights, config and `.keras` files are `MultiHeadAttention`'s. Where Keras
itself fuses the core (no dropout and no scores asked for:
`ops.dot_product_attention`, flash attention on GPU) or for layouts other
than 3-D inputs attending over positions, Keras' own code runs.

`attention_kernel()` says which class the tutorial's attention blocks build:
"einsum" (default: Keras' `MultiHeadAttention`, the tutorial's own layer) or
"matmul" (opt-in), set by `use_attention_kernel` or the
`TFTRANSFORMER_ATTENTION` environment variable. It stays opt-in because,
measured, it pays little where it matters: one attention layer's training step
runs 1.2-1.5x faster, but whole training steps of the tutorial's model save
about 7% of their CPU time on long unbucketed batches and 2% on bucketed ones
(`benchmarks/attention_training.py`; README, "Attention at matmul speed").
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
from keras.src.backend import get_keras_mask, set_keras_mask

KERNELS = ("matmul", "einsum")
ENVIRONMENT_VARIABLE = "TFTRANSFORMER_ATTENTION"
_chosen = None


class MatmulMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention`, computed head-major as batched matmuls, transpose-free.

    The tutorial's case — 3-D query/key/value (batch, positions, features),
    attention over the positions, with attention dropout or the scores
    returned, no gate, no sliding window, no custom output shape — runs
    head-major in `call`; anything else goes to Keras' own `call` (whose
    unfused core is then `_compute_attention` below, two batched matmuls).
    """

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):  # fmt: skip
        key = value if key is None else key
        if not self._takes_head_major_path(query, value, key, return_attention_scores):
            return super().call(query, value, key=key, query_mask=query_mask,
                                value_mask=value_mask, key_mask=key_mask,
                                attention_mask=attention_mask,
                                return_attention_scores=return_attention_scores,
                                training=training, use_causal_mask=use_causal_mask)  # fmt: skip
        # As Keras: the query's Keras mask masks query rows; masks are handled here, once.
        query_mask = get_keras_mask(query)
        for tensor in (query, value, key):
            set_keras_mask(tensor, None)
        attention_mask = self._compute_attention_mask(
            query, value, query_mask=query_mask, value_mask=value_mask, key_mask=key_mask,
            attention_mask=attention_mask, use_causal_mask=use_causal_mask,
        )  # fmt: skip  # (batch, T, S) or None
        dtype = self.compute_dtype
        query, value, key = (tf.cast(t, dtype) for t in (query, value, key))
        # Keras scales the projected query by 1/sqrt(key_dim); folded into its weights here.
        scale = tf.cast(self._inverse_sqrt_key_dim, dtype)
        query_t = self._project_transposed(self._query_dense, query, scale)  # (B, N, H, T)
        key_t = self._project_transposed(self._key_dense, key)  # (B, N, H, S)
        value_t = self._project_transposed(self._value_dense, value)  # (B, N, Hv, S)
        mixed_t, scores = self._head_major_attention(query_t, key_t, value_t, attention_mask,
                                                     training)  # fmt: skip
        batch, length = tf.shape(mixed_t)[0], tf.shape(mixed_t)[3]
        mixed_t = tf.reshape(mixed_t, [batch, self._num_heads * self._value_dim, length])
        dense = self._output_dense
        kernel = tf.cast(dense.kernel, dtype)  # (N, Hv, features)
        kernel = tf.reshape(kernel, [1, self._num_heads * self._value_dim, kernel.shape[-1]])
        output = tf.matmul(mixed_t, kernel, transpose_a=True)  # (B, T, features)
        if dense.bias is not None:
            output = output + tf.cast(dense.bias, dtype)
        if query_mask is not None:
            set_keras_mask(output, query_mask)
        if return_attention_scores:
            return output, scores
        return output

    def _keras_fuses(self, return_attention_scores):
        """Whether Keras runs its fused `ops.dot_product_attention` here (then so do we).

        Keras takes that path when there is no attention dropout and no scores
        are asked for (on GPU it may be a flash-attention kernel); there a
        fully masked query row averages all values, where the explicit softmax
        path gives zeros, so it is left to Keras to stay Keras' math exactly.
        """
        return self._dropout == 0.0 and not return_attention_scores

    def _takes_head_major_path(self, query, value, key, return_attention_scores):
        return (
            not self._keras_fuses(return_attention_scores)
            and all(len(t.shape) == 3 for t in (query, value, key))
            and tuple(self._attention_axes or ()) == (1,)
            and not getattr(self, "_use_gate", False)
            and getattr(self, "_sliding_window", None) is None
            and not self._output_shape
        )  # fmt: skip

    def _head_major_attention(self, query_t, key_t, value_t, attention_mask=None, training=None):
        """The attention core on head-major, position-last tensors.

        `query_t` (B, N, H, T), already scaled; `key_t` (B, N, H, S);
        `value_t` (B, N, Hv, S); `attention_mask` (B, T, S) or None. Returns
        the mixed values (B, N, Hv, T) and the attention scores (B, N, T, S),
        Keras' layout, so Keras' masked softmax and dropout (same seed, same
        mask) apply unchanged.
        """
        scores = tf.matmul(query_t, key_t, transpose_a=True)  # (B, N, T, S)
        scores = self._masked_softmax(scores, attention_mask)
        weights = self._dropout_layer(scores, training=training) if self._dropout > 0 else scores
        return tf.matmul(value_t, weights, transpose_b=True), scores

    def _project_transposed(self, dense, x, scale=None):
        """`dense(x)` (batch, positions, heads, dim) as (batch, heads, dim, positions).

        One batched matmul, kernel^T x^T, writes the head-major layout
        directly: no transpose of the (large) projected tensor, forward or
        backward. The query's scale multiplies the (small) kernel and bias.
        """
        kernel = tf.cast(dense.kernel, x.dtype)  # (features, heads, dim)
        heads, dim = kernel.shape[1], kernel.shape[2]
        kernel = tf.reshape(kernel, [1, kernel.shape[0], heads * dim])
        bias = None if dense.bias is None else tf.reshape(tf.cast(dense.bias, x.dtype),
                                                          [heads * dim, 1])  # fmt: skip
        if scale is not None:
            kernel = kernel * scale
            bias = None if bias is None else bias * scale
        projected = tf.matmul(kernel, x, transpose_a=True, transpose_b=True)  # (B, heads*dim, T)
        if bias is not None:
            projected = projected + bias
        return tf.reshape(projected, [tf.shape(x)[0], heads, dim, tf.shape(x)[1]])

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):  # fmt: skip
        if (len(query.shape) != 4 or tuple(self._attention_axes) != (1,)
                or self._keras_fuses(return_attention_scores)):  # fmt: skip
            return super()._compute_attention(query, key, value, attention_mask, training,
                                              return_attention_scores,
                                              use_causal_mask)  # fmt: skip
        if use_causal_mask:
            causal = self._compute_causal_mask(query, value)  # (1, T, S)
            attention_mask = causal if attention_mask is None else tf.logical_and(
                tf.cast(attention_mask, tf.bool), causal
            )  # fmt: skip
        # (batch, positions, heads, dim) -> the head-major core's (batch, heads, dim, positions).
        query = query * tf.cast(self._inverse_sqrt_key_dim, query.dtype)
        query_t, key_t, value_t = (tf.transpose(t, [0, 2, 3, 1]) for t in (query, key, value))
        mixed_t, scores = self._head_major_attention(query_t, key_t, value_t, attention_mask,
                                                     training)  # fmt: skip
        return tf.transpose(mixed_t, [0, 3, 1, 2]), scores  # (batch, T, heads, dim)


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
