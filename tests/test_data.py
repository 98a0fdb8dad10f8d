import collections

import numpy as np
import pytest
import tensorflow as tf

from tftransformer.corpus import load_corpus
from tftransformer.data import (
    BATCH_SIZE,
    BUFFER_SIZE,
    MAX_TOKENS,
    make_batches,
    make_bucketed_batches,
    prepare_batch,
)


def test_tutorial_constants():
    assert (MAX_TOKENS, BUFFER_SIZE, BATCH_SIZE) == (128, 20000, 64)


def test_prepare_batch_matches_a_hand_computation(tokenizers):
    pt = tf.constant(["Eu gosto de livros.", "Bom dia!"])
    en = tf.constant(["I like books.", "Good morning to you all!"])
    (pt_ids, en_inputs), en_labels = prepare_batch(pt, en, tokenizers)
    pt_rows = tokenizers.pt.tokenize(pt).to_list()
    en_rows = tokenizers.en.tokenize(en).to_list()
    for row, tokens in enumerate(pt_rows):
        np.testing.assert_array_equal(pt_ids[row, : len(tokens)], tokens)
        assert np.all(pt_ids[row, len(tokens) :] == 0)
    for row, tokens in enumerate(en_rows):
        np.testing.assert_array_equal(en_inputs[row, : len(tokens) - 1], tokens[:-1])
        np.testing.assert_array_equal(en_labels[row, : len(tokens) - 1], tokens[1:])
        assert np.all(en_inputs[row, len(tokens) - 1 :] == 0)


def test_make_batches_shapes_and_shift(tokenizers):
    batches = make_batches(load_corpus("embedded", "train"), tokenizers, seed=1)
    (pt, en_inputs), en_labels = next(iter(batches))
    assert pt.shape[0] == en_inputs.shape[0] == en_labels.shape[0] == BATCH_SIZE
    assert en_inputs.shape == en_labels.shape and pt.dtype == tf.int64
    assert np.all(en_inputs[:, 0] == 2)  # every input starts with [START]
    # The labels are the inputs shifted left by one token.
    real = en_inputs[:, 1:] != 0
    np.testing.assert_array_equal(en_inputs[:, 1:][real], en_labels[:, :-1][real])
    ends = np.array(en_labels)
    lengths = (ends != 0).sum(1)
    assert np.all(ends[np.arange(len(ends)), lengths - 1] == 3)  # ... ending in [END]


def test_trimming_to_max_tokens(tokenizers):
    pt = tf.constant(["um dois três quatro cinco seis sete oito nove dez"])
    en = tf.constant(["one two three four five six seven eight nine ten"])
    (pt_ids, en_inputs), en_labels = prepare_batch(pt, en, tokenizers, max_tokens=5)
    assert pt_ids.shape == (1, 5) and en_inputs.shape == (1, 5) and en_labels.shape == (1, 5)
    full = tokenizers.en.tokenize(en).to_list()[0]
    np.testing.assert_array_equal(en_inputs[0], full[:5])
    np.testing.assert_array_equal(en_labels[0], full[1:6])


def _examples(batches):
    """Each example as (pt, en_inputs, en_labels) tuples without padding."""
    found = collections.Counter()
    for (pt, en_inputs), en_labels in batches:
        for p, i, lab in zip(pt.numpy(), en_inputs.numpy(), en_labels.numpy(), strict=True):
            found[(tuple(p[p != 0]), tuple(i[i != 0]), tuple(lab[lab != 0]))] += 1
    return found


def _pad_share(batches):
    cells = pads = 0
    for (pt, en_inputs), _ in batches:
        for t in (pt, en_inputs):
            cells += int(tf.size(t))
            pads += int(tf.reduce_sum(tf.cast(t == 0, tf.int32)))
    return pads / cells


@pytest.mark.parametrize("max_tokens", [MAX_TOKENS, 9])
def test_bucketing_yields_the_same_examples_with_less_padding(tokenizers, max_tokens):
    ds = load_corpus("embedded", "train")
    plain = make_batches(ds, tokenizers, max_tokens=max_tokens, seed=3)
    bucketed = make_bucketed_batches(ds, tokenizers, max_tokens=max_tokens, seed=3)
    assert _examples(bucketed) == _examples(plain)
    if max_tokens == MAX_TOKENS:
        assert _pad_share(bucketed) < 0.6 * _pad_share(plain)


def test_token_budget_bounds_each_batch(tokenizers):
    ds = load_corpus("embedded", "validation")
    batches = make_bucketed_batches(ds, tokenizers, tokens_per_batch=256, shuffle=False)
    sizes = []
    for (pt, en_inputs), _ in batches:
        width = max(pt.shape[1], en_inputs.shape[1] + 1)
        assert pt.shape[0] * width <= 256
        sizes.append(pt.shape[0])
    assert sum(sizes) == 199 and max(sizes) > min(sizes)
