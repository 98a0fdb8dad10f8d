"""The encoder: embedding plus a stack of self-attention + feed-forward layers.

Tutorial: "The encoder layer", "The encoder".
"""

from __future__ import annotations

import keras

from tftransformer._building import build_once
from tftransformer.attention import GlobalSelfAttention
from tftransformer.embedding import PositionalEmbedding, as_int
from tftransformer.feed_forward import FeedForward


@keras.saving.register_keras_serializable(package="tftransformer")
class EncoderLayer(keras.layers.Layer):
    """`GlobalSelfAttention` followed by `FeedForward`.

    Tutorial: "The encoder layer".

    Args:
        d_model, num_heads, dff: sizes; each head has `key_dim=d_model`, as in
            the tutorial (not `d_model / num_heads` as in the paper).
        dropout_rate: attention and feed-forward dropout (default 0.1).

    Masking: `mask` (batch, seq) reaches the self-attention and is passed on.
    """

    def __init__(self, *, d_model, num_heads, dff, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.d_model = as_int(d_model, "d_model")
        self.num_heads = as_int(num_heads, "num_heads")
        self.dff = as_int(dff, "dff")
        self.dropout_rate = float(dropout_rate)
        self.self_attention = GlobalSelfAttention(
            num_heads=self.num_heads,
            key_dim=self.d_model,
            dropout=self.dropout_rate,
            name="self_attention",
        )
        # Deviation from tutorial: the tutorial builds `FeedForward(d_model, dff)`,
        # so its dropout stays at 0.1 whatever `dropout_rate` says.
        self.ffn = FeedForward(self.d_model, self.dff, self.dropout_rate, name="ffn")
        self.supports_masking = True

    def build(self, input_shape):
        build_once(self.self_attention, input_shape)
        build_once(self.ffn, input_shape)
        self.built = True

    def call(self, x, mask=None):
        x = self.self_attention(x, mask=mask)
        return self.ffn(x)  # (batch, seq, d_model)

    def compute_output_shape(self, input_shape):
        return input_shape

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
class Encoder(keras.layers.Layer):
    """Token ids -> `PositionalEmbedding` -> dropout -> `num_layers` EncoderLayers.

    Tutorial: "The encoder".

    Args:
        num_layers, d_model, num_heads, dff: sizes.
        vocab_size: input vocabulary size (numpy/tensor ints accepted).
        dropout_rate: default 0.1.

    Masking: the padding mask `ids != 0` is computed once from the ids and
    passed explicitly to every layer (see `attention.py`); the output carries
    it as its Keras mask, so a decoder's cross-attention picks it up.
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
        self.enc_layers = [
            EncoderLayer(
                d_model=self.d_model,
                num_heads=self.num_heads,
                dff=self.dff,
                dropout_rate=self.dropout_rate,
                name=f"enc_layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape):
        build_once(self.pos_embedding, input_shape)
        hidden_shape = (*input_shape, self.d_model)
        for layer in self.enc_layers:
            build_once(layer, hidden_shape)
        self.built = True

    def compute_mask(self, x, mask=None):
        return self.pos_embedding.compute_mask(x)

    def call(self, x):
        # `x` is token-IDs shape: (batch, seq_len)
        # Deviation from tutorial: the mask is passed explicitly (see attention.py).
        mask = self.pos_embedding.compute_mask(x)  # (batch, seq_len)
        x = self.pos_embedding(x)  # (batch, seq_len, d_model)
        x = self.dropout(x)
        for layer in self.enc_layers:
            x = layer(x, mask=mask)
        return x  # (batch, seq_len, d_model)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.d_model)

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
