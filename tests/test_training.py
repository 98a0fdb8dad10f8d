import keras
import numpy as np
import pytest

from tftransformer import CustomSchedule, masked_accuracy, masked_loss


def test_schedule_matches_the_tutorial_figures():
    lr = CustomSchedule(128)
    steps = np.array([0, 1, 4000, 39999], dtype="float32")
    values = keras.ops.convert_to_numpy(lr(steps))
    assert values[0] == 0.0
    np.testing.assert_allclose(values[1:], [3.4938563e-07, 0.0013975425, 0.00044194728], rtol=1e-6)


def test_schedule_config_round_trip():
    lr = CustomSchedule(np.int64(256), warmup_steps=100)
    config = keras.saving.serialize_keras_object(lr)
    revived = keras.saving.deserialize_keras_object(config)
    assert isinstance(revived, CustomSchedule)
    assert revived.get_config() == {"d_model": 256, "warmup_steps": 100}
    assert float(revived(50)) == pytest.approx(float(lr(50)))


def _hand_log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_masked_loss_and_accuracy_against_a_hand_computation():
    rng = np.random.default_rng(0)
    labels = np.array([[3, 1, 0, 0], [2, 2, 4, 0]])
    logits = rng.normal(size=(2, 4, 5)).astype("float32")
    logits[0, 0, 3] = 9.0  # right
    logits[1, 1, 0] = 9.0  # wrong
    logits[0, 2, 0] = 9.0  # a pad position: must not count
    log_probs = _hand_log_softmax(logits.astype("float64"))
    real = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    expected_loss = -np.mean([log_probs[b, t, labels[b, t]] for b, t in real])
    expected_acc = np.mean([logits[b, t].argmax() == labels[b, t] for b, t in real])
    assert float(masked_loss(labels, logits)) == pytest.approx(expected_loss, rel=1e-5)
    assert float(masked_accuracy(labels, logits)) == pytest.approx(expected_acc)


def test_pad_labels_change_nothing():
    rng = np.random.default_rng(1)
    labels = np.array([[3, 1, 0], [2, 0, 0]])
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    other = logits.copy()
    other[labels == 0] = rng.normal(size=other[labels == 0].shape)
    assert float(masked_loss(labels, logits)) == pytest.approx(float(masked_loss(labels, other)))
    assert float(masked_accuracy(labels, logits)) == float(masked_accuracy(labels, other))


def test_all_padding_gives_zero_not_nan():
    labels = np.zeros((2, 3), "int64")
    logits = np.zeros((2, 3, 5), "float32")
    assert float(masked_loss(labels, logits)) == 0.0
    assert float(masked_accuracy(labels, logits)) == 0.0


def test_schedule_keeps_a_fractional_warmup_as_the_tutorial_does():
    lr = CustomSchedule(128, warmup_steps=4000.5)
    assert lr.get_config() == {"d_model": 128, "warmup_steps": 4000.5}
    step = 100.0
    expected = 128**-0.5 * min(step**-0.5, step * 4000.5**-1.5)
    assert float(lr(step)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        CustomSchedule(128, warmup_steps="soon")
