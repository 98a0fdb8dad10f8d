"""`tftransformer classify ...` end to end on a tiny config."""

import io
import json
import sys

import pytest
from conftest import TINY_MODEL_FLAGS

from tftransformer.cli import main
from tftransformer.runs.rundir import RunDir

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
    sys.path.insert(0, "benchmarks")
    try:
        import classify_baseline
    finally:
        sys.path.remove("benchmarks")
    classify_baseline.main(["--smoke"])
    out = capsys.readouterr().out
    for name in ("TransformerClassifier", "LSTM", "TF-IDF"):
        assert name in out


def test_rerun_with_other_settings_is_refused(classifier_run, capsys):
    args = ["classify", "train", "--out", str(classifier_run), "--mode", "multiclass", *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json" in err and "mode='multilabel'" in err and err.count("\n") == 0
