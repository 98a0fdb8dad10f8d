import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, TINY_VOCAB, random_ids

from tftransformer import Transformer, TransformerConfig, masked_accuracy, masked_loss
from tftransformer.training import tutorial_optimizer


def tiny_model(**overrides):
    return Transformer(**{**TINY, **TINY_VOCAB, **overrides})


def test_tutorial_parameter_count():
    # The tutorial's figure: 10,184,162 with the published converter's vocabs.
    model = Transformer.from_hparams(
        TransformerConfig(), input_vocab_size=7765, target_vocab_size=7010
    )
    model.build(((None, None), (None, None)))
    assert model.count_params() == 10_184_162
    assert model.encoder.count_params() == 3_632_768
    assert model.decoder.count_params() == 5_647_104
    assert model.final_layer.count_params() == 904_290


def test_build_creates_the_same_weights_as_a_call(tiny_batch):
    (pt, en), _ = tiny_batch
    built = tiny_model()
    built.build((pt.shape, en.shape))
    called = tiny_model()
    called((pt, en))
    assert [w.shape for w in built.weights] == [w.shape for w in called.weights]


def test_call_shapes_and_attention(tiny_batch):
    (pt, en), _ = tiny_batch
    model = tiny_model()
    logits = model((pt, en))
    assert logits.shape == (4, 6, TINY_VOCAB["target_vocab_size"])
    assert getattr(logits, "_keras_mask", None) is None
    assert model.decoder.dec_layers[-1].last_attn_scores.shape == (4, 2, 6, 7)


@pytest.mark.parametrize("cast", [np.int32, np.int64, tf.constant])
def test_vocab_sizes_as_numpy_or_tensor_ints(cast):
    model = Transformer(**TINY, input_vocab_size=cast(37), target_vocab_size=cast(29))
    assert (model.input_vocab_size, model.target_vocab_size) == (37, 29)
    assert model.get_config()["input_vocab_size"] == 37


def test_padding_changes_no_real_output(rng):
    model = tiny_model(num_layers=3)
    pt = random_ids(rng, 37, [6, 2, 4])
    en = random_ids(rng, 29, [3, 5, 1])
    pt_padded, en_padded = np.pad(pt, ((0, 0), (0, 7))), np.pad(en, ((0, 0), (0, 3)))
    real = en != 0

    def run(pt, en):
        encoded = model.encoder(pt, training=False).numpy()
        logits = model((pt, en), training=False).numpy()
        scores = [layer.last_attn_scores.numpy() for layer in model.decoder.dec_layers]
        return encoded, logits, scores

    encoded, logits, _ = run(pt, en)
    encoded_p, logits_p, scores_p = run(pt_padded, en_padded)
    np.testing.assert_allclose(encoded[pt != 0], encoded_p[:, :6][pt != 0], atol=1e-5)
    np.testing.assert_allclose(logits[real], logits_p[:, :5][real], atol=1e-5)
    for scores in scores_p:  # zero weight on padded context in every layer
        pads = np.broadcast_to((pt_padded == 0)[:, None, None, :], scores.shape)
        assert np.all(scores[pads] == 0)


def test_keras_save_load_round_trip(tiny_batch, tmp_path):
    (pt, en), labels = tiny_batch
    # One layer: each `fit` below traces a whole training step (the optimizer's update
    # of every variable included), which dominates this test; a layer list of one
    # round-trips as a list all the same.
    model = tiny_model(num_layers=1)
    model.compile(loss=masked_loss, optimizer=tutorial_optimizer(16), metrics=[masked_accuracy])
    model.fit((pt, en), labels, epochs=1, verbose=0)
    path = tmp_path / "transformer.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, Transformer)
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(
        model((pt, en), training=False).numpy(), restored((pt, en), training=False).numpy()
    )
    schedule = restored.optimizer._learning_rate
    assert schedule.get_config() == {"d_model": 16, "warmup_steps": 4000}
    assert int(restored.optimizer.iterations.numpy()) == 1
    # Training goes on from the restored optimizer state.
    restored.fit((pt, en), labels, epochs=1, verbose=0)
    assert int(restored.optimizer.iterations.numpy()) == 2


def test_fit_on_tf_data_reduces_the_loss(rng):
    # A learnable toy task: the target repeats the source, framed by 1 ... 2.
    pt = random_ids(rng, 29, [6, 5, 4, 3] * 4)
    lengths = (pt != 0).sum(1)
    en = np.zeros((16, 8), "int64")
    for row, length in enumerate(lengths):
        en[row, : length + 2] = [1, *pt[row, :length], 2]
    dataset = tf.data.Dataset.from_tensor_slices(((pt, en[:, :-1]), en[:, 1:])).batch(8)
    model = tiny_model(dropout_rate=0.0, num_layers=1)
    model.compile(
        loss=masked_loss, optimizer=keras.optimizers.Adam(3e-3), metrics=[masked_accuracy]
    )
    history = model.fit(dataset, epochs=20, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0]


def test_summary_prints_the_tutorial_total(capsys):
    model = Transformer.from_hparams(
        TransformerConfig(), input_vocab_size=7765, target_vocab_size=7010
    )
    model.build(((None, None), (None, None)))
    model.summary()
    assert "10,184,162" in capsys.readouterr().out


def test_first_fit_traces_its_training_step_once(tiny_batch):
    # BuiltBeforeTracing: model, optimizer slots and compiled metrics exist before the
    # step is traced, so `tf.function` has no variables to create and traces it once
    # (Keras' deferred build on TensorFlow traced it twice, and slowly).
    (pt, en), labels = tiny_batch
    dataset = tf.data.Dataset.from_tensor_slices(((pt, en), labels)).batch(2)
    model = tiny_model(num_layers=1)
    model.compile(loss=masked_loss, optimizer=tutorial_optimizer(16), metrics=[masked_accuracy])
    traced = []  # the Python steps run only while a graph is traced

    def counted(step, name):
        return lambda data: (traced.append(name), step(data))[1]

    model.train_step = counted(model.train_step, "train")
    model.test_step = counted(model.test_step, "test")
    model.fit(dataset, epochs=2, verbose=0, validation_data=dataset)
    assert traced == ["train", "test"]
    assert model.optimizer.built and int(model.optimizer.iterations.numpy()) == 4


@pytest.mark.parametrize("rate", [0.0, 0.3])
def test_fit_runs_dropout_and_evaluate_does_not(rng, rate):
    # With a zero learning rate, fit's loss is the forward pass's: it equals evaluate's
    # exactly without dropout, and differs once dropout runs (Keras 3's fit passes
    # training=True only to a call that declares it).
    keras.utils.set_random_seed(0)
    model = tiny_model(dropout_rate=rate)
    model.compile(loss=masked_loss, optimizer=keras.optimizers.SGD(0.0))
    context = random_ids(rng, TINY_VOCAB["input_vocab_size"], [7] * 8)
    x = random_ids(rng, TINY_VOCAB["target_vocab_size"], [6] * 8)
    y = random_ids(rng, TINY_VOCAB["target_vocab_size"], [6] * 8)
    fitted = model.fit((context, x), y, batch_size=8, verbose=0).history["loss"][0]
    evaluated = model.evaluate((context, x), y, batch_size=8, verbose=0)
    if rate:
        assert abs(fitted - evaluated) > 1e-3
    else:
        assert fitted == pytest.approx(evaluated, abs=1e-6)
