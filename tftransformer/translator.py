"""Greedy translation, as in the tutorial.

Tutorial: "Run inference".
"""

from __future__ import annotations

import warnings

import tensorflow as tf

from tftransformer.data import MAX_TOKENS


class Translator(tf.Module):
    """Greedy decoding with a trained `Transformer`, one sentence per call.

    Tutorial: "Run inference". `__call__(sentence, max_length)` returns
    `(text, tokens, attention_weights)`: the detokenized translation, its word
    pieces (with `[START]`/`[END]`) and the last decoder layer's
    cross-attention, (1, heads, len(tokens) - 1, input_tokens).

    Each step re-runs the whole model over the whole prefix, as the tutorial
    does; see `FastTranslator` for cached, batched decoding.
    """

    def __init__(self, tokenizers, transformer, max_input_tokens=MAX_TOKENS):
        super().__init__()
        self.tokenizers = tokenizers
        self.transformer = transformer
        self.max_input_tokens = max_input_tokens

    def __call__(self, sentence, max_length=MAX_TOKENS):
        # Deviation from tutorial: a clear error instead of a bare `assert` (or a
        # failure deep in the loop) for anything but one tf.string sentence.
        if not isinstance(sentence, tf.Tensor) or sentence.dtype != tf.string:
            raise TypeError(
                f"Translator: sentence must be a scalar tf.string tensor, got {sentence!r:.80}"
            )
        if sentence.shape.rank is None or not (
            sentence.shape.rank == 0 or sentence.shape.as_list() == [1]
        ):
            raise ValueError(
                "Translator: sentence must be one sentence (shape [] or [1]), got shape "
                f"{sentence.shape}; use FastTranslator for batches"
            )
        if len(sentence.shape) == 0:
            sentence = sentence[tf.newaxis]  # a batch of one

        # Deviation from tutorial: the input is trimmed to `max_input_tokens`
        # (what the model saw in training, as in `prepare_batch`); the
        # tutorial feeds any length and fails past 2048 tokens.
        pt_ids = self.tokenizers.pt.tokenize(sentence)[:, : self.max_input_tokens]
        encoder_input = pt_ids.to_tensor()  # (1, input_tokens)

        # Tokenizing the empty string yields just [START] [END]: the ids to
        # begin with and to stop at.
        start_end = self.tokenizers.en.tokenize([""])[0]
        start = start_end[0][tf.newaxis]
        end = start_end[1][tf.newaxis]

        # A TensorArray (not a Python list) so `tf.function` can trace the loop.
        output_array = tf.TensorArray(dtype=tf.int64, size=0, dynamic_size=True)
        output_array = output_array.write(0, start)

        for i in tf.range(max_length):
            output = tf.transpose(output_array.stack())  # (1, i + 1)
            with warnings.catch_warnings():
                # Deviation from tutorial: Keras' warning is silenced here only.
                # The first step attends over a single key; Keras warns that a softmax
                # over one element is always 1, which is exactly right here.
                warnings.filterwarnings("ignore", message="You are using a softmax over axis 3")
                logits = self.transformer([encoder_input, output], training=False)
            next_logits = logits[:, -1:, :]  # (1, 1, vocab): only the newest position
            predicted_id = tf.argmax(next_logits, axis=-1)  # (1, 1)
            output_array = output_array.write(i + 1, predicted_id[0])
            if predicted_id == end:
                break

        output = tf.transpose(output_array.stack())  # (1, tokens)
        # Deviation from tutorial: `self.tokenizers`, not the global `tokenizers`.
        text = self.tokenizers.en.detokenize(output)[0]  # ()
        tokens = self.tokenizers.en.lookup(output)[0]  # (tokens,)

        # Inside `tf.function` the scores cached during the loop are not
        # reachable afterwards, so run the finished prefix once more.
        self.transformer([encoder_input, output[:, :-1]], training=False)
        attention_weights = self.transformer.decoder.last_attn_scores

        return text, tokens, attention_weights


def print_translation(sentence, tokens, ground_truth):
    """The tutorial's three aligned lines: input, prediction, ground truth."""
    if isinstance(tokens, tf.Tensor):
        tokens = tokens.numpy().decode("utf-8")
    print(f"{'Input:':15s}: {sentence}")
    print(f"{'Prediction':15s}: {tokens}")
    print(f"{'Ground truth':15s}: {ground_truth}")


def make_translate_fn(translator, max_length=MAX_TOKENS):
    """`translator` traced once as a `tf.function`: scalar string -> text.

    The tutorial calls its `Translator` eagerly (about 112 ms per token on a
    2-core CPU, measured); traced it runs about 8x faster.
    """

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def translate(sentence):
        text, _tokens, _attention = translator(sentence, max_length=max_length)
        return text

    return translate
