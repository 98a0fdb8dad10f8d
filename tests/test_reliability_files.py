"""Corrupt or hostile files (issue 9).

Proves: a TSV/CSV with mixed encodings, a truncated checkpoint or model, a run
dir missing files, and a config.json (or labels.txt, backup meta.json) with
wrong types or bad bytes each fail with exit status 2 and one line naming the
file and the problem, and leave every file already in the run dir as it was.
"""

import hashlib
import json
import os
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


# --- a full disk -------------------------------------------------------------------------


def test_train_without_disk_room_for_its_weights_refuses_before_training(
    run_copy, capsys, monkeypatch
):
    # The first stored 25-minute benchmark run died (SIGSEGV inside h5py) when the disk
    # filled while it saved weights; now the room is counted before the first step.
    import tftransformer._files as files

    monkeypatch.setattr(files, "free_bytes", lambda path: 2**20)
    err = fails_cleanly(["train", "--out", run_copy, "--epochs", "2", *TRAIN_FLAGS], capsys,
                        run_copy, "not enough disk space for this run's weights files",
                        "1 MB free on that disk", root=run_copy)  # fmt: skip
    assert "6 of about" in err  # backup, best, one being written, model.keras, 2 epochs


def test_weights_file_estimate_matches_the_file_keras_writes(tmp_path):
    import keras

    from tftransformer.runs.backup import save_weights_atomic, weights_file_bytes

    model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000)])
    model.compile(optimizer="adam", loss="mse")
    before = weights_file_bytes(model)  # optimizer not built: Adam's moments estimated
    model.optimizer.build(model.trainable_variables)
    after = weights_file_bytes(model)
    save_weights_atomic(model, tmp_path / "w.weights.h5")
    size = (tmp_path / "w.weights.h5").stat().st_size
    assert size > 12_000_000  # weights and Adam's two moments, float32
    for estimate in (before, after):
        assert size < estimate < size * 1.02 + 2**20


def test_save_weights_refused_for_lack_of_room_keeps_the_old_file(tmp_path, monkeypatch):
    import keras

    import tftransformer._files as files
    from tftransformer._files import RunError
    from tftransformer.runs.backup import save_weights_atomic

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    path = tmp_path / "best.weights.h5"
    path.write_bytes(b"old")
    monkeypatch.setattr(files, "free_bytes", lambda p: 1000)
    with pytest.raises(RunError, match=r"best\.weights\.h5: not enough disk space for the weights"):
        save_weights_atomic(model, path)
    assert path.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [path]


_DISK_FULL_TRAIN = """
import contextlib, os, sys
from pathlib import Path
import tftransformer.runs.backup as backup
from tftransformer.cli.main import run

@contextlib.contextmanager
def onto_a_full_disk(path, suffix=""):
    # Every write through this name fails with ENOSPC, as on a full disk.
    full = Path(path).with_name("." + Path(path).name + ".full" + suffix)
    full.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/dev/full", full)
    try:
        yield full
    finally:
        full.unlink()

backup.atomic_path = onto_a_full_disk  # the weights files only
sys.argv = ["tftransformer", *sys.argv[1:]]
run()
"""


def test_train_on_a_disk_that_fills_exits_with_one_line_naming_the_file(tmp_path):
    # Seen in a benchmark: ENOSPC inside h5py, then SIGSEGV at exit (HDF5's clean-up).
    # Made to exit with sys.exit (no os._exit), this process dies with status -11.
    import subprocess
    import sys

    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--epochs", "1", "--mixed-precision", "float32",
            *TRAIN_FLAGS]  # fmt: skip
    result = subprocess.run([sys.executable, "-c", _DISK_FULL_TRAIN, *argv], capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            timeout=600)  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    best = out / "checkpoints" / "best.weights.h5"
    assert result.stderr.strip().splitlines()[-1] == (
        f"tftransformer train: error: {best}: cannot write the weights (No space left on device)"
    )
    assert "Traceback" not in result.stderr and not best.exists()


_AFTER_A_FAILED_WRITE = """
import atexit, sys
from tftransformer._files import exit_process, quiet_unraisable, release_failed_hdf5

atexit.register(lambda: print(" exit-time clean-up ran", end=""))
print("unflushed", end="")
if sys.argv[1] == "failed":
    release_failed_hdf5(quiet_unraisable())
exit_process(3)
"""


@pytest.mark.parametrize("case", ["failed", "healthy"])
def test_exit_after_a_failed_hdf5_write_skips_the_exit_time_clean_up(case):
    # HDF5's clean-up at exit is where a failed write crashed (SIGSEGV); the output
    # must still come out, and a healthy process exits as usual.
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", _AFTER_A_FAILED_WRITE, case],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 3, result.stderr
    expected = {"failed": "unflushed", "healthy": "unflushed exit-time clean-up ran"}
    assert result.stdout == expected[case]


_SAVE_ONTO_FULL_DISK = """
import sys
import keras
import tftransformer._files as files
from tftransformer._files import RunError, exit_process
from tftransformer.runs.backup import save_weights_atomic

files.free_bytes = lambda path: 10**12  # the check before writing is not what is tested
model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(1000)])  # 4 MB
try:
    save_weights_atomic(model, sys.argv[1])
except RunError as error:
    print(error, file=sys.stderr)
exit_process(2)
"""


def test_weights_written_onto_a_really_full_disk(tmp_path):
    # The real failure: a 2 MB file system (tmpfs) fills while h5py writes. Plain
    # `sys.exit` here ends in SIGSEGV (status -11). Needs permission to mount.
    import subprocess
    import sys

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(disk)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        path = disk / "best.weights.h5"
        result = subprocess.run([sys.executable, "-c", _SAVE_ONTO_FULL_DISK, str(path)],
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines()[-1] == (
            f"{path}: cannot write the weights (No space left on device)"
        )
        assert "Traceback" not in result.stderr and list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    from tftransformer._files import atomic_dir, write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "config.json", "{}")
        with atomic_dir(tmp_path / "export") as staging:
            (staging / "saved_model.pb").write_bytes(b"")
        os.umask(0o077)
        write_text_atomic(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"config.json": 0o644, "export": 0o755, "private.json": 0o600}
