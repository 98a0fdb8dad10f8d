"""Interruption, resumption, determinism and numerical faults in training (issue 9).

Proves: two runs with one seed give identical weights on CPU; a run stopped
after any epoch and run again ends with exactly the weights of an
uninterrupted one; `kill -9` at random points (seeded) never leaves a
half-written checkpoint or export, and rerunning completes training to the
same model; a NaN loss stops training with a clear message and keeps the last
good backup.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import TINY_HPARAMS as TINY
from conftest import InterruptAt

from tftransformer.config import TransformerConfig
from tftransformer.runs.paths import RunDir, RunError
from tftransformer.runs.train import TrainSettings, train_run

TINY_HPARAMS = TransformerConfig(**TINY)


def tiny_settings(epochs, **overrides):
    # keep="last": the run's result is its last weights, which the backup also holds (which
    # candidate `--keep best` keeps is tests/test_keep.py's business).
    # float32 as TRAIN_SCRIPT's (the subprocess sees the real CPU; see tests/conftest.py).
    values = dict(epochs=epochs, batch_size=8, limit=24, warmup_steps=10, hparams=TINY_HPARAMS,
                  keep="last", mixed_precision=None)  # fmt: skip
    return TrainSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def tiny_tokenizers(tmp_path_factory):
    """The tokenizers every tiny run here learns (first 24 train pairs), built once."""
    from tftransformer.runs.train import prepare_tokenizers

    run = RunDir(tmp_path_factory.mktemp("tok") / "run")
    prepare_tokenizers(run, tiny_settings(1), log=lambda *_: None)
    return run.tokenizers


@pytest.fixture
def new_run(tmp_path, tiny_tokenizers):
    """A fresh run dir path holding a copy of `tiny_tokenizers` (saves learning them again)."""
    import shutil

    def make(name):
        out = tmp_path / name
        shutil.copytree(tiny_tokenizers, RunDir(out).tokenizers)
        return out

    return make


def weights_of(model):
    return [np.asarray(w) for w in model.weights]


def assert_same_weights(a, b, atol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if atol:
            np.testing.assert_allclose(x, y, rtol=0, atol=atol)
        else:
            np.testing.assert_array_equal(x, y)


REFERENCE_EPOCHS = 4


@pytest.fixture(scope="module")
def reference(tiny_tokenizers, tmp_path_factory):
    """An uninterrupted tiny run of REFERENCE_EPOCHS epochs (dropout 0.1): weights, history."""
    import shutil

    out = tmp_path_factory.mktemp("reference") / "run"
    shutil.copytree(tiny_tokenizers, RunDir(out).tokenizers)
    model, _tok, history = train_run(out, tiny_settings(REFERENCE_EPOCHS), verbose=0)
    return {"weights": weights_of(model), "history": history, "path": out,
            "steps": int(model.optimizer.iterations)}  # fmt: skip


@pytest.mark.slow
def without_clock(history):
    """The history but its wall-clock seconds, which differ between any two runs."""
    return {k: v for k, v in history.items() if k != "train_seconds"}


def test_two_runs_with_the_same_seed_give_identical_weights(new_run, reference):
    model, _tok, history = train_run(new_run("again"), tiny_settings(REFERENCE_EPOCHS), verbose=0)
    assert_same_weights(reference["weights"], weights_of(model))
    assert without_clock(history) == without_clock(reference["history"])
    assert history["steps"] == reference["history"]["steps"]


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(new_run, reference):
    """Dropout on (0.1): the dropout seeds are restored along with weights and optimizer."""
    out = new_run("resumed")
    # Interrupted in the middle of epoch 2: the backup is the state after epoch 1.
    with pytest.raises(KeyboardInterrupt):
        train_run(out, tiny_settings(REFERENCE_EPOCHS), verbose=0,
                  extra_callbacks=[InterruptAt(1, 1)])  # fmt: skip
    resumed, _tok, history = train_run(out, tiny_settings(REFERENCE_EPOCHS), verbose=0)
    assert_same_weights(reference["weights"], weights_of(resumed), atol=1e-6)
    assert int(resumed.optimizer.iterations) == reference["steps"] == 3 * REFERENCE_EPOCHS
    np.testing.assert_allclose(history["loss"], reference["history"]["loss"], rtol=1e-5)


class _PoisonAt(InterruptAt):
    """Set one weight to NaN after step `step` of epoch `epoch`: the next loss is NaN."""

    def fire(self):
        weight = self.model.weights[0]
        weight.assign(np.full(weight.shape, np.nan, "float32"))


def test_nan_loss_stops_training_and_keeps_the_last_good_backup(new_run):
    from tftransformer.runs.train import build_model
    from tftransformer.tokenizers import load_tokenizers

    out = new_run("nan")
    run = RunDir(out)
    with pytest.raises(RunError) as caught:
        train_run(out, tiny_settings(3), verbose=0, save_every=1,
                  extra_callbacks=[_PoisonAt(1, 0)])  # fmt: skip
    message = str(caught.value)
    assert "NaN or Inf" in message and "epoch 2" in message and str(run.checkpoints) in message
    assert "\n" not in message
    meta = json.loads((run.checkpoints / "backup" / "meta.json").read_text())
    # The backup is the last good state: epoch 1 done, its weights all finite.
    assert meta["epochs_done"] == 1 and len(meta["history"]["loss"]) == 1
    assert np.isfinite(meta["history"]["loss"]).all()
    model = build_model(tiny_settings(1), load_tokenizers(run.tokenizers))
    model.load_weights(run.checkpoints / "backup" / "state.weights.h5")
    assert all(np.isfinite(w).all() for w in weights_of(model))
    assert not run.model.exists()  # no NaN model saved as the result
    assert not (run.checkpoints / "epoch-002.weights.h5").exists()
    assert json.loads(run.history.read_text())["loss"] == meta["history"]["loss"]


def test_nan_loss_stops_classifier_training(tmp_path):
    from tftransformer.runs.classify import ClassifySettings, train_classifier

    settings = ClassifySettings(epochs=2, batch_size=16, limit=48, hparams=TINY_HPARAMS)
    with pytest.raises(RunError, match="NaN or Inf"):
        train_classifier(tmp_path / "cls", settings, verbose=0,
                         extra_callbacks=[_PoisonAt(1, 0)])  # fmt: skip
    assert not (tmp_path / "cls" / "model.keras").exists()
    meta = json.loads((tmp_path / "cls" / "checkpoints" / "backup" / "meta.json").read_text())
    assert meta["epochs_done"] == 1


# --- kill -9 -------------------------------------------------------------------------------

KILL_SEED = 20251125  # random kill points, reproducible
# The training job of `tftransformer train` (without its final test-split evaluation,
# which writes nothing to the run dir), with `tiny_settings`.
# It prints a line after every training step, so the test can kill it at a chosen step.
TRAIN_SCRIPT = """
import sys
import keras
from tftransformer.config import TransformerConfig
from tftransformer.runs.train import TrainSettings, train_run

