"""The position-wise feed-forward block with Add & Norm.

Tutorial: "The feed forward network".
"""

from __future__ import annotations

import keras

from tftransformer._building import build_once


@keras.saving.register_keras_serializable(package="tftransformer")
class FeedForward(keras.layers.Layer):
    """`Dense(dff, relu) -> Dense(d_model) -> Dropout`, residual, LayerNorm.

    Tutorial: "The feed forward network".

    Args:
        d_model: input and output width.
        dff: inner width.
        dropout_rate: dropout after the second Dense (default 0.1).

    Masking: position-wise, so the input's Keras mask passes through.
    """

    def __init__(self, d_model, dff, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.d_model = int(d_model)
        self.dff = int(dff)
        self.dropout_rate = float(dropout_rate)
        self.seq = keras.Sequential(
            [
                # Named so that code reading the weights (the cached decoder) can find
                # them; `.keras` files address layers by class, so names change nothing.
                keras.layers.Dense(self.dff, activation="relu", name="ffn_in"),
                keras.layers.Dense(self.d_model, name="ffn_out"),
                keras.layers.Dropout(self.dropout_rate),
            ],
            name="seq",
        )
        # Deviation from tutorial: Keras 3 needs `supports_masking` declared. Every layer
        # in `seq` works position by position, so the padding mask may pass through it;
        # without this Keras 3 warns and drops the mask.
        self.seq.supports_masking = True
        self.add = keras.layers.Add(name="add")
        self.layer_norm = keras.layers.LayerNormalization(name="layer_norm")
        self.supports_masking = True

    def build(self, input_shape):
        build_once(self.seq, input_shape)
        build_once(self.layer_norm, input_shape)
        self.built = True

    def call(self, x):
        x = self.add([x, self.seq(x)])
        return self.layer_norm(x)  # (batch, seq, d_model)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, dff=self.dff, dropout_rate=self.dropout_rate)
        return config
