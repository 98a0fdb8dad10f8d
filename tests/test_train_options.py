"""Issue 7's training options: label smoothing, mixed precision, option checks, averaging."""

import json
import shutil

import keras
import numpy as np
import pytest
from conftest import TINY_HPARAMS

from tftransformer.cli import main
from tftransformer.config import TransformerConfig
from tftransformer.runs.average import average_run, epoch_checkpoints
from tftransformer.runs.paths import RunDir, RunError
from tftransformer.runs.run import Run
from tftransformer.runs.train import TrainSettings, build_model, check_same_run, train_run
from tftransformer.training import MaskedLoss, masked_loss

TINY_HP = TransformerConfig(**TINY_HPARAMS, dropout_rate=0.0)


class _Vocab:
    def __init__(self, size):
        self.size = size

    def get_vocab_size(self):
        return self.size


class _Sizes:
    """Stands in for the tokenizers where `build_model` only needs vocabulary sizes."""

    pt, en = _Vocab(37), _Vocab(29)


def _labels_and_logits(rng):
    labels = np.array([[3, 7, 1, 0, 0], [5, 2, 9, 4, 8]])
    logits = rng.normal(size=(2, 5, 11)).astype("float32")
    return labels, logits


def test_masked_loss_without_smoothing_equals_the_tutorials(rng):
    labels, logits = _labels_and_logits(rng)
    np.testing.assert_allclose(
        float(MaskedLoss()(labels, logits)), float(masked_loss(labels, logits)), rtol=1e-6
    )


def test_label_smoothing_is_the_papers_smoothed_cross_entropy(rng):
    labels, logits = _labels_and_logits(rng)
    eps, vocab = 0.1, logits.shape[-1]
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = np.eye(vocab)[labels] * (1 - eps) + eps / vocab  # smoothed one-hot
    per_token = -(target * log_p).sum(-1)
    mask = labels != 0
    expected = per_token[mask].mean()
    got = float(MaskedLoss(label_smoothing=eps)(labels, logits))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got > float(masked_loss(labels, logits)) - 1.0  # sanity: same scale


def test_label_smoothing_ignores_pad_positions(rng):
    labels, logits = _labels_and_logits(rng)
    changed = logits.copy()
    changed[0, 3:] += rng.normal(size=changed[0, 3:].shape).astype("float32") * 5
    loss = MaskedLoss(label_smoothing=0.1)
    assert float(loss(labels, logits)) == pytest.approx(float(loss(labels, changed)), rel=1e-6)


def test_masked_loss_round_trips_through_keras_serialization():
    loss = MaskedLoss(label_smoothing=0.2)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(again, MaskedLoss) and again.label_smoothing == 0.2


def _copy_task(rng):
    """Target = source, shifted: learnable quickly by a tiny model."""
    src = rng.integers(3, 29, size=(16, 6))
    en = np.concatenate([np.full((16, 1), 1), src, np.full((16, 1), 2)], axis=1)
    return (src, en[:, :-1]), en[:, 1:]


def test_bf16_training_reduces_the_loss_with_float32_logits(rng):
    # The tutorial's schedule: its high early rate learns the copy task in 60 steps.
    settings = TrainSettings(hparams=TINY_HP, warmup_steps=10, mixed_precision="bf16",
                             schedule="tutorial")  # fmt: skip
    model = build_model(settings, _Sizes)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    assert model.encoder.compute_dtype == "bfloat16"
    assert model.final_layer.compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    x, y = _copy_task(rng)
    assert model((x[0][:2], x[1][:2])).dtype == "float32"
    first = float(model.evaluate(x, y, verbose=0)[0])
    model.fit(x, y, batch_size=16, epochs=60, verbose=0, shuffle=False)
    last = float(model.evaluate(x, y, verbose=0)[0])
    assert np.isfinite(last) and last < 0.5 * first, (first, last)


