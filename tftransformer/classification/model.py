"""Text classification with the translator's encoder: multi-class and multi-label.

Not in the NMT tutorial; it reuses its `Encoder` (with its
`PositionalEmbedding`) under a pooled classification head, in the spirit of
keras.io's "Text classification with Transformer". `mode="multilabel"` treats
each label as its own yes/no decision (one sigmoid per label, binary
cross-entropy); `mode="multiclass"` picks exactly one label (softmax).
"""

from __future__ import annotations

import keras
from keras import ops

from tftransformer._building import BuiltBeforeTracing, build_once
from tftransformer.embedding import as_int
from tftransformer.encoder import Encoder

MODES = ("multiclass", "multilabel")
POOLINGS = ("mean", "cls")


def check_threshold(threshold, num_labels):
    """`threshold` as a float or a list of `num_labels` floats, each inside (0, 1)."""
    values = threshold if isinstance(threshold, (list, tuple)) else [threshold]
    if isinstance(threshold, (list, tuple)) and len(values) != num_labels:
        raise ValueError(
            f"threshold must be one float or one per label ({num_labels}), got {len(values)}"
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"threshold must be between 0 and 1, got {value!r}")
    if isinstance(threshold, (list, tuple)):
        return [float(v) for v in values]
    return float(threshold)


class LabelDecisions:
    """What every classifier model shares: logits -> scores -> decisions.

    `mode="multilabel"`: a sigmoid per label, and a label is predicted when
    its score reaches `threshold` (one float, or one per label as chosen by
    `--threshold auto`). `mode="multiclass"`: softmax over the labels, and
    exactly the argmax is predicted.
    """

    def _init_decisions(self, mode, threshold):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.threshold = check_threshold(threshold, self.num_labels)

    def set_thresholds(self, threshold):
        """Replace the decision threshold(s); saved with the model's config."""
        self.threshold = check_threshold(threshold, self.num_labels)

    def scores(self, logits):
        """Probabilities: sigmoid per label (multilabel) or softmax (multiclass)."""
        if self.mode == "multilabel":
            return ops.sigmoid(logits)
        return ops.softmax(logits, axis=-1)

    def predicted(self, scores):
        """Boolean decisions: score >= its label's threshold, or the argmax one-hot."""
        if self.mode == "multilabel":
            threshold = ops.convert_to_tensor(self.threshold, dtype=scores.dtype)
            return ops.greater_equal(scores, threshold)
        return ops.equal(ops.one_hot(ops.argmax(scores, axis=-1), self.num_labels), 1.0)

    def _decision_config(self):
        return {"num_labels": self.num_labels, "mode": self.mode, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="tftransformer")
class TransformerClassifier(LabelDecisions, BuiltBeforeTracing, keras.Model):
    """Token ids (batch, seq) -> label logits (batch, num_labels).

    `Encoder` -> pooling over real tokens -> dropout -> `Dense(num_labels)`.

    Args:
        num_layers, d_model, num_heads, dff, dropout_rate: encoder sizes, as
            in `Transformer` (tutorial defaults via `TransformerConfig`).
        vocab_size: input vocabulary size.
        num_labels: number of labels (classes).
        mode: `"multilabel"` (default; sigmoid per label) or `"multiclass"`
            (softmax over labels).
        pooling: `"mean"` over non-pad tokens (default) or `"cls"`, the first
            token's vector (`[START]` from `CustomTokenizer` plays [CLS]).
        threshold: probability at or above which a label is predicted in
            multi-label mode: one float (default 0.5) or one per label.

    Masking: padding (id 0) is masked in every encoder self-attention and is
    left out of the mean, so extra padding changes no prediction.
    """

    def __init__(
        self,
        *,
        num_layers,
        d_model,
        num_heads,
        dff,
        vocab_size,
        num_labels,
        dropout_rate=0.1,
        mode="multilabel",
        pooling="mean",
        threshold=0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.num_layers = as_int(num_layers, "num_layers")
        self.d_model = as_int(d_model, "d_model")
        self.num_heads = as_int(num_heads, "num_heads")
        self.dff = as_int(dff, "dff")
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.num_labels = as_int(num_labels, "num_labels")
        self.dropout_rate = float(dropout_rate)
        self.pooling = pooling
        self._init_decisions(mode, threshold)
        self.encoder = Encoder(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            vocab_size=self.vocab_size,
            dropout_rate=self.dropout_rate,
            name="encoder",
        )
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.head = keras.layers.Dense(self.num_labels, name="head")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        build_once(self.encoder, input_shape)
        build_once(self.head, (input_shape[0], self.d_model))
        self.built = True

    def call(self, ids, training=None):
        # `training` declared so that Keras 3's `fit` turns dropout on (see Transformer.call).
        mask = self.encoder.compute_mask(ids)  # (batch, seq)
        x = self.encoder(ids)  # (batch, seq, d_model)
        if self.pooling == "cls":
            pooled = x[:, 0, :]
        else:
            weights = ops.cast(mask, x.dtype)[:, :, None]  # (batch, seq, 1)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)  # (batch, 1)
            pooled = ops.sum(x * weights, axis=1) / count  # (batch, d_model)
        return self.head(self.dropout(pooled))  # (batch, num_labels) logits

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            vocab_size=self.vocab_size,
            dropout_rate=self.dropout_rate,
            pooling=self.pooling,
            **self._decision_config(),
        )
        return config


class _FromLogits:
    """Mixin: the metric sees sigmoid(logits) instead of logits."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, ops.sigmoid(y_pred), sample_weight)


@keras.saving.register_keras_serializable(package="tftransformer")
class LogitF1Score(_FromLogits, keras.metrics.F1Score):
    """`keras.metrics.F1Score` on sigmoid(logits)."""


@keras.saving.register_keras_serializable(package="tftransformer")
class LogitPrecision(_FromLogits, keras.metrics.Precision):
    """`keras.metrics.Precision` on sigmoid(logits)."""


@keras.saving.register_keras_serializable(package="tftransformer")
class LogitRecall(_FromLogits, keras.metrics.Recall):
    """`keras.metrics.Recall` on sigmoid(logits)."""


def classifier_loss_and_metrics(mode, num_labels, threshold=0.5):
    """The loss and metrics `compile` needs for `mode` (labels as the data gives them).

    multilabel: multi-hot float labels; binary cross-entropy from logits;
    micro and macro F1, precision, recall, AUC. multiclass: integer labels;
    sparse categorical cross-entropy from logits; accuracy.
    """
    if mode == "multilabel":
        return keras.losses.BinaryCrossentropy(from_logits=True), [
            LogitF1Score(average="micro", threshold=threshold, name="micro_f1"),
            LogitF1Score(average="macro", threshold=threshold, name="macro_f1"),
            LogitPrecision(thresholds=threshold, name="precision"),
            LogitRecall(thresholds=threshold, name="recall"),
            keras.metrics.AUC(from_logits=True, multi_label=True, num_labels=num_labels,
                              name="auc"),
        ]  # fmt: skip
    if mode == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        ]
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
