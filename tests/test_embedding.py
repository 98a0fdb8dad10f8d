import numpy as np
import pytest
import tensorflow as tf
from layer_testing import run_layer_test

from tftransformer import PositionalEmbedding, positional_encoding


def test_positional_encoding_shape_and_halves():
    pos = positional_encoding(length=2048, depth=512).numpy()
    assert pos.shape == (2048, 512) and pos.dtype == np.float32
    positions = np.arange(2048)[:, None]
    rates = 1 / 10000 ** (np.arange(256)[None, :] / 256)
    np.testing.assert_allclose(pos[:, :256], np.sin(positions * rates), atol=1e-6)
    np.testing.assert_allclose(pos[:, 256:], np.cos(positions * rates), atol=1e-6)


def test_positional_encoding_dot_products_match_the_tutorial_curve():
    pos = positional_encoding(length=2048, depth=512).numpy()
    pos = pos / np.linalg.norm(pos, axis=1, keepdims=True)
    dots = pos @ pos[1000]
    expected = [0.741, 0.768, 0.827, 0.905, 0.973, 1.0, 0.973, 0.905, 0.827, 0.768, 0.741]
    np.testing.assert_allclose(dots[995:1006], expected, atol=5e-4)


def test_positional_encoding_rejects_odd_depth():
    with pytest.raises(ValueError, match="depth=7"):
        positional_encoding(10, 7)


def test_layer_harness():
    ids = np.array([[3, 4, 5, 0], [6, 0, 0, 0]])
    run_layer_test(PositionalEmbedding, dict(vocab_size=10, d_model=8), ids, (2, 4, 8))


def test_embedding_is_scaled_and_position_encoded():
    layer = PositionalEmbedding(vocab_size=10, d_model=8)
    ids = np.array([[3, 4, 0]])
    out = layer(ids).numpy()
    table = layer.embedding.embeddings.numpy()
    expected = table[ids[0]] * np.sqrt(8) + positional_encoding(2048, 8).numpy()[:3]
    np.testing.assert_allclose(out[0], expected, rtol=1e-6, atol=1e-6)


def test_mask_marks_padding():
    layer = PositionalEmbedding(vocab_size=10, d_model=8)
    ids = np.array([[3, 4, 0], [1, 0, 0]])
    np.testing.assert_array_equal(layer.compute_mask(ids), ids != 0)
    np.testing.assert_array_equal(layer(ids)._keras_mask, ids != 0)


@pytest.mark.parametrize("size", [np.int32(10), np.int64(10), tf.constant(10)])
def test_vocab_size_accepts_numpy_and_tensor_ints(size):
    # Keras 3 rejects numpy ints in Embedding; the tutorial passes them in.
    assert PositionalEmbedding(vocab_size=size, d_model=8).vocab_size == 10


@pytest.mark.parametrize("size", [0, 2.5, "ten"])
def test_bad_vocab_size_is_named(size):
    with pytest.raises(ValueError, match="vocab_size"):
        PositionalEmbedding(vocab_size=size, d_model=8)
