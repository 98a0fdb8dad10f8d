"""Training backups: atomic checkpoints for resuming, history and epoch weights.

`RunBackup` writes them during `fit`; `restore_backup` loads them into a
model when a run resumes (see `trainer.train_run`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tftransformer._files import (
    RunError,
    atomic_dir,
    atomic_path,
    first_line,
    quiet_unraisable,
    read_json,
    recover_dir,
    release_failed_hdf5,
    require_space,
    write_json_atomic,
)
from tftransformer.runs.paths import RunDir

KEEP_EPOCH_CHECKPOINTS = 5
# The weights of the epoch with the lowest validation loss so far (see `runs.keep`).
BEST_WEIGHTS = "best.weights.h5"
# Weights-sized files a run holds at once besides its epoch checkpoints: the backup, the
# best epoch's, one being written (new before old is removed) and, at the end, model.keras.
_FILES_AT_PEAK = 4


def weights_file_bytes(model) -> int:
    """About the size of `model.save_weights`' file: the model's variables and the
    optimizer's (Keras writes both; before the optimizer is built, Adam's two moments
    per trainable weight are counted), plus 1% and 1 MB for the file's own structure."""

    def size(variables):
        return sum(int(np.prod(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)

    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        optimizer_bytes = size(optimizer.variables)
    else:
        optimizer_bytes = 2 * size(model.trainable_weights)
    return int((size(model.weights) + optimizer_bytes) * 1.01) + 2**20


def save_weights_atomic(model, path) -> None:
    """`model.save_weights(path)` through a temporary file, refused with a `RunError`
    naming `path` when its disk has no room for it or the write fails (never a half file)."""
    _save_atomic(model.save_weights, model, Path(path), ".weights.h5", "the weights")


def save_model_atomic(model, path) -> None:
    """`model.save(path)` (a `.keras` file), checked and written as `save_weights_atomic`."""
    _save_atomic(model.save, model, Path(path), ".keras", "the model")


def _save_atomic(save, model, path: Path, suffix: str, what: str) -> None:
    require_space(path, weights_file_bytes(model), what)
    failure = None
    try:
        with atomic_path(path, suffix=suffix) as tmp:
            save(tmp)
    except OSError as error:
        failure = os.strerror(error.errno) if error.errno else first_line(error)
        saved = quiet_unraisable()  # h5py's open objects are freed as this block ends
    if failure is not None:
        release_failed_hdf5(saved)
        raise RunError(f"{path}: cannot write {what} ({failure})")


def require_run_space(run: RunDir, model, epochs: int) -> None:
    """Before training: a `RunError` unless the run's disk has room for every weights file
    the run will hold at once (`_FILES_AT_PEAK` plus its epoch checkpoints), counting
    those a resumed run already has. Better than a full disk after an hour of training."""
    per_file = weights_file_bytes(model)
    files = _FILES_AT_PEAK + min(KEEP_EPOCH_CHECKPOINTS, max(int(epochs), 1))
    present = [run.model, *run.checkpoints.rglob("*")] if run.checkpoints.is_dir() else [run.model]
    already = sum(p.stat().st_size for p in present if p.is_file())
    require_space(
        run.path,
        files * per_file - already,
        f"this run's weights files ({files} of about {per_file / 2**20:,.0f} MB at once)",
    )


class RunBackup(keras.callbacks.Callback):
    """Atomic training backups for resuming, plus history.json and epoch weights.

    Every `save_every` steps and at each epoch end the model and optimizer
    state and a small JSON (epochs done, history) are written to a staging
    directory, then swapped in for `checkpoints/backup/`. At each epoch end the
    weights also go to `checkpoints/epoch-NNN.weights.h5` (the last
    `KEEP_EPOCH_CHECKPOINTS` are kept) and the history to `history.json`.

    Deviation from Keras' `BackupAndRestore`: writes are atomic, the history
    of epochs before an interruption is kept, and so is the state of every
    dropout random-number generator, so that resuming from an epoch-end backup
    continues exactly as an uninterrupted run would (see `train_run`).

    A NaN/Inf loss is never backed up: `stopped_on_nan` is set instead and the
    last good backup stays in place.
    """

    def __init__(self, run: RunDir, history=None, save_every=None, healthy=None):
        super().__init__()
        # `healthy()` False (the collapse guard fired): nothing more is backed up.
        self.healthy = healthy or (lambda: True)
        self.run = run
        self.history = history or {}
        self.save_every = save_every
        self.epochs_done = len(next(iter(self.history.values()), []))
        self.stopped_on_nan = False

    @property
    def backup_dir(self) -> Path:
        return self.run.checkpoints / "backup"

    def _save_backup(self):
        with atomic_dir(self.backup_dir, replace=True) as staging:
            save_weights_atomic(self.model, staging / "state.weights.h5")
            meta = {
                "epochs_done": self.epochs_done,
                "history": self.history,
                # Keras' weights files leave out the dropout layers' seed states.
                "rng_states": [v.numpy().tolist() for v in rng_variables(self.model)],
            }
            (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def _finite(self, logs):
        # Never back up a state whose loss already went NaN/Inf: keep the last good one.
        loss = (logs or {}).get("loss")
        finite = loss is None or bool(tf.math.is_finite(float(loss)))
        self.stopped_on_nan = self.stopped_on_nan or not finite
        return finite

    def on_train_batch_end(self, batch, logs=None):
        finite = self._finite(logs)
        if self.save_every and (batch + 1) % self.save_every == 0 and finite and self.healthy():
            self._save_backup()

    def on_epoch_end(self, epoch, logs=None):
        if not self._finite(logs) or self.stopped_on_nan or not self.healthy():
            return
        previous = list(self.history.get("val_loss", []))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        val_loss = (logs or {}).get("val_loss")
        if val_loss is not None and (not previous or float(val_loss) < min(previous)):
            save_weights_atomic(self.model, self.run.checkpoints / BEST_WEIGHTS)
        self.epochs_done = epoch + 1
        self._save_backup()
        write_json_atomic(self.run.history, self.history)
        save_weights_atomic(
            self.model, self.run.checkpoints / f"epoch-{self.epochs_done:03d}.weights.h5"
        )
        for old in sorted(self.run.checkpoints.glob("epoch-*.weights.h5"))[
            :-KEEP_EPOCH_CHECKPOINTS
        ]:
            old.unlink()


def rng_variables(model) -> list:
    """The model's random-generator states (dropout seeds): its variables that are not weights."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def raise_if_stopped_on_nan(backup: RunBackup) -> None:
    """After `fit`: a clear `RunError` if the loss went NaN/Inf (TerminateOnNaN stopped it)."""
    if backup.stopped_on_nan:
        raise RunError(
            f"training stopped: the loss became NaN or Inf in epoch {backup.epochs_done + 1}; "
            f"the last good backup (after epoch {backup.epochs_done}) is kept in "
            f"{backup.backup_dir}"
        )


def _remove_stale_temporaries(checkpoints: Path) -> None:
    # A process killed mid-write leaves its staging directory or temporary file
    # behind (never under a real name); the next run sweeps them away.
    for stale in checkpoints.glob(".*.tmp*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def restore_backup(run: RunDir, model) -> dict:
    """Load `checkpoints/backup/` into `model` (weights, optimizer, RNG states); its history."""
    backup = recover_dir(run.checkpoints / "backup")
    if run.checkpoints.is_dir():
        _remove_stale_temporaries(run.checkpoints)
    if not (backup / "meta.json").exists():
        return {}
    meta = read_json(backup / "meta.json")
    history = meta.get("history", {})
    if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
        raise RunError(f"{backup / 'meta.json'}: history must map metric names to lists")
    try:
        model.load_weights(backup / "state.weights.h5")
    except Exception as error:  # h5py/keras raise many types for a bad file
        raise RunError(
            f"{backup / 'state.weights.h5'}: cannot restore the training backup "
            f"({first_line(error)}); delete {backup} to restart training from scratch"
        ) from None
    states, variables = meta.get("rng_states"), rng_variables(model)
    if isinstance(states, list) and len(states) == len(variables):
        for variable, state in zip(variables, states, strict=True):
            variable.assign(state)
    return history