def test_fp16_uses_loss_scaling_and_round_trips(rng, tmp_path):
    settings = TrainSettings(hparams=TINY_HP, warmup_steps=10, mixed_precision="fp16")
    model = build_model(settings, _Sizes)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.encoder.compute_dtype == "float16"
    x, y = _copy_task(rng)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tutorial_settings_build_the_tutorials_training(rng):
    tutorial = TrainSettings(hparams=TINY_HP, label_smoothing=0.0, mixed_precision=None)
    model = build_model(tutorial, _Sizes)
    assert model.loss is masked_loss and model.jit_compile is False
    assert model.encoder.compute_dtype == "float32"
    # The default recipe smooths labels (0.1), through the masked smoothed loss.
    smoothed = build_model(TrainSettings(hparams=TINY_HP), _Sizes).loss
    assert isinstance(smoothed, MaskedLoss) and smoothed.label_smoothing == 0.1


@pytest.mark.parametrize("flags, dtype", [({"avx512_bf16"}, "bfloat16"), ({"avx2"}, "float32")])
def test_the_default_precision_is_what_auto_picks_for_the_device(flags, dtype, monkeypatch):
    from tftransformer.runs.precision import Device

    device = Device("cpu", "test CPU", cpu_flags=frozenset(flags))
    monkeypatch.setattr("tftransformer.runs.train.training_device", lambda: device)
    model = build_model(TrainSettings(hparams=TINY_HP), _Sizes)
    assert model.encoder.compute_dtype == dtype
    assert model.final_layer.compute_dtype == "float32"  # the logits, in either case
    assert all(v.dtype == "float32" for v in model.trainable_variables)


def test_old_config_without_the_new_options_still_loads():
    old = TrainSettings().to_json()
    for name in ("tokens_per_batch", "mixed_precision", "jit_compile", "label_smoothing",
                 "strategy"):  # fmt: skip
        old.pop(name)
    # A run from before label smoothing was a setting trained without it (0, today 0.1),
    # and one from before mixed precision in float32 (None; today "auto").
    assert TrainSettings.from_json(old) == TrainSettings(label_smoothing=0.0,
                                                         mixed_precision=None)  # fmt: skip
    assert TrainSettings().mixed_precision == "auto"
    # A run from before the `tokenizer` setting was WordPiece, the default then (it is
    # SentencePiece now): it still decodes with WordPiece, and a rerun must keep it.
    old.pop("tokenizer")
    assert TrainSettings.from_json(old).tokenizer == "wordpiece"
    assert TrainSettings().tokenizer == "sentencepiece"


def test_resume_may_change_strategy_and_jit_but_not_precision():
    stored = TrainSettings()
    check_same_run(stored, TrainSettings(strategy="mirrored", jit_compile=True), "c.json")
    with pytest.raises(RunError, match="mixed_precision='auto', not 'bf16'"):
        check_same_run(stored, TrainSettings(mixed_precision="bf16"), "c.json")
    # A run trained before "auto" became the default (float32) refuses the new default.
    with pytest.raises(RunError, match="mixed_precision=None, not 'auto'"):
        check_same_run(TrainSettings(mixed_precision=None), stored, "c.json")
    with pytest.raises(RunError, match="label_smoothing"):
        check_same_run(stored, TrainSettings(label_smoothing=0.2), "c.json")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--strategy", "multiworker"], "TF_CONFIG"),
        (["--tokens-per-batch", "512"], "--tokens-per-batch 512 needs --bucket"),
        (["--mixed-precision", "fp8"], "invalid choice: 'fp8'"),
        (["--label-smoothing", "1.5"], "--label-smoothing: expected a number in [0, 1), got '1.5'"),
        (["--strategy", "tpu"], "invalid choice: 'tpu'"),
    ],
)
def test_bad_train_options_are_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--limit", "4", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and err.count("\n") == 0
    assert not (out / "config.json").exists()  # refused before anything was written


def test_bad_tf_config_is_named(monkeypatch):
    from tftransformer.runs.distribute import make_strategy

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"index": 3}}')
    with pytest.raises(RunError, match="TF_CONFIG=.*not a usable cluster spec"):
        make_strategy("multiworker")


