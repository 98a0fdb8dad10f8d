"""Corrupt or hostile files (issue 9).

Proves: a TSV/CSV with mixed encodings, a truncated checkpoint or model, a run
dir missing files, and a config.json (or labels.txt, backup meta.json) with
wrong types or bad bytes each fail with exit status 2 and one line naming the
file and the problem, and leave every file already in the run dir as it was.
"""

import hashlib
import json
import shutil

import pytest
from conftest import TINY_TRAIN_FLAGS

from tftransformer.cli import main
from tftransformer.runs.paths import RunDir


def snapshot(root):
    """{relative path: sha256} of every file under `root`."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, ignore=shutil.ignore_patterns("export"))
    return out


@pytest.fixture
def classifier_copy(tiny_classifier_run, tmp_path):
    out = tmp_path / "cls"
    shutil.copytree(tiny_classifier_run, out, ignore=shutil.ignore_patterns("export"))
    return out


def fails_cleanly(argv, capsys, *needles, root=None):
    """`main(argv)` exits 2 with one stderr line holding every needle; `root` unchanged."""
    before = snapshot(root) if root else None
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for needle in needles:
        assert str(needle) in err, (needle, err)
    if root:
        assert snapshot(root) == before, "files in the run dir changed"
    return err


TRAIN_FLAGS = TINY_TRAIN_FLAGS


# --- corpus files ------------------------------------------------------------------------


def _mixed_encoding_tsv(path):
    lines = ["Bom dia.\tGood morning.", "Obrigado.\tThank you."]
    data = "\n".join(lines).encode("utf-8") + "\nA lição é fácil.\tThe lesson is easy.\n".encode(
        "latin-1"
    )
    path.write_bytes(data)
    return path


def test_train_on_a_tsv_with_mixed_encodings_names_file_and_line(tmp_path, capsys):
    tsv = _mixed_encoding_tsv(tmp_path / "mixed.tsv")
    out = tmp_path / "new_run"
    fails_cleanly(["train", "--corpus", f"tsv:{tsv}", "--out", out, *TRAIN_FLAGS], capsys,
                  f"{tsv}:3: invalid UTF-8 (byte 0xe7 at column 5)")  # fmt: skip


def test_evaluate_on_a_bad_tsv_leaves_the_run_alone(run_copy, tmp_path, capsys):
    tsv = _mixed_encoding_tsv(tmp_path / "mixed.tsv")
    fails_cleanly(["evaluate", run_copy, "--corpus", f"tsv:{tsv}"], capsys,
                  f"{tsv}:3: invalid UTF-8", root=run_copy)  # fmt: skip


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"texto bom\tfood\ntexto \xff ruim\tfood\n", ":2: invalid UTF-8"),
        (b"so text, no tab\n", ":1: expected 2 fields (text, labels), got 1"),
        (b"some text\t\n", ":1: no label"),
    ],
)
def test_classify_train_on_bad_tsv_names_file_and_line(tmp_path, capsys, content, needle):
    tsv = tmp_path / "bad.tsv"
    tsv.write_bytes(content)
    fails_cleanly(["classify", "train", "--data", f"tsv:{tsv}", "--out", tmp_path / "c"],
                  capsys, f"{tsv}{needle}")  # fmt: skip


def test_classify_evaluate_on_mixed_encoding_csv(classifier_copy, tmp_path, capsys):
    csv = tmp_path / "test.csv"
    csv.write_bytes(b'"I cook rice",food\n"Caf\xe9 com leite",food\n')
    fails_cleanly(["classify", "evaluate", classifier_copy, "--data", f"csv:{csv}"], capsys,
                  f"{csv}:2: invalid UTF-8", root=classifier_copy)  # fmt: skip


# --- truncated or corrupt run files --------------------------------------------------------


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_resume_from_a_truncated_backup_names_it_and_keeps_everything(run_copy, capsys):
    backup = RunDir(run_copy).checkpoints / "backup" / "state.weights.h5"
    _truncate(backup)
    fails_cleanly(["train", "--out", run_copy, "--epochs", "2", *TRAIN_FLAGS], capsys,
                  backup, "cannot restore the training backup", root=run_copy)  # fmt: skip


def test_resume_from_corrupt_backup_meta(run_copy, capsys):
    meta = RunDir(run_copy).checkpoints / "backup" / "meta.json"
    meta.write_text('{"epochs_done": 1, "history": {"loss": ', encoding="utf-8")
    fails_cleanly(["train", "--out", run_copy, "--epochs", "2", *TRAIN_FLAGS], capsys,
                  f"{meta}:1: invalid JSON", root=run_copy)  # fmt: skip
    meta.write_text('{"epochs_done": 1, "history": {"loss": 3}}', encoding="utf-8")
    fails_cleanly(["train", "--out", run_copy, "--epochs", "2", *TRAIN_FLAGS], capsys,
                  meta, "history must map metric names to lists", root=run_copy)  # fmt: skip


@pytest.mark.parametrize("command", ["translate", "export", "evaluate"])
def test_truncated_model_names_the_file(run_copy, capsys, command):
    model = RunDir(run_copy).model
    _truncate(model)
    argv = [command, run_copy] + (["oi"] if command == "translate" else [])
    fails_cleanly(argv, capsys, model, "cannot load the model", root=run_copy)


@pytest.mark.parametrize(
    "missing, needle",
    [
        ("model.keras", "model.keras: missing; is"),
        ("tokenizers", "tokenizers: missing; is"),
        ("config.json", "config.json: missing"),
    ],
)
@pytest.mark.parametrize("command", ["translate", "evaluate", "plot", "export"])
def test_run_dir_missing_a_file(run_copy, capsys, command, missing, needle):
    target = run_copy / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    argv = [command, run_copy] + (["oi"] if command == "translate" else [])
    fails_cleanly(argv, capsys, needle, root=run_copy)


def test_tokenizers_dir_without_saved_model(run_copy, capsys):
    (RunDir(run_copy).tokenizers / "saved_model.pb").unlink()
    fails_cleanly(["translate", run_copy, "oi"], capsys, "tokenizers", "cannot load the tokenizers",
                  root=run_copy)  # fmt: skip


@pytest.mark.parametrize(
    "missing, needle",
    [("labels.txt", "labels.txt: missing"), ("model.keras", "model.keras: missing")],
)
@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_classifier_run_missing_a_file(classifier_copy, capsys, command, missing, needle):
    (classifier_copy / missing).unlink()
    argv = ["classify", command, classifier_copy] + (["x"] if command == "predict" else [])
    fails_cleanly(argv, capsys, needle, root=classifier_copy)


# --- config.json with wrong types --------------------------------------------------------


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"epochs": "3"}, "epochs must be a non-negative integer, got '3'"),
        ({"max_tokens": 12.5}, "max_tokens must be a non-negative integer, got 12.5"),
        ({"bucket": "yes"}, "bucket must be true or false, got 'yes'"),
        ({"shared_vocabulary": 1}, "shared_vocabulary must be true or false, got 1"),
        ({"corpus": 7}, "corpus must be a string, got 7"),
        ({"hparams": {"d_model": "16"}}, "d_model must be a positive integer, got '16'"),
        ({"hparams": {"num_layers": 1, "colour": "red"}}, "unknown TransformerConfig field"),
        ({"surprise": 1}, "unknown setting(s) ['surprise']"),
    ],
)
def test_config_with_wrong_types(run_copy, capsys, change, needle):
    config_path = RunDir(run_copy).config
    config = json.loads(config_path.read_text())
    for key, value in change.items():
        if key == "hparams":
            config["hparams"] = value if "colour" in value else {**config["hparams"], **value}
        else:
            config[key] = value
    config_path.write_text(json.dumps(config), encoding="utf-8")
    for argv in (["translate", run_copy, "oi"], ["export", run_copy],
                 ["train", "--out", run_copy, "--epochs", "2", *TRAIN_FLAGS]):  # fmt: skip
        fails_cleanly(argv, capsys, config_path, needle, root=run_copy)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"epochs": 1,\n "seed": }', ":2: invalid JSON"),
        (b"\xff\xfe{}", "unreadable"),
    ],
)
def test_config_that_is_not_a_json_object(run_copy, capsys, text, needle):
    config_path = RunDir(run_copy).config
    if isinstance(text, bytes):
        config_path.write_bytes(text)
    else:
        config_path.write_text(text, encoding="utf-8")
    fails_cleanly(["translate", run_copy, "oi"], capsys, config_path, needle, root=run_copy)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"threshold": "0.5"}, "threshold must be a number or 'auto', got '0.5'"),
        ({"threshold": [0.5]}, "threshold must be float, got [0.5]"),
        ({"threshold": "auto", "mode": "multiclass"}, "threshold 'auto' needs mode multilabel"),
        ({"model": "svm"}, "model must be one of transformer, lstm, gru, linear, got 'svm'"),
        ({"bidirectional": 1}, "bidirectional must be bool, got 1"),
        ({"max_tokens": "128"}, "max_tokens must be int, got '128'"),
        ({"mode": None}, "mode must be str, got None"),
        ({"limit": True}, "limit must be int, got True"),
        ({"kind": "translator"}, "not a classifier run"),
    ],
)
def test_classifier_config_with_wrong_types(classifier_copy, capsys, change, needle):
    config_path = RunDir(classifier_copy).config
    config = {**json.loads(config_path.read_text()), **change}
    config_path.write_text(json.dumps(config), encoding="utf-8")
    for argv in (["classify", "predict", classifier_copy, "x"],
                 ["classify", "export", classifier_copy]):  # fmt: skip
        fails_cleanly(argv, capsys, config_path, needle, root=classifier_copy)


def test_labels_file_with_bad_bytes(classifier_copy, capsys):
    labels = classifier_copy / "labels.txt"
    labels.write_bytes(b"food\n\xff\xfehealth\n")
    fails_cleanly(["classify", "predict", classifier_copy, "x"], capsys, labels, "unreadable",
                  root=classifier_copy)  # fmt: skip