class Steps(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print("step", flush=True)

hparams = TransformerConfig(num_layers=1, d_model=16, dff=32, num_heads=2)
settings = TrainSettings(epochs=int(sys.argv[2]), batch_size=8, limit=24, warmup_steps=10,
                         hparams=hparams, keep="last", mixed_precision=None)
train_run(sys.argv[1], settings, verbose=0, extra_callbacks=[Steps()])
"""


def _train_process(out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    argv = [sys.executable, "-c", TRAIN_SCRIPT, str(out), str(REFERENCE_EPOCHS)]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _kill(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _assert_nothing_half_written(run: RunDir):
    """Every file under a real name is complete; only dot-named temporaries may be partial."""
    import h5py

    backup = run.checkpoints / "backup"
    old = run.checkpoints / ".backup.old"
    assert backup.exists() or old.exists() or not run.checkpoints.exists()
    for directory in (backup, old):
        if directory.exists():
            meta = json.loads((directory / "meta.json").read_text())
            with h5py.File(directory / "state.weights.h5", "r") as f:
                assert {"encoder", "decoder", "optimizer"} <= set(f)
            assert meta["epochs_done"] == len(meta["history"]["loss"])
    for path in run.checkpoints.glob("epoch-*.weights.h5"):
        with h5py.File(path, "r") as f:
            assert {"encoder", "decoder", "optimizer"} <= set(f)
    if run.history.exists():
        json.loads(run.history.read_text())
    json.loads(run.config.read_text())


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_completes_to_the_same_model(new_run, reference):
    out = new_run("killed")
    run = RunDir(out)
    rng = random.Random(KILL_SEED)
    kills = []
    for _attempt in range(3):
        process = _train_process(out)
        # Kill after a random number of this attempt's steps (1 to 5; an epoch is 3),
        # plus a random delay: in a step, in validation, or while a backup is written.
        target, delay = rng.randint(1, 5), rng.uniform(0.0, 0.3)
        try:
            steps = 0
            while steps < target and process.stdout.readline():
                steps += 1
            time.sleep(delay)
            finished = process.poll() is not None
        finally:
            _kill(process)
        if finished:
            break
        kills.append((target, round(delay, 3)))
        _assert_nothing_half_written(run)
    assert len(kills) == 3, f"training finished after only {len(kills)} kill(s)"

    process = _train_process(out)
    try:
        assert process.wait(timeout=300) == 0, process.stderr.read().decode()[-2000:]
    finally:
        _kill(process)
    _assert_nothing_half_written(run)
    assert not list(run.checkpoints.glob(".*.tmp*"))  # stale temporaries were swept away
    history = json.loads(run.history.read_text())
    assert len(history["loss"]) == REFERENCE_EPOCHS
    finished = keras.models.load_model(run.model)
    assert_same_weights(reference["weights"], weights_of(finished), atol=1e-6)


@pytest.mark.slow
def test_kill_9_during_export_leaves_no_partial_version(tiny_run, tmp_path):
    """An export killed at a random moment leaves either a complete version or none."""
    import shutil

    run_copy = tmp_path / "run"
    shutil.copytree(tiny_run, run_copy, ignore=shutil.ignore_patterns("export"))
    root = RunDir(run_copy).export_root("translator")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rng = random.Random(KILL_SEED)
    process = subprocess.Popen(
        [sys.executable, "-m", "tftransformer", "export", str(run_copy)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # Kill once the staging directory exists (the SavedModel is being written).
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if root.exists() and any(p.name.startswith(".") for p in root.iterdir()):
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.5))
    finally:
        _kill(process)
    assert process.returncode == -signal.SIGKILL  # killed mid-export, not finished
    versions = [p for p in root.iterdir() if not p.name.startswith(".")] if root.exists() else []
    for version in versions:  # a model server only ever sees numeric, complete versions
        assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    # A second export still works and takes the next free version.
    from tftransformer.cli import main

    assert main(["export", str(run_copy)]) == 0
    assert (root / str(len(versions) + 1) / "saved_model.pb").exists()


def test_stale_temporaries_are_swept_on_resume(reference, tmp_path):
    """What a killed process leaves under temporary names is removed; nothing else is."""
    import shutil

    from tftransformer.runs.train import build_model, restore_backup
    from tftransformer.tokenizers import load_tokenizers

    run = RunDir(tmp_path / "run")
    shutil.copytree(reference["path"], run.path)
    stale_dir = run.checkpoints / ".backup.abc.tmp"
    stale_dir.mkdir()
    (stale_dir / "state.weights.h5").write_bytes(b"partial")
    stale_file = run.checkpoints / ".epoch-005.weights.h5.tmp.weights.h5"
    stale_file.write_bytes(b"partial")
    kept = sorted(p.name for p in run.checkpoints.iterdir() if not p.name.startswith("."))
    model = build_model(tiny_settings(1), load_tokenizers(run.tokenizers))
    history = restore_backup(run, model)
    assert not stale_dir.exists() and not stale_file.exists()
    assert sorted(p.name for p in run.checkpoints.iterdir()) == kept
    assert history == reference["history"]
    assert_same_weights(reference["weights"], weights_of(model))
