"""The tutorial's input pipeline: tokenize, trim, shift, batch.

Tutorial: "Set up a data pipeline with tf.data". `prepare_batch` and
`make_batches` keep the tutorial's constants and math, with the tokenizers
passed in instead of read from a global. `make_bucketed_batches` is an opt-in
length-bucketed alternative.
"""

from __future__ import annotations

import tensorflow as tf

MAX_TOKENS = 128
BUFFER_SIZE = 20000
BATCH_SIZE = 64


# Deviation from tutorial: the tokenizers (and `max_tokens`) are arguments, not globals.
def prepare_batch(pt, en, tokenizers, max_tokens=MAX_TOKENS):
    """Batched strings → `((pt, en_inputs), en_labels)`, zero-padded int64.

    Tutorial: "Set up a data pipeline with tf.data". Portuguese is trimmed to
    `max_tokens`, English to `max_tokens + 1` and then shifted by one:
    `en_inputs` drops the last token (`[END]` or a trimmed one), `en_labels`
    the first (`[START]`).
    """
    pt = tokenizers.pt.tokenize(pt)  # Output is ragged.
    pt = pt[:, :max_tokens]  # Trim to max_tokens.
    pt = pt.to_tensor()  # Convert to 0-padded dense Tensor

    en = tokenizers.en.tokenize(en)
    en = en[:, : (max_tokens + 1)]
    en_inputs = en[:, :-1].to_tensor()  # Drop the [END] tokens
    en_labels = en[:, 1:].to_tensor()  # Drop the [START] tokens

    return (pt, en_inputs), en_labels


# Deviation from tutorial: the tokenizers, sizes and shuffling are arguments, not globals.
def make_batches(
    ds,
    tokenizers,
    buffer_size=BUFFER_SIZE,
    batch_size=BATCH_SIZE,
    max_tokens=MAX_TOKENS,
    shuffle=True,
    seed=None,
):
    """shuffle → batch → `prepare_batch` → prefetch, as in the tutorial.

    Tutorial: "Set up a data pipeline with tf.data". `shuffle=False` (and
    `seed`) make the order reproducible for evaluation and tests.
    """
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed)
    return (
        ds.batch(batch_size)
        .map(
            lambda pt, en: prepare_batch(pt, en, tokenizers, max_tokens),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(buffer_size=tf.data.AUTOTUNE)
    )


def _tokenize_examples(ds, tokenizers, max_tokens, chunk=1024):
    """Per-example `(pt_ids, en_ids)` int64 vectors, trimmed like `prepare_batch`."""

    def tokenize(pt, en):
        pt = tokenizers.pt.tokenize(pt)[:, :max_tokens]
        en = tokenizers.en.tokenize(en)[:, : (max_tokens + 1)]
        return pt, en

    def dense(pt, en):
        # After `unbatch` each row is a 1-D ragged value; make it a plain vector.
        return tuple(x.flat_values if isinstance(x, tf.RaggedTensor) else x for x in (pt, en))

    # Tokenizing a chunk at a time is much faster than one sentence at a time.
    return (
        ds.batch(chunk)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
        .map(dense, num_parallel_calls=tf.data.AUTOTUNE)
    )


def default_bucket_boundaries(max_tokens=MAX_TOKENS):
    """Bucket bounds every 2 tokens up to 32, then about 25% apart, up to `max_tokens + 1`.

    Sentences are mostly short, so the short buckets are fine-grained.
    """
    bounds = list(range(6, 34, 2))
    while bounds[-1] * 5 // 4 < max_tokens + 2:
        bounds.append(bounds[-1] * 5 // 4)
    return [b for b in bounds if b < max_tokens + 2]


def make_bucketed_batches(
    ds,
    tokenizers,
    buffer_size=BUFFER_SIZE,
    batch_size=BATCH_SIZE,
    max_tokens=MAX_TOKENS,
    tokens_per_batch=None,
    boundaries=None,
    shuffle=True,
    seed=None,
):
    """Like `make_batches`, but each batch holds sentences of similar length.

    Deviation from tutorial (opt-in): the tutorial pads every batch to its
    longest sentence, so short sentences carry many pad tokens. Here examples
    are grouped by `max(len(pt), len(en))` into buckets (`boundaries`, default
    `default_bucket_boundaries`) with `tf.data`'s `bucket_by_sequence_length`
    and padded only to their bucket's longest example. The examples, their
    trimming and the one-token shift are exactly the tutorial's.

    Args:
        batch_size: examples per batch when `tokens_per_batch` is None.
        tokens_per_batch: if set, a token budget: a bucket whose examples are
            up to L tokens long gets `max(1, tokens_per_batch // L)` examples.
    """
    boundaries = list(boundaries or default_bucket_boundaries(max_tokens))
    if tokens_per_batch:
        uppers = [*boundaries, max_tokens + 2]
        sizes = [max(1, int(tokens_per_batch) // upper) for upper in uppers]
    else:
        sizes = [batch_size] * (len(boundaries) + 1)
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed)
    examples = _tokenize_examples(ds, tokenizers, max_tokens)
    # Deviation from tutorial (opt-in, --bucket): batches padded per length bucket.
    batched = examples.bucket_by_sequence_length(
        element_length_func=lambda pt, en: tf.cast(
            tf.maximum(tf.shape(pt)[0], tf.shape(en)[0]), tf.int32
        ),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=sizes,
        pad_to_bucket_boundary=False,
    )

    def shift(pt, en):
        # `en` is zero-padded; dropping its last column and first column gives
        # exactly the tutorial's en_inputs / en_labels for every row, up to
        # trailing padding.
        en_inputs = en[:, :-1]
        en_labels = en[:, 1:]
        # A row's [END] sits at its own length - 1; in en_inputs it must be
        # removed, as the tutorial's ragged slice does.
        lengths = tf.math.count_nonzero(en, axis=1, keepdims=True)
        cols = tf.range(tf.shape(en_inputs)[1], dtype=lengths.dtype)[tf.newaxis, :]
        en_inputs = tf.where(cols < lengths - 1, en_inputs, tf.zeros_like(en_inputs))
        return (pt, en_inputs), en_labels

    return batched.map(shift, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