@pytest.fixture(scope="module")
def options_run(tmp_path_factory):
    """A tiny run trained with the opt-in options: bucketed token budget, bf16, smoothing."""
    from tftransformer.runs.precision import Device

    out = tmp_path_factory.mktemp("options") / "run"
    settings = TrainSettings(
        epochs=3, batch_size=8, limit=24, warmup_steps=10, max_tokens=24, hparams=TINY_HP,
        bucket=True, tokens_per_batch=160, mixed_precision="bf16", label_smoothing=0.1,
    )  # fmt: skip
    # bf16 is refused on CPUs without native bfloat16 (runs/precision.py); CI's may lack
    # it, so the device is one that has it. The training itself runs the same either way.
    bf16_cpu = Device("cpu", "test CPU", cpu_flags=frozenset({"avx512_bf16"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tftransformer.runs.train.training_device", lambda: bf16_cpu)
        train_run(out, settings, verbose=0)
    return out


def test_a_run_with_the_options_records_them_and_loads(options_run, capsys):
    config = json.loads((options_run / "config.json").read_text())
    assert config["mixed_precision"] == "bf16" and config["label_smoothing"] == 0.1
    assert config["bucket"] is True and config["tokens_per_batch"] == 160
    model = Run(options_run).model
    assert isinstance(model.loss, MaskedLoss) and model.loss.label_smoothing == 0.1
    assert main(["translate", str(options_run), "Bom dia.", "--max-length", "4"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


def _checkpoint_weights(model, path):
    model.load_weights(path)
    return [np.array(w) for w in model.get_weights()]


def test_averaging_identical_checkpoints_returns_the_same_weights(options_run, tmp_path):
    run = tmp_path / "same"
    shutil.copytree(options_run, run)
    checkpoints = epoch_checkpoints(RunDir(run))
    assert [p.name for p in checkpoints] == [f"epoch-00{i}.weights.h5" for i in (1, 2, 3)]
    for path in checkpoints[:-1]:
        shutil.copy(checkpoints[-1], path)
    out = average_run(run, 3)
    assert out == run / "averaged-last-3"
    source = Run(run).model
    expected = _checkpoint_weights(source, checkpoints[-1])
    averaged = Run(out).model
    got = averaged.get_weights()
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_average_of_the_last_two_is_their_mean_and_evaluates(options_run, capsys):
    assert main(["average", str(options_run), "--last", "2"]) == 0
    out = options_run / "averaged-last-2"
    assert capsys.readouterr().out.strip() == str(out)
    model = Run(options_run).model
    paths = epoch_checkpoints(RunDir(options_run))[-2:]
    first, second = (_checkpoint_weights(model, p) for p in paths)
    assert any(not np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    averaged = Run(out).model
    for got, a, b in zip(averaged.get_weights(), first, second, strict=True):
        np.testing.assert_allclose(got, (a.astype("float64") + b) / 2, rtol=1e-6, atol=1e-7)
    meta = json.loads((out / "averaged.json").read_text())
    assert meta["checkpoints"] == ["epoch-002.weights.h5", "epoch-003.weights.h5"]
    assert main(["evaluate", str(out), "--limit", "3"]) == 0
    assert "BLEU" in capsys.readouterr().out
    # Never overwrites: a second average to the same place is refused, one line.
    assert main(["average", str(options_run), "--last", "2"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--last", "0"], "argument --last: expected a positive integer, got '0'"),
        (["--last", "9"], "--last 9: "),
        (["--last", "x"], "argument --last: expected a positive integer, got 'x'"),
    ],
)
def test_average_bad_input_is_one_line_exit_2(options_run, argv, needle, capsys):
    before = (options_run / "model.keras").read_bytes()
    assert main(["average", str(options_run), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0 and "Traceback" not in err
    assert (options_run / "model.keras").read_bytes() == before
    if argv[1] == "9":
        assert "has only 3 epoch checkpoint(s)" in err


def test_average_of_a_missing_run_is_one_line(tmp_path, capsys):
    assert main(["average", str(tmp_path / "nope"), "--last", "2"]) == 2
    assert "no such run directory" in capsys.readouterr().err
