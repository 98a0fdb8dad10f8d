"""The decoder: embedding plus causal self-attention, cross-attention, feed-forward.

Tutorial: "The decoder layer", "The decoder".
"""

from __future__ import annotations

import keras

from tftransformer._building import build_once
from tftransformer.attention import CausalSelfAttention, CrossAttention
from tftransformer.embedding import PositionalEmbedding, as_int
from tftransformer.feed_forward import FeedForward


@keras.saving.register_keras_serializable(package="tftransformer")
class DecoderLayer(keras.layers.Layer):
    """`CausalSelfAttention` -> `CrossAttention` -> `FeedForward`.

    Tutorial: "The decoder layer". Keeps its cross-attention weights of the
    last call in `last_attn_scores`, shape (batch, heads, target_seq, input_seq).

    Args:
        d_model, num_heads, dff: sizes (each head has `key_dim=d_model`).
        dropout_rate: attention and feed-forward dropout (default 0.1).

    Masking: `x_mask` (batch, target_seq) reaches the causal self-attention and
    `context_mask` (batch, input_seq) the cross-attention; both are filled from
    the inputs' Keras masks when not given.
    """

    def __init__(self, *, d_model, num_heads, dff, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.d_model = as_int(d_model, "d_model")
        self.num_heads = as_int(num_heads, "num_heads")
        self.dff = as_int(dff, "dff")
        self.dropout_rate = float(dropout_rate)
        self.causal_self_attention = CausalSelfAttention(
            num_heads=self.num_heads,
            key_dim=self.d_model,
            dropout=self.dropout_rate,
            name="causal_self_attention",
        )
        self.cross_attention = CrossAttention(
            num_heads=self.num_heads,
            key_dim=self.d_model,
            dropout=self.dropout_rate,
            name="cross_attention",
        )
        # Deviation from tutorial: `dropout_rate` reaches FeedForward (see EncoderLayer).
        self.ffn = FeedForward(self.d_model, self.dff, self.dropout_rate, name="ffn")
        self.last_attn_scores = None
        self.supports_masking = True

    def build(self, x_shape, context_shape):
        build_once(self.causal_self_attention, x_shape)
        build_once(self.cross_attention, x_shape, context_shape)
        build_once(self.ffn, x_shape)
        self.built = True

    def call(self, x, context, x_mask=None, context_mask=None):
        x = self.causal_self_attention(x=x, mask=x_mask)
        x = self.cross_attention(x=x, context=context, context_mask=context_mask)
        # Cache the last attention scores for plotting later.
        self.last_attn_scores = self.cross_attention.last_attn_scores
        return self.ffn(x)  # (batch, target_seq, d_model)

    def compute_output_shape(self, x_shape, context_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            dropout_rate=self.dropout_rate,
        )
        return config


@keras.saving.register_keras_serializable(package="tftransformer")
class Decoder(keras.layers.Layer):
    """Target ids + encoder output -> `num_layers` DecoderLayers.

    Tutorial: "The decoder". `last_attn_scores` holds the last decoder
    layer's cross-attention weights, (batch, heads, target_seq, input_seq).

    Args:
        num_layers, d_model, num_heads, dff: sizes.
        vocab_size: target vocabulary size (numpy/tensor ints accepted).
        dropout_rate: default 0.1.

    Masking: the target padding mask is computed from the ids; the context
    padding mask is `context_mask` (batch, input_seq), filled from the
    context's Keras mask when not given. Both reach every layer explicitly.
    """

    def __init__(
        self, *, num_layers, d_model, num_heads, dff, vocab_size, dropout_rate=0.1, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_layers = as_int(num_layers, "num_layers")
        self.d_model = as_int(d_model, "d_model")
        self.num_heads = as_int(num_heads, "num_heads")
        self.dff = as_int(dff, "dff")
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.dropout_rate = float(dropout_rate)
        self.pos_embedding = PositionalEmbedding(
            vocab_size=self.vocab_size, d_model=self.d_model, name="pos_embedding"
        )
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.dec_layers = [
            DecoderLayer(
                d_model=self.d_model,
                num_heads=self.num_heads,
                dff=self.dff,
                dropout_rate=self.dropout_rate,
                name=f"dec_layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.last_attn_scores = None

    def build(self, x_shape, context_shape):
        build_once(self.pos_embedding, x_shape)
        hidden_shape = (*x_shape, self.d_model)
        for layer in self.dec_layers:
            build_once(layer, hidden_shape, context_shape)
        self.built = True

    def compute_mask(self, x, context=None, context_mask=None, mask=None):
        return self.pos_embedding.compute_mask(x)

    def call(self, x, context, context_mask=None):
        # `x` is token-IDs shape (batch, target_seq_len)
        # Deviation from tutorial: masks are passed explicitly (see attention.py).
        x_mask = self.pos_embedding.compute_mask(x)  # (batch, target_seq_len)
        x = self.pos_embedding(x)  # (batch, target_seq_len, d_model)
        x = self.dropout(x)
        for layer in self.dec_layers:
            x = layer(x, context, x_mask=x_mask, context_mask=context_mask)
        self.last_attn_scores = self.dec_layers[-1].last_attn_scores
        return x  # (batch, target_seq_len, d_model)

    def compute_output_shape(self, x_shape, context_shape):
        return (*x_shape, self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            vocab_size=self.vocab_size,
            dropout_rate=self.dropout_rate,
        )
        return config
