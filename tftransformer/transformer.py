"""The encoder-decoder model.

Tutorial: "The Transformer".
"""

from __future__ import annotations

import keras

from tftransformer._building import BuiltBeforeTracing, build_once
from tftransformer.config import TransformerConfig
from tftransformer.decoder import Decoder
from tftransformer.embedding import as_int
from tftransformer.encoder import Encoder


@keras.saving.register_keras_serializable(package="tftransformer")
# Deviation from tutorial: BuiltBeforeTracing builds the model, optimizer and metrics
# before `fit` traces its step, so that step is traced once, not twice (see the mixin).
class Transformer(BuiltBeforeTracing, keras.Model):
    """`call((context, x))` -> next-token logits (batch, target_seq, target_vocab).

    Tutorial: "The Transformer".

    Args:
        num_layers, d_model, num_heads, dff: sizes (see `TransformerConfig`).
        input_vocab_size: source (Portuguese) vocabulary size.
        target_vocab_size: target (English) vocabulary size.
        dropout_rate: default 0.1.

    Masking: padding (id 0) in `context` is masked in every encoder
    self-attention and every decoder cross-attention; padding in `x` in every
    causal self-attention. The logits carry no Keras mask (as in the
    tutorial), so `masked_loss` alone decides what counts.
    """

    def __init__(
        self,
        *,
        num_layers,
        d_model,
        num_heads,
        dff,
        input_vocab_size,
        target_vocab_size,
        dropout_rate=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = as_int(num_layers, "num_layers")
        self.d_model = as_int(d_model, "d_model")
        self.num_heads = as_int(num_heads, "num_heads")
        self.dff = as_int(dff, "dff")
        self.input_vocab_size = as_int(input_vocab_size, "input_vocab_size")
        self.target_vocab_size = as_int(target_vocab_size, "target_vocab_size")
        self.dropout_rate = float(dropout_rate)
        sizes = dict(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            dropout_rate=self.dropout_rate,
        )
        self.encoder = Encoder(**sizes, vocab_size=self.input_vocab_size, name="encoder")
        self.decoder = Decoder(**sizes, vocab_size=self.target_vocab_size, name="decoder")
        self.final_layer = keras.layers.Dense(self.target_vocab_size, name="final_layer")

    @classmethod
    def from_hparams(cls, hparams: TransformerConfig, *, input_vocab_size, target_vocab_size):
        """Build from a `TransformerConfig` and the two vocabulary sizes."""
        return cls(
            **hparams.to_dict(),
            input_vocab_size=input_vocab_size,
            target_vocab_size=target_vocab_size,
        )

    def build(self, input_shape):
        context_shape, x_shape = input_shape
        context_shape, x_shape = tuple(context_shape), tuple(x_shape)
        build_once(self.encoder, context_shape)
        encoded_shape = (*context_shape, self.d_model)
        build_once(self.decoder, x_shape, encoded_shape)
        build_once(self.final_layer, (*x_shape, self.d_model))
        self.built = True

    def call(self, inputs, training=None):
        # To use a Keras model with `.fit` you have to pass all your inputs in
        # the first argument.
        # Deviation from tutorial: `training` is declared (and so reaches every Dropout
        # through Keras' call context). Keras 3's `fit` passes `training=True` only to a
        # model whose `call` declares it; without it, as in the tutorial's code, no dropout
        # ran during training (Keras 2 always passed it).
        context, x = inputs
        # Deviation from tutorial: the context padding mask is handed to the
        # decoder explicitly instead of riding on `context._keras_mask`.
        context_mask = self.encoder.compute_mask(context)  # (batch, context_len)
        context = self.encoder(context)  # (batch, context_len, d_model)
        x = self.decoder(x, context, context_mask=context_mask)  # (batch, target_len, d_model)
        logits = self.final_layer(x)  # (batch, target_len, target_vocab_size)
        try:
            # Drop the keras mask, so it doesn't scale the losses/metrics.
            # b/250038731
            del logits._keras_mask
        except AttributeError:
            pass
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            input_vocab_size=self.input_vocab_size,
            target_vocab_size=self.target_vocab_size,
            dropout_rate=self.dropout_rate,
        )
        return config
