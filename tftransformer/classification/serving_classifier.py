"""The classifier's serving export: strings in, scores, labels and decisions out.

The tokenizer and the label names travel inside the SavedModel; loading it
needs only `tensorflow` and `tensorflow_text`.
"""

from __future__ import annotations

import tensorflow as tf

from tftransformer.data import MAX_TOKENS

# The signature's input; traced without AutoGraph (no Python control flow on tensors
# here or in the models), which would only add conversion time.
TEXTS = tf.TensorSpec(shape=[None], dtype=tf.string, name="texts")


def tokenize_texts(tokenizer, texts, max_tokens):
    """Strings -> zero-padded ids (batch, <= max_tokens), framed by [START]/[END]."""
    return tokenizer.tokenize(texts)[:, :max_tokens].to_tensor()


class ExportClassifier(tf.Module):
    """Strings in, scores/labels/predicted out; the tokenizer and label names inside."""

    def __init__(self, tokenizer, model, label_names, max_tokens=MAX_TOKENS):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model
        self.label_names = tf.constant(list(label_names), tf.string)
        self.max_tokens = int(max_tokens)

    @tf.function(input_signature=[TEXTS], autograph=False)
    def classify(self, texts):
        # A served model gets whatever a client sends (the signature's shape is not
        # enforced at run time): name a wrong rank clearly instead of failing deep inside.
        texts = tf.ensure_shape(texts, [None], name="texts_must_have_shape_batch")
        ids = tokenize_texts(self.tokenizer, texts, self.max_tokens)
        scores = self.model.scores(self.model(ids, training=False))  # (batch, labels)
        batch = tf.shape(texts)[0]
        labels = tf.tile(self.label_names[tf.newaxis, :], [batch, 1])  # (batch, labels)
        return {
            "scores": tf.cast(scores, tf.float32),
            "labels": labels,
            "predicted": self.model.predicted(scores),
        }
