"""The three attention blocks of the Transformer, each with Add & Norm.

Tutorial: "The base attention layer", "The cross attention layer",
"The global self-attention layer", "The causal self-attention layer".

Deviation from tutorial (masking): on Keras 3, `MultiHeadAttention` strips the
Keras mask from its inputs and the tutorial's layers do not declare
`supports_masking`, so only the first self-attention of each stack ever sees
the padding mask; later self-attentions and *every* cross-attention attend to
padding. Here every block takes its padding masks as call arguments (Keras
fills them from the inputs' Keras masks when they are not passed), hands them
to `MultiHeadAttention` explicitly as `value_mask`/`key_mask`, and declares
`supports_masking` so the query's mask also flows on to the next layer.

Only keys are masked, never queries: a padded query row attends to the real
tokens like any other row (the tutorial leaves such rows "not well defined";
Keras' query masking would spread them uniformly over padding too). So every
row of `last_attn_scores` puts exactly zero weight on padded keys.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tftransformer._building import build_once

# Arguments that belong to the wrapping `keras.layers.Layer`, not to the
# `MultiHeadAttention` it owns.
_LAYER_KWARGS = ("name", "dtype", "trainable", "autocast")


@keras.saving.register_keras_serializable(package="tftransformer")
class BaseAttention(keras.layers.Layer):
    """Holds a `MultiHeadAttention`, a `LayerNormalization` and an `Add`.

    Tutorial: "The base attention layer".

    Args:
        **kwargs: passed to `keras.layers.MultiHeadAttention` (the tutorial's
            `num_heads`, `key_dim`, `dropout`, ...), except the layer's own
            `name`, `dtype`, `trainable` and `autocast`.
            Deviation from tutorial: the tutorial drops those four (it calls
            `super().__init__()` bare); we forward them so the layer can be
            named and serialized.
    """

    def __init__(self, **kwargs):
        # Deviation from tutorial: name/dtype/trainable/autocast reach the layer itself
        # (the tutorial's bare `super().__init__()` drops them), so it can be serialized.
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_KWARGS if k in kwargs}
        super().__init__(**layer_kwargs)
        self.mha_kwargs = dict(kwargs)
        self.mha = keras.layers.MultiHeadAttention(**kwargs, name="mha")
        self.layernorm = keras.layers.LayerNormalization(name="layernorm")
        self.add = keras.layers.Add(name="add")
        self.supports_masking = True

    @staticmethod
    def _query(x):
        # Deviation from tutorial: queries are never masked (only keys are; see the module
        # docstring). `MultiHeadAttention` masks query rows by the query's Keras mask,
        # whatever `query_mask` says; a fresh tensor carries none.
        return tf.identity(x)

    def _build_block(self, query_shape, value_shape):
        build_once(self.mha, query_shape, value_shape)
        build_once(self.layernorm, query_shape)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(self.mha_kwargs)
        return config


@keras.saving.register_keras_serializable(package="tftransformer")
class CrossAttention(BaseAttention):
    """Decoder queries attend to the encoder output (`context`).

    Tutorial: "The cross attention layer". Keeps the attention weights of the
    last call in `last_attn_scores`, shape (batch, heads, target_seq, input_seq).

    Masking: `context_mask` (batch, input_seq), True for real context tokens,
    keeps every query off the context's padding. Filled from `context`'s Keras
    mask when not given.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.last_attn_scores = None

    def build(self, x_shape, context_shape):
        self._build_block(x_shape, context_shape)

    def compute_output_shape(self, x_shape, context_shape):
        return x_shape

    def call(self, x, context, x_mask=None, context_mask=None):
        # Deviation from tutorial: the padding masks are passed explicitly (Keras 3's
        # MultiHeadAttention drops the Keras masks; see the module docstring).
        attn_output, attn_scores = self.mha(
            query=self._query(x),
            key=context,
            value=context,
            value_mask=context_mask,
            key_mask=context_mask,
            return_attention_scores=True,
        )
        # Cache the attention scores for plotting later.
        self.last_attn_scores = attn_scores  # (batch, heads, target_seq, input_seq)
        x = self.add([x, attn_output])
        return self.layernorm(x)  # (batch, target_seq, d_model)


@keras.saving.register_keras_serializable(package="tftransformer")
class GlobalSelfAttention(BaseAttention):
    """Every position attends to every real position of the same sequence.

    Tutorial: "The global self-attention layer".

    Masking: `mask` (batch, seq), True for real tokens; filled from `x`'s
    Keras mask when not given. Pad positions are never attended to.
    """

    def build(self, input_shape):
        self._build_block(input_shape, input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, mask=None):
        # Deviation from tutorial: the padding mask is passed explicitly (see the module).
        attn_output = self.mha(query=self._query(x), value=x, key=x, value_mask=mask, key_mask=mask)
        x = self.add([x, attn_output])
        return self.layernorm(x)  # (batch, seq, d_model)


@keras.saving.register_keras_serializable(package="tftransformer")
class CausalSelfAttention(BaseAttention):
    """Each position attends only to itself and earlier real positions.

    Tutorial: "The causal self-attention layer".

    Masking: the causal mask (`use_causal_mask=True`) combined with `mask`
    (batch, seq), True for real tokens, filled from `x`'s Keras mask.
    """

    def build(self, input_shape):
        self._build_block(input_shape, input_shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, mask=None):
        # Deviation from tutorial: the padding mask is passed explicitly, beside the
        # causal mask (see the module docstring).
        attn_output = self.mha(
            query=self._query(x),
            value=x,
            key=x,
            value_mask=mask,
            key_mask=mask,
            use_causal_mask=True,
        )
        x = self.add([x, attn_output])
        return self.layernorm(x)  # (batch, seq, d_model)
