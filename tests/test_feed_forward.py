import numpy as np
from layer_testing import run_layer_test

from tftransformer import EncoderLayer, FeedForward


def test_layer_harness():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    run_layer_test(FeedForward, dict(d_model=8, dff=16, dropout_rate=0.1), x, (2, 5, 8))


def test_positional_arguments_like_the_tutorial():
    layer = FeedForward(512, 2048)
    assert (layer.d_model, layer.dff, layer.dropout_rate) == (512, 2048, 0.1)


def test_dropout_rate_is_honoured_and_reaches_encoder_layer():
    layer = FeedForward(8, 16, dropout_rate=0.5)
    assert layer.seq.layers[-1].rate == 0.5
    x = np.ones((4, 6, 8), "float32")
    # Dropout acts in training only; with rate 0.5 outputs differ from inference.
    assert not np.allclose(layer(x, training=True), layer(x, training=False))
    assert EncoderLayer(d_model=8, num_heads=2, dff=16, dropout_rate=0.3).ffn.dropout_rate == 0.3


def test_keeps_the_padding_mask():
    from tftransformer import PositionalEmbedding

    ids = np.array([[1, 2, 0]])
    x = PositionalEmbedding(vocab_size=5, d_model=8)(ids)
    np.testing.assert_array_equal(FeedForward(8, 16)(x)._keras_mask, ids != 0)
