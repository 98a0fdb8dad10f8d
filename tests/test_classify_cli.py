"""`tftransformer classify ...` end to end on a tiny config."""

import io
import json
import sys

import pytest
from conftest import TINY_MODEL_FLAGS

from tftransformer.cli import main
from tftransformer.runs.paths import RunDir

TINY = [*TINY_MODEL_FLAGS, "--limit", "64", "--batch-size", "16"]


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "run"
    assert main(["classify", "train", "--out", str(out), "--epochs", "2", *TINY]) == 0
    return out


def test_train_writes_the_run_dir(classifier_run):
    run = RunDir(classifier_run)
    for path in (
        run.config,
        run.model,
        run.history,
        classifier_run / "labels.txt",
        classifier_run / "tokenizer" / "saved_model.pb",
        run.checkpoints / "backup" / "state.weights.h5",
        run.plots / "history.png",
    ):
        assert path.exists(), path  # fmt: skip
    history = json.loads(run.history.read_text())
    assert len(history["loss"]) == 2 and "val_micro_f1" in history and "val_auc" in history
    assert json.loads(run.config.read_text())["kind"] == "classifier"


def test_rerun_resumes_instead_of_retraining(classifier_run, capsys):
    assert main(["classify", "train", "--out", str(classifier_run), "--epochs", "3", *TINY]) == 0
    history = json.loads(RunDir(classifier_run).history.read_text())
    assert len(history["loss"]) == 3


def test_predict_one_line_per_text(classifier_run, capsys, monkeypatch):
    assert main(["classify", "predict", str(classifier_run), "I cook rice.", ""]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\nb\nc\n"))
    assert main(["classify", "predict", str(classifier_run)]) == 0
    assert capsys.readouterr().out.count("\n") == 3


def test_evaluate_and_unknown_labels(classifier_run, tmp_path, capsys):
    assert main(["classify", "evaluate", str(classifier_run), "--limit", "20"]) == 0
    assert "micro_f1" in capsys.readouterr().out
    (tmp_path / "test.tsv").write_text("some text\tfood|astrology\n", "utf-8")
    args = ["classify", "evaluate", str(classifier_run), "--data", f"tsv:{tmp_path}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "astrology" in err and err.count("\n") == 0


def test_export_layout(classifier_run):
    assert main(["classify", "export", str(classifier_run)]) == 0
    root = RunDir(classifier_run).export_root("classifier")
    assert (root / "1" / "saved_model.pb").exists()


@pytest.mark.slow
def test_benchmark_smoke(capsys):
    """The side-by-side runs CLI models and scikit-learn's, at 0.5 and auto (here only the
    Transformer: the other models train in their own tests, and each costs CI a minute).

    On `tfds:goemotions` (28 labels, multi-label) under `tfds.testing.mock_data`; the
    embedded tags take the same code path (the README shows that run's real output).
    """
    import tensorflow_datasets as tfds

    sys.path.insert(0, "benchmarks")
    try:
        import classify_baseline
    finally:
        sys.path.remove("benchmarks")
    with tfds.testing.mock_data(num_examples=60):
        classify_baseline.main(["--smoke", "--data", "tfds:goemotions", "--models", "transformer"])
    printed = capsys.readouterr().out
    assert printed.startswith("Device: ")
    rows = [line.split() for line in printed.splitlines()]
    table = {(" ".join(row[:-7]), row[-7]): [float(v) for v in row[-6:]] for row in rows
             if len(row) > 7 and row[-7] in ("0.5", "auto")}  # fmt: skip
    names = ["classify --model transformer", "sklearn TF-IDF + OneVsRest(LogReg)"]
    assert sorted(table) == sorted((n, t) for n in names for t in ("0.5", "auto"))
    for values in table.values():
        assert all(0 <= v <= 1 for v in values[:4]) and values[4] > 0 and values[5] > 0


def test_rerun_with_other_settings_is_refused(classifier_run, capsys):
    args = ["classify", "train", "--out", str(classifier_run), "--mode", "multiclass", *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json" in err and "mode='multilabel'" in err and err.count("\n") == 0


@pytest.fixture(scope="module", params=["linear", "lstm"])
def model_run(request, tmp_path_factory):
    """`classify train --model M --threshold auto` on a tiny config."""
    out = tmp_path_factory.mktemp(request.param) / "run"
    extra = ["--rnn-layers", "2", "--bidirectional", "--rnn-units", "8"]
    args = ["classify", "train", "--out", str(out), "--epochs", "2", "--model", request.param,
            "--threshold", "auto", *TINY, *(extra if request.param == "lstm" else [])]
    assert main(args) == 0
    return request.param, out


def test_other_models_train_with_auto_thresholds(model_run, capsys):
    import keras
    import numpy as np

    from tftransformer.classification.labelled import read_labelled
    from tftransformer.classification.metrics import f1_scores
    from tftransformer.runs.classify import load_classifier_run, predict_scores

    kind, out = model_run
    settings, tokenizer, vocab, model = load_classifier_run(out)
    assert settings.model == kind and settings.threshold == "auto"
    assert type(model).__name__ == {"linear": "LinearClassifier",
                                    "lstm": "RecurrentClassifier"}[kind]  # fmt: skip
    stored = json.loads((out / "thresholds.json").read_text())
    assert list(stored) == list(vocab.names)
    assert model.threshold == list(stored.values())  # what predict/evaluate/export use
    assert keras.models.load_model(RunDir(out).model).threshold == model.threshold
    # evaluate decides with the per-label thresholds.
    capsys.readouterr()
    assert main(["classify", "evaluate", str(out), "--split", "validation", "--limit", "64"]) == 0
    printed = capsys.readouterr().out
    examples = read_labelled("embedded", "validation", "en", 64)
    scores = predict_scores(model, tokenizer, [e.text for e in examples], settings.max_tokens)
    micro = f1_scores(vocab.multi_hot(examples) > 0, scores >= np.array(model.threshold,
                                                                        "float32"))["micro_f1"]
    assert f"micro_f1 {round(micro, 4)}" in printed
    # Chosen on that split: never below the 0.5 threshold's micro-F1 there.
    at_half = f1_scores(vocab.multi_hot(examples) > 0, scores >= 0.5)["micro_f1"]
    assert micro >= at_half


def test_other_models_resume_and_export(model_run, capsys):
    kind, out = model_run
    args = ["classify", "train", "--out", str(out), "--epochs", "2", "--model", kind,
            "--threshold", "auto", *TINY]
    if kind == "lstm":
        args += ["--rnn-layers", "2", "--bidirectional", "--rnn-units", "8"]
    before = (out / "history.json").read_text()
    assert main(args) == 0  # all epochs done: nothing retrained
    assert (out / "history.json").read_text() == before
    assert main(["classify", "export", str(out), "--version", "1"]) == 0
    assert (RunDir(out).export_root("classifier") / "1" / "saved_model.pb").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--threshold", "auto", "--mode", "multiclass"], "threshold 'auto' needs mode"),
        (["--threshold", "1.5"], "--threshold: must be 'auto' or between 0 and 1"),
        (["--model", "svm"], "--model: invalid choice"),
        (["--model", "linear", "--linear-c", "0"], "--linear-c must be positive"),
    ],
)
def test_bad_model_flags_are_named(flags, message, tmp_path, capsys):
    code = main(["classify", "train", "--out", str(tmp_path / "r"), *flags, *TINY])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
