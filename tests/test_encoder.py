import numpy as np
from conftest import random_ids
from layer_testing import run_layer_test

from tftransformer import Encoder, EncoderLayer, PositionalEmbedding

SIZES = dict(d_model=16, num_heads=2, dff=32, dropout_rate=0.1)


def test_encoder_layer_harness():
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype("float32")
    run_layer_test(EncoderLayer, SIZES, x, (2, 5, 16))


def test_encoder_harness():
    ids = np.array([[1, 2, 3, 0], [4, 0, 0, 0]])
    run_layer_test(Encoder, dict(num_layers=2, vocab_size=11, **SIZES), ids, (2, 4, 16))


def test_encoder_output_carries_the_padding_mask():
    ids = np.array([[1, 2, 3, 0], [4, 0, 0, 0]])
    out = Encoder(num_layers=2, vocab_size=11, **SIZES)(ids)
    np.testing.assert_array_equal(out._keras_mask, ids != 0)


def test_padding_is_masked_in_every_encoder_layer(rng):
    encoder = Encoder(num_layers=3, vocab_size=11, **SIZES)
    ids = random_ids(rng, 11, [5, 2, 4])
    padded = np.pad(ids, ((0, 0), (0, 6)))
    real = ids != 0
    out = encoder(ids, training=False).numpy()
    out_padded = encoder(padded, training=False).numpy()[:, :5]
    np.testing.assert_allclose(out[real], out_padded[real], atol=1e-5)


def test_encoder_layer_masks_padding_given_explicitly(rng):
    layer = EncoderLayer(**SIZES)
    embed = PositionalEmbedding(vocab_size=11, d_model=16)
    ids = random_ids(rng, 11, [3, 5])
    padded = np.pad(ids, ((0, 0), (0, 4)))
    x = embed(ids).numpy()  # plain arrays: no Keras mask attached
    xp = embed(padded).numpy()
    out = layer(x, mask=ids != 0, training=False).numpy()
    outp = layer(xp, mask=padded != 0, training=False).numpy()[:, :5]
    np.testing.assert_allclose(out[ids != 0], outp[ids != 0], atol=1e-5)
