import numpy as np
from conftest import random_ids
from layer_testing import run_layer_test

from tftransformer import Decoder, DecoderLayer, Encoder

SIZES = dict(d_model=16, num_heads=2, dff=32, dropout_rate=0.1)


def _floats(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_decoder_layer_harness():
    inputs = {"x": _floats((2, 4, 16)), "context": _floats((2, 6, 16), 1)}
    run_layer_test(DecoderLayer, SIZES, inputs, (2, 4, 16))


def test_decoder_harness():
    inputs = {"x": np.array([[1, 2, 3, 0], [4, 5, 0, 0]]), "context": _floats((2, 6, 16))}
    run_layer_test(Decoder, dict(num_layers=2, vocab_size=13, **SIZES), inputs, (2, 4, 16))


def test_last_attn_scores_shape():
    decoder = Decoder(num_layers=2, vocab_size=13, **SIZES)
    x = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    decoder(x, _floats((2, 6, 16)))
    # (batch, heads, target_seq, input_seq)
    assert decoder.last_attn_scores.shape == (2, 2, 4, 6)
    assert decoder.last_attn_scores is decoder.dec_layers[-1].last_attn_scores


def test_padding_is_masked_in_every_decoder_layer(rng):
    encoder = Encoder(num_layers=3, vocab_size=11, **SIZES)
    decoder = Decoder(num_layers=3, vocab_size=13, **SIZES)
    pt = random_ids(rng, 11, [5, 2, 4])
    en = random_ids(rng, 13, [3, 6, 1])

    def run(pt, en):
        context = encoder(pt, training=False)  # carries the context's Keras mask
        out = decoder(en, context, training=False).numpy()
        scores = [layer.last_attn_scores.numpy() for layer in decoder.dec_layers]
        return out, scores

    out, _ = run(pt, en)
    out_padded, scores = run(np.pad(pt, ((0, 0), (0, 5))), np.pad(en, ((0, 0), (0, 4))))
    real = en != 0
    np.testing.assert_allclose(out[real], out_padded[:, :6][real], atol=1e-5)
    pad_keys = np.pad(pt, ((0, 0), (0, 5))) == 0  # (batch, input_seq)
    for layer_scores in scores:  # every cross-attention: every head and query row
        on_pads = np.broadcast_to(pad_keys[:, None, None, :], layer_scores.shape)
        assert np.all(layer_scores[on_pads] == 0)
