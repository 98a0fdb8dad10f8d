"""The head-major matmul attention layer: Keras' `MultiHeadAttention` math, weights, files."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, TINY_VOCAB, random_ids

from tftransformer import Transformer
from tftransformer.attention import CrossAttention
from tftransformer.kernels import attention as kernels
from tftransformer.kernels.attention import MatmulMultiHeadAttention


@pytest.fixture
def kernel():
    """Restore the process-wide choice after a test changes it."""
    yield kernels.use_attention_kernel
    kernels._chosen = None


def _pair(**kwargs):
    keras.utils.set_random_seed(0)
    x = tf.random.normal((3, 7, 16))
    context = tf.random.normal((3, 5, 16))
    reference = keras.layers.MultiHeadAttention(**kwargs)
    ours = MatmulMultiHeadAttention(**kwargs)
    reference(x, context)
    ours(x, context)
    ours.set_weights(reference.get_weights())
    return reference, ours, x, context


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_same_outputs_and_scores_as_keras(dropout):
    reference, ours, x, context = _pair(num_heads=2, key_dim=16, dropout=dropout)
    value_mask = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]) > 0
    for kwargs in ({}, {"value_mask": value_mask}):
        expected, expected_scores = reference(x, context, return_attention_scores=True,
                                              **kwargs)  # fmt: skip
        got, scores = ours(x, context, return_attention_scores=True, **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(x, x, use_causal_mask=True),
                               reference(x, x, use_causal_mask=True), atol=1e-5)  # fmt: skip
    # Causal and padding masks together.
    query_mask = tf.constant([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5]) > 0
    np.testing.assert_allclose(
        ours(x, x, use_causal_mask=True, value_mask=query_mask),
        reference(x, x, use_causal_mask=True, value_mask=query_mask), atol=1e-5,
    )  # fmt: skip


def test_a_causal_flag_reaching_the_core_masks_the_future():
    # Keras hands subclasses the causal mask already built; a future Keras that passed
    # the flag instead would still get causal attention.
    reference, ours, x, _context = _pair(num_heads=2, key_dim=8)
    projected = [ours._query_dense(x), ours._key_dense(x), ours._value_dense(x)]
    causal = ours._compute_causal_mask(projected[0], projected[2])
    expected, _ = reference._compute_attention(*projected, attention_mask=causal)
    got, scores = ours._compute_attention(*projected, return_attention_scores=True,
                                          use_causal_mask=True)  # fmt: skip
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert float(tf.reduce_max(tf.linalg.band_part(scores, 0, -1) - tf.linalg.band_part(
        scores, 0, 0))) == 0.0  # no weight above the diagonal


def test_same_gradients_as_keras():
    # Attention dropout configured (off in inference): without it Keras' fused path runs.
    reference, ours, x, context = _pair(num_heads=2, key_dim=8, dropout=0.1)

    def grads(layer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x, context, use_causal_mask=False)))
        return tape.gradient(loss, layer.trainable_variables)

    for a, b in zip(grads(ours), grads(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_tutorial_blocks_build_the_chosen_kernel(kernel, monkeypatch):
    monkeypatch.delenv("TFTRANSFORMER_ATTENTION", raising=False)
    # The tutorial's layer by default; the matmul core is opt-in.
    assert type(CrossAttention(num_heads=2, key_dim=8).mha) is keras.layers.MultiHeadAttention
    kernel("matmul")
    assert type(CrossAttention(num_heads=2, key_dim=8).mha) is MatmulMultiHeadAttention
    with pytest.raises(ValueError, match="attention kernel must be one of matmul, einsum"):
        kernel("flash")


def test_environment_variable_selects_the_kernel(monkeypatch):
    monkeypatch.setattr(kernels, "_chosen", None)
    monkeypatch.setenv("TFTRANSFORMER_ATTENTION", "matmul")
    assert kernels.multi_head_attention_class() is MatmulMultiHeadAttention
    monkeypatch.setenv("TFTRANSFORMER_ATTENTION", "einsum")
    assert kernels.multi_head_attention_class() is keras.layers.MultiHeadAttention
    monkeypatch.setenv("TFTRANSFORMER_ATTENTION", "fast")
    with pytest.raises(ValueError, match="TFTRANSFORMER_ATTENTION must be one of"):
        kernels.attention_kernel()


def test_keras_files_are_the_same_either_way(kernel, tmp_path, rng):
    """Saved with the tutorial's path, loaded with the matmul one: same config, weights, logits."""
    kernel("einsum")
    model = Transformer(**TINY, **TINY_VOCAB)
    pt = random_ids(rng, TINY_VOCAB["input_vocab_size"], [7, 5, 3])
    en = random_ids(rng, TINY_VOCAB["target_vocab_size"], [6, 2, 4])
    reference = np.asarray(model((pt, en), training=False))
    model.save(tmp_path / "einsum.keras")
    kernel("matmul")
    loaded = keras.models.load_model(tmp_path / "einsum.keras")
    assert type(loaded.encoder.enc_layers[0].self_attention.mha) is MatmulMultiHeadAttention
    assert loaded.get_config() == model.get_config()
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    np.testing.assert_allclose(loaded((pt, en), training=False), reference, rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    # ...and the other way round.
    loaded.save(tmp_path / "matmul.keras")
    kernel("einsum")
    again = keras.models.load_model(tmp_path / "matmul.keras")
    np.testing.assert_allclose(again((pt, en), training=False), reference, rtol=1e-5, atol=1e-5)


def test_same_dropout_in_training_as_keras():
    # The scores keep Keras' (batch, heads, T, S) layout, so one dropout seed draws
    # the same mask: a training step is Keras' step, not merely alike in distribution.
    reference, ours, x, context = _pair(num_heads=2, key_dim=8, dropout=0.5)
    ours._dropout_layer.seed_generator.state.assign(
        reference._dropout_layer.seed_generator.state)  # fmt: skip
    expected = reference(x, context, training=True)
    got = ours(x, context, training=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, ours(x, context, training=False), atol=1e-3)  # dropout was on


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_heads": 3, "key_dim": 4, "value_dim": 6},  # values narrower/wider than keys
        {"num_heads": 2, "key_dim": 8, "use_bias": False},
    ],
)  # fmt: skip
def test_head_major_path_handles_layer_options(kwargs):
    reference, ours, x, context = _pair(**kwargs)
    expected, expected_scores = reference(x, context, return_attention_scores=True)
    got, scores = ours(x, context, return_attention_scores=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"num_heads": 2, "key_dim": 4, "attention_axes": (1, 2)}, (2, 3, 4, 8)),  # 2-D attention
        ({"num_heads": 2, "key_dim": 4, "output_shape": (5,)}, (2, 6, 8)),
        ({"num_heads": 2, "key_dim": 4, "use_gate": True}, (2, 6, 8)),
    ],
)  # fmt: skip
def test_other_layouts_fall_back_to_keras_math(kwargs, shape):
    keras.utils.set_random_seed(0)
    x = tf.random.normal(shape)
    # With attention dropout configured, only the layout sends these to Keras' path.
    reference = keras.layers.MultiHeadAttention(**kwargs, dropout=0.1)
    ours = MatmulMultiHeadAttention(**kwargs, dropout=0.1)
    reference(x, x)
    ours(x, x)
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(ours(x, x), reference(x, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_query_mask_travels_to_the_output(dropout):
    # Without dropout Keras fuses the core (`dot_product_attention`): a fully masked query
    # row then averages all values instead of giving zeros, and so does ours.
    reference, ours, x, context = _pair(num_heads=2, key_dim=8, dropout=dropout)
    query_mask = tf.constant([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5]) > 0
    results = []
    for layer in (reference, ours):
        query = tf.identity(x)
        query._keras_mask = query_mask
        results.append(layer(query, context))
    np.testing.assert_array_equal(results[1]._keras_mask, query_mask)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-5)


def test_mixed_precision_computes_in_the_policy_dtype():
    keras.utils.set_random_seed(0)
    x = tf.random.normal((3, 7, 16))
    # Attention dropout configured (off in inference), so the head-major path runs.
    kwargs = {"num_heads": 2, "key_dim": 8, "dropout": 0.1, "dtype": "mixed_bfloat16"}
    reference = keras.layers.MultiHeadAttention(**kwargs)
    ours = MatmulMultiHeadAttention(**kwargs)
    reference(x, x)
    ours(x, x)
    ours.set_weights(reference.get_weights())
    expected, got = reference(x, x, use_causal_mask=True), ours(x, x, use_causal_mask=True)
    assert got.dtype == expected.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in ours.weights)
    # bfloat16 keeps 8 bits of mantissa; the two paths round at different points.
    np.testing.assert_allclose(tf.cast(got, tf.float32), tf.cast(expected, tf.float32),
                               rtol=0.05, atol=0.05)  # fmt: skip
