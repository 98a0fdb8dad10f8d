import keras
import numpy as np
import pytest
from layer_testing import run_layer_test

from tftransformer import (
    BaseAttention,
    CausalSelfAttention,
    CrossAttention,
    GlobalSelfAttention,
    PositionalEmbedding,
)

MHA = dict(num_heads=2, key_dim=8, dropout=0.1)


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize("cls", [GlobalSelfAttention, CausalSelfAttention])
def test_self_attention_harness(cls):
    run_layer_test(cls, MHA, _x((2, 5, 8)), (2, 5, 8))


def test_cross_attention_harness():
    inputs = {"x": _x((2, 4, 8)), "context": _x((2, 6, 8), seed=1)}
    run_layer_test(CrossAttention, MHA, inputs, (2, 4, 8))


def test_base_attention_passes_kwargs_to_mha_and_keeps_its_name():
    layer = BaseAttention(num_heads=3, key_dim=4, dropout=0.2, name="att")
    assert layer.name == "att"
    assert (layer.mha.num_heads, layer.mha.key_dim, layer.mha.dropout) == (3, 4, 0.2)
    config = layer.get_config()
    assert BaseAttention.from_config(config).get_config() == config


def test_causal_mask_ignores_future():
    # The tutorial's check: the first 3 outputs do not depend on later tokens.
    embed = PositionalEmbedding(vocab_size=20, d_model=8)
    csa = CausalSelfAttention(num_heads=2, key_dim=8)
    en = np.random.default_rng(0).integers(1, 20, size=(3, 9))
    out1 = csa(embed(en[:, :3]))
    out2 = csa(embed(en))[:, :3]
    assert np.max(np.abs(out1 - out2)) < 1e-6


def test_cross_attention_scores_shape_and_zero_on_padding():
    context_ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    context = PositionalEmbedding(vocab_size=10, d_model=8)(context_ids)
    x = _x((2, 4, 8))
    layer = CrossAttention(**MHA)
    out = layer(x, context, context_mask=context_ids != 0)
    assert out.shape == (2, 4, 8)
    scores = layer.last_attn_scores.numpy()
    assert scores.shape == (2, 2, 4, 5)
    assert np.all(scores[0, :, :, 3:] == 0)
    np.testing.assert_allclose(scores.sum(-1), 1, rtol=1e-5)


def test_cross_attention_takes_the_context_mask_from_keras_masks():
    # Tutorial style: no explicit mask, the embedded context carries it.
    context_ids = np.array([[1, 2, 0, 0]])
    context = PositionalEmbedding(vocab_size=10, d_model=8)(context_ids)
    layer = CrossAttention(**MHA)
    layer(_x((1, 3, 8)), context)
    assert np.all(layer.last_attn_scores.numpy()[..., 2:] == 0)


@pytest.mark.parametrize("cls", [GlobalSelfAttention, CausalSelfAttention])
def test_padding_is_masked_in_stacked_layers_tutorial_style(cls):
    # Chained like the tutorial (mask only via Keras masks): on Keras 3 the
    # tutorial's second layer attends to padding; ours must not.
    embed = PositionalEmbedding(vocab_size=10, d_model=8)
    layers = [cls(**MHA) for _ in range(3)]

    def run(ids):
        x = embed(ids)
        for layer in layers:
            x = layer(x, training=False)
        return keras.ops.convert_to_numpy(x)

    ids = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    padded = np.pad(ids, ((0, 0), (0, 5)))
    real = ids != 0
    np.testing.assert_allclose(run(ids)[real], run(padded)[:, :4][real], atol=1e-5)
