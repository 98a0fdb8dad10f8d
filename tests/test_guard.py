"""The collapse guard: a collapsing or diverging run is named and stopped; a healthy one is not."""

import json

import numpy as np
import pytest
from conftest import TINY_HPARAMS

from tftransformer._files import RunError
from tftransformer.config import TransformerConfig
from tftransformer.runs.guard import (
    EXPLODE_FACTOR,
    NORM_WARMUP,
    CollapseGuard,
    NormTrackingAdam,
    unigram_accuracy,
)
from tftransformer.runs.train import TrainSettings, train_run


def guard(unigram=0.1, history=None):
    return CollapseGuard(unigram, history=history, log=lambda _line: None)


def test_accuracy_falling_to_the_unigram_level_fires_and_a_slow_start_does_not():
    # The run: 0.216 at step 56, then 0.023 (the most frequent piece everywhere).
    g = guard(unigram=0.09)
    assert g.check_epoch({"val_masked_accuracy": 0.05}) is None  # still learning, not a fall
    assert g.check_epoch({"val_masked_accuracy": 0.216}) is None
    line = g.check_epoch({"val_masked_accuracy": 0.023})
    assert line.startswith("validation accuracy fell to 0.023 (best 0.216")
    assert "0.090" in line


def test_loss_rising_on_both_sides_fires_but_overfitting_does_not():
    falling_then_rising = [(3.0, 3.1), (2.5, 2.9), (2.6, 3.0), (2.7, 3.2), (2.9, 3.3)]
    g = guard()
    lines = [g.check_epoch({"loss": a, "val_loss": b}) for a, b in falling_then_rising]
    assert lines[:4] == [None] * 4
    assert lines[4].startswith("training and validation loss rose at each of the last 3")
    overfitting = [(3.0, 3.1), (2.5, 2.9), (2.2, 3.0), (2.0, 3.2), (1.8, 3.4), (1.6, 3.6)]
    g = guard()
    assert all(g.check_epoch({"loss": a, "val_loss": b}) is None for a, b in overfitting)


def test_a_resumed_guard_keeps_the_earlier_epochs_trend():
    history = {"loss": [3.0, 3.1, 3.2], "val_loss": [3.0, 3.1, 3.2],
               "val_masked_accuracy": [0.3, 0.3, 0.3]}  # fmt: skip
    g = guard(history=history)
    assert g.check_epoch({"loss": 3.3, "val_loss": 3.3, "val_masked_accuracy": 0.3})
    assert guard(history=history).check_epoch({"val_masked_accuracy": 0.1}).startswith(
        "validation accuracy fell"
    )


def test_gradient_norm_explosion_fires_after_the_window_fills():
    g = guard()
    rng = np.random.default_rng(0)
    assert g.check_norm(1000.0) is None  # no history yet: nothing to compare with
    g = guard()
    for norm in rng.uniform(0.5, 1.5, size=NORM_WARMUP):
        assert g.check_norm(float(norm)) is None
    assert g.check_norm(0.9 * EXPLODE_FACTOR) is None  # a spike, but below the factor
    line = g.check_norm(100.0 * EXPLODE_FACTOR)
    assert line.startswith("the gradient norm exploded to 2.5e+03")
    assert guard().check_norm(float("nan")) == "the gradient norm became nan"


def test_norm_tracking_adam_updates_exactly_as_adam_and_keeps_adams_variables():
    import keras

    def step(optimizer):
        weights = keras.Variable(np.array([1.0, -2.0, 3.0], dtype="float32"))
        optimizer.build([weights])
        optimizer.apply([np.array([0.3, 0.4, 0.0], dtype="float32")], [weights])
        return weights.numpy(), len(optimizer.variables)

    ours, n_ours = step(NormTrackingAdam(1e-2, beta_1=0.9, beta_2=0.98, epsilon=1e-9))
    theirs, n_theirs = step(keras.optimizers.Adam(1e-2, beta_1=0.9, beta_2=0.98, epsilon=1e-9))
    np.testing.assert_array_equal(ours, theirs)
    assert n_ours == n_theirs  # backups of plain-Adam runs still load
    tracking = NormTrackingAdam(1e-2)
    weights = keras.Variable(np.zeros(2, dtype="float32"))
    tracking.build([weights])
    tracking.apply([np.array([3.0, 4.0], dtype="float32")], [weights])
    assert float(tracking.gradient_norm.numpy()) == pytest.approx(5.0)


def test_unigram_accuracy_is_the_most_frequent_labels_share():
    labels = np.array([[5, 5, 7, 0], [5, 9, 0, 0]])
    assert unigram_accuracy([((None, None), labels)]) == pytest.approx(3 / 5)


TINY = dict(batch_size=8, limit=24, max_tokens=24, hparams=TransformerConfig(**TINY_HPARAMS))


def test_a_run_driven_to_collapse_is_named_and_stopped(tmp_path):
    # A peak rate no Adam-trained Transformer survives, reached slowly enough that the model
    # first learns something (12 steps an epoch; measured: accuracy 0.13, then the unigram
    # level by step 72). Whichever sign fires first, the guard must name it and stop.
    import keras

    class CountSteps(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch, logs=None):
            CountSteps.steps += 1

    printed = []
    settings = TrainSettings(epochs=10, peak_rate=0.5, warmup_steps=120,
                             **{**TINY, "limit": 96})  # fmt: skip
    with pytest.raises(RunError) as error:
        train_run(tmp_path / "run", settings, verbose=0, log=printed.append,
                  extra_callbacks=[CountSteps()])  # fmt: skip
    message = str(error.value)
    # Training stopped where the guard fired: not one step more.
    fired_at = int(message.split(" at optimizer step ")[1].split(";")[0])
    assert CountSteps.steps == fired_at
    assert message.startswith("training collapsed: ") and " at optimizer step " in message
    assert "rerun with a lower --peak-rate (this run's: 0.5)" in message
    assert sum(line.startswith("training collapsed: ") for line in printed) == 1
    history_file = tmp_path / "run" / "history.json"
    epochs_recorded = len(json.loads(history_file.read_text())["loss"]) if (
        history_file.exists()) else 0  # fmt: skip
    assert epochs_recorded < 10  # it did not train on to the end
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_healthy_tiny_run_stays_silent(tiny_run_printed):
    assert "collapsed" not in tiny_run_printed
    assert "Kept the " in tiny_run_printed


def test_a_run_loads_its_saved_optimizer_in_a_fresh_process(tiny_run):
    # model.keras names NormTrackingAdam and RunSchedule: loading a run for translation
    # (which imports no training code) must know them.
    from fresh_process import python_json

    code = """
import json, sys
from tftransformer.runs.run import Run
run = Run(sys.argv[1])
config = run.model.optimizer.get_config()
print(json.dumps([type(run.model.optimizer).__name__, config["learning_rate"]["class_name"]]))
"""
    assert python_json(code, str(tiny_run)) == ["NormTrackingAdam", "RunSchedule"]
