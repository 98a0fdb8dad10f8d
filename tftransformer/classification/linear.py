"""One-vs-rest logistic regression on TF-IDF features, as a Keras model.

Not in the NMT tutorial: the course's classical baseline,
`OneVsRestClassifier(LogisticRegression())`, built so it trains, saves and
exports like the other classifiers. A sigmoid per label over one `Dense`
layer, trained with binary cross-entropy, *is* one independent logistic
regression per label. Its features are TF-IDF over the run's own subword
ids, computed in-graph by `TfIdf`, so the export still takes raw strings.

Regularization matches scikit-learn's `LogisticRegression(C=c)`: per label
it minimizes `C * sum_i logloss_i + ||w||^2 / 2` (the intercept is not
penalized). Keras minimizes the mean loss over examples and labels plus the
regularizer, so the same optimum needs an L2 factor of `1 / (2 C N L)` on the
kernel, with N training examples and L labels (`L = 1` for multiclass, where
the softmax form is multinomial logistic regression). `l2_for` computes it.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tftransformer._building import BuiltBeforeTracing
from tftransformer.classification.model import LabelDecisions
from tftransformer.embedding import as_int

# [PAD], [START] and [END]: padding, and tokens every text has, are not features.
IGNORED_IDS = (0, 2, 3)


def l2_for(c, train_examples, num_labels, mode):
    """The Keras L2 factor whose optimum is scikit-learn's `LogisticRegression(C=c)`'s."""
    if c <= 0:
        raise ValueError(f"C must be positive, got {c!r}")
    labels = num_labels if mode == "multilabel" else 1
    return 1.0 / (2.0 * c * max(1, int(train_examples)) * labels)


@keras.saving.register_keras_serializable(package="tftransformer")
class TfIdf(keras.layers.Layer):
    """Token ids (batch, seq) -> L2-normalized TF-IDF rows (batch, vocab_size).

    The same features as scikit-learn's `TfidfVectorizer(sublinear_tf=True)`
    (smooth IDF `ln((1 + n) / (1 + df)) + 1`, term frequency `1 + ln(count)`,
    rows scaled to unit length) with the subword ids as terms. `adapt` learns
    the IDF from training ids; it is a non-trainable weight, saved with the
    model. Ids in `ignored_ids` (padding, [START], [END]) count as nothing.
    """

    def __init__(self, vocab_size, ignored_ids=IGNORED_IDS, sublinear_tf=True, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.ignored_ids = tuple(int(i) for i in ignored_ids)
        self.sublinear_tf = bool(sublinear_tf)
        keep = np.ones(self.vocab_size, "float32")
        keep[[i for i in self.ignored_ids if i < self.vocab_size]] = 0.0
        self._keep = keep
        self.idf = self.add_weight(
            shape=(self.vocab_size,),
            initializer=keras.initializers.Constant(keep),
            trainable=False,
            name="idf",
        )

    def counts(self, ids):
        """(batch, vocab_size) float term counts; ignored ids count 0."""
        ids = tf.cast(ids, tf.int32)
        counts = tf.math.bincount(ids, minlength=self.vocab_size, maxlength=self.vocab_size,
                                  axis=-1, dtype=tf.float32)  # fmt: skip
        return counts * self._keep

    def adapt(self, id_batches):
        """Learn the IDF from an iterable of (batch, seq) id arrays (the training split)."""
        documents, frequency = 0, np.zeros(self.vocab_size, "float64")
        for ids in id_batches:
            present = np.asarray(self.counts(ids)) > 0
            documents += present.shape[0]
            frequency += present.sum(axis=0)
        idf = np.log((1.0 + documents) / (1.0 + frequency)) + 1.0
        self.idf.assign((idf * self._keep).astype("float32"))

    def call(self, ids):
        counts = self.counts(ids)
        if self.sublinear_tf:
            tf_ = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0)
        else:
            tf_ = counts
        weights = tf_ * tf.cast(self.idf, tf_.dtype)
        return tf.math.l2_normalize(weights, axis=-1)  # a zero row stays zero

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.vocab_size)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, ignored_ids=list(self.ignored_ids),
                      sublinear_tf=self.sublinear_tf)  # fmt: skip
        return config


@keras.saving.register_keras_serializable(package="tftransformer")
class LinearClassifier(LabelDecisions, BuiltBeforeTracing, keras.Model):
    """Token ids -> `TfIdf` -> `Dense(num_labels)` logits: one-vs-rest logistic regression.

    Args:
        vocab_size: input vocabulary size (the TF-IDF width).
        num_labels: number of labels.
        l2: L2 factor on the kernel (see `l2_for` to match scikit-learn's `C`).
        mode, threshold: as `TransformerClassifier` (`LabelDecisions`); in
            multiclass mode it is multinomial logistic regression.

    Call `adapt(id_batches)` on the training ids before training.
    """

    def __init__(self, *, vocab_size, num_labels, l2=0.0, mode="multilabel", threshold=0.5,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.vocab_size = as_int(vocab_size, "vocab_size")
        self.num_labels = as_int(num_labels, "num_labels")
        if float(l2) < 0:
            raise ValueError(f"l2 must be >= 0, got {l2!r}")
        self.l2 = float(l2)
        self._init_decisions(mode, threshold)
        self.features = TfIdf(self.vocab_size, name="tfidf")
        self.head = keras.layers.Dense(
            self.num_labels,
            kernel_initializer="zeros",  # a convex problem: start where sklearn starts
            kernel_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None,
            name="head",
        )

    def build(self, input_shape):
        self.features.build(input_shape)
        self.head.build((input_shape[0], self.vocab_size))
        self.built = True

    def adapt(self, id_batches):
        """Learn the TF-IDF weights from the training split's ids."""
        self.features.adapt(id_batches)

    def call(self, ids):
        return self.head(self.features(ids))  # (batch, num_labels) logits

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, l2=self.l2, **self._decision_config())
        return config
