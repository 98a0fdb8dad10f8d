"""Which weights a run keeps (`runs.keep`): by validation chrF when scored, else by loss."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tftransformer.runs.backup import BEST_WEIGHTS
from tftransformer.runs.keep import keep_best
from tftransformer.runs.paths import RunDir


def _kernel(model) -> float:
    return float(model.get_weights()[0][0, 0])


@pytest.fixture
def three_candidates(tmp_path):
    """A run whose last weights are all 3s, best epoch (1) all 1s, average of epochs 1-3 all 2s.

    The validation targets are made by all-2 weights: the average has the lowest loss.
    """
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    run = RunDir(tmp_path)
    run.checkpoints.mkdir(parents=True)
    for epoch in (1, 2, 3):
        model.set_weights([np.full((3, 2), float(epoch), "float32"), np.zeros(2, "float32")])
        model.save_weights(run.checkpoints / f"epoch-{epoch:03d}.weights.h5")
        if epoch == 1:
            model.save_weights(run.checkpoints / BEST_WEIGHTS)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    val = tf.data.Dataset.from_tensor_slices((x, x @ np.full((3, 2), 2.0, "float32"))).batch(4)
    history = {"val_loss": [0.5, 0.7, 0.9]}
    return model, run, history, val


def test_unscored_keeps_the_lowest_validation_loss(three_candidates):
    model, run, history, val = three_candidates
    lines = []
    record = keep_best(model, run, history, val, log=lines.append)
    assert record["kept"] == "average of epochs 1-3" and _kernel(model) == pytest.approx(2.0)
    assert record["chosen_by"] == "validation loss" and "val_chrf" not in record
    assert set(record["val_loss"]) == {"last epoch (3)", "best epoch (1)", "average of epochs 1-3"}
    assert lines[0].startswith("Kept the average of epochs 1-3: validation loss 0.0000 (")


def test_scored_keeps_the_highest_score_not_the_lowest_loss(three_candidates):
    model, run, history, val = three_candidates
    seen = []

    def score():  # prefers the kernel closest to 1: the best epoch's weights
        seen.append(_kernel(model))
        return 50.0 - abs(_kernel(model) - 1.0)

    lines = []
    record = keep_best(model, run, history, val, log=lines.append, score=score)
    assert sorted(seen) == pytest.approx([1.0, 2.0, 3.0])  # each candidate scored once
    assert record["kept"] == "best epoch (1)" and _kernel(model) == pytest.approx(1.0)
    assert record["chosen_by"] == "validation chrF"
    assert record["val_chrf"]["best epoch (1)"] == pytest.approx(50.0)
    assert lines[0].startswith("Kept the best epoch (1): validation chrF 50.00, loss ")
    on_disk = json.loads((run.path / "kept.json").read_text())
    assert on_disk["kept"] == "best epoch (1)" and on_disk["val_chrf"] == record["val_chrf"]


def test_one_candidate_is_kept_without_scoring(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    x = np.ones((4, 3), "float32")
    val = tf.data.Dataset.from_tensor_slices((x, x[:, :2])).batch(4)

    def score():
        raise AssertionError("one candidate needs no score")

    record = keep_best(model, RunDir(tmp_path), {"val_loss": [1.0]}, val, log=lambda _: None,
                       score=score)  # fmt: skip
    assert record["kept"] == "last epoch (1)" and record["chosen_by"] == "validation loss"


def test_validation_chrf_scores_the_weights_the_model_holds_at_each_call(tiny_run):
    from tftransformer.runs.run import Run
    from tftransformer.runs.translate import evaluate_run, validation_chrf

    run = Run(tiny_run)
    score = validation_chrf(run.model, run.tokenizers, run.settings)
    expected = evaluate_run(run, split="validation", limit=run.settings.limit)[0]["chrf"]
    assert expected > 0 and score() == pytest.approx(expected)
    trained = run.model.get_weights()
    # Only [END]'s output bias raised: every translation is empty, chrF 0.
    end = int(run.tokenizers.en.tokenize(tf.constant([""]))[0][-1])
    bias = run.model.final_layer.bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[end]], [1e4]))
    assert score() == 0.0
    run.model.set_weights(trained)
    assert score() == pytest.approx(expected)


def test_validation_chrf_prepares_nothing_before_its_first_call(tiny_run, monkeypatch):
    # `train` makes the scorer for every run; one with a single candidate never calls it
    # and must not pay for reading the split and building a translator.
    from tftransformer.runs import translate
    from tftransformer.runs.run import Run

    run = Run(tiny_run)
    built = []
    real = translate._split_scorer
    monkeypatch.setattr(translate, "_split_scorer",
                        lambda *a, **k: built.append(1) or real(*a, **k))  # fmt: skip
    score = translate.validation_chrf(run.model, run.tokenizers, run.settings)
    assert built == []
    first = score()
    assert score() == pytest.approx(first) and built == [1]  # prepared once, reused
