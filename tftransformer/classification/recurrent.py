"""The course's recurrent text classifier: the last layer's final hidden state -> labels.

Not in the NMT tutorial. Token ids -> `Embedding(mask_zero=True)` -> stacked
LSTM or GRU layers (each optionally bidirectional) -> the last layer's final
hidden state (forward and backward concatenated when bidirectional) ->
dropout -> `Dense(num_labels)` logits. In the course's PyTorch terms,
`output, (hidden, cell) = lstm(x)` then `fc(hidden[-1])`: Keras'
`return_sequences=False` output of the last layer is that `hidden[-1]`.

Masking is real: padding (id 0) is skipped by every recurrent layer (the
state is carried over padded steps), so appending padding changes no logit.
"""

from __future__ import annotations

import keras

from tftransformer._building import BuiltBeforeTracing
from tftransformer.classification.model import LabelDecisions
from tftransformer.embedding import as_int

CELLS = ("lstm", "gru")


@keras.saving.register_keras_serializable(package="tftransformer")
class RecurrentClassifier(LabelDecisions, BuiltBeforeTracing, keras.Model):
    """Token ids (batch, seq) -> label logits (batch, num_labels) through an LSTM/GRU stack.

    Args:
        vocab_size: input vocabulary size.
        num_labels: number of labels.
        cell: `"lstm"` (default) or `"gru"`.
        embedding_dim: token embedding size.
        units: hidden units per recurrent layer (per direction).
        num_layers: stacked recurrent layers.
        bidirectional: run each layer both ways and concatenate.
        dropout_rate: dropout on the final hidden state.
        mode, threshold: as `TransformerClassifier` (`LabelDecisions`).
    """

    def __init__(
        self,
        *,
        vocab_size,
        num_labels,
        cell="lstm",
        embedding_dim=128,
        units=128,
        num_layers=1,
        bidirectional=False,
        dropout_rate=0.1,
        mode="multilabel",
        threshold=0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.num_labels = as_int(num_labels, "num_labels")
        self.cell = cell
        self.embedding_dim = as_int(embedding_dim, "embedding_dim")
        self.units = as_int(units, "units")
        self.num_layers = as_int(num_layers, "num_layers")
        self.bidirectional = bool(bidirectional)
        self.dropout_rate = float(dropout_rate)
        self._init_decisions(mode, threshold)
        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, mask_zero=True, name="embedding"
        )
        layer_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
        self.rnns = []
        for index in range(self.num_layers):
            layer = layer_class(
                self.units,
                return_sequences=index < self.num_layers - 1,  # the last one: final state
                name=f"{cell}_{index}",
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
            self.rnns.append(layer)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.head = keras.layers.Dense(self.num_labels, name="head")

    def build(self, input_shape):
        batch, seq = tuple(input_shape)
        self.embedding.build((batch, seq))
        width = self.embedding_dim
        for layer in self.rnns:
            layer.build((batch, seq, width))
            width = self.units * (2 if self.bidirectional else 1)
        self.head.build((batch, width))
        self.built = True

    def call(self, ids, training=None):
        mask = self.embedding.compute_mask(ids)  # (batch, seq): False on padding
        x = self.embedding(ids)  # (batch, seq, embedding_dim)
        for layer in self.rnns:
            x = layer(x, mask=mask, training=training)
        # x: (batch, units [* 2]): the last layer's final hidden state.
        return self.head(self.dropout(x, training=training))  # (batch, num_labels) logits

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            cell=self.cell,
            embedding_dim=self.embedding_dim,
            units=self.units,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout_rate=self.dropout_rate,
            **self._decision_config(),
        )
        return config
