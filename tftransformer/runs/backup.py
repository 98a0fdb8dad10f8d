"""Training backups: atomic checkpoints for resuming, history and epoch weights.

`RunBackup` writes them during `fit`; `restore_backup` loads them into a
model when a run resumes (see `trainer.train_run`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from tftransformer._files import (
    RunError,
    atomic_dir,
    atomic_path,
    first_line,
    read_json,
    recover_dir,
    write_json_atomic,
)
from tftransformer.runs.paths import RunDir

KEEP_EPOCH_CHECKPOINTS = 5
# The weights of the epoch with the lowest validation loss so far (see `runs.keep`).
BEST_WEIGHTS = "best.weights.h5"


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
            self.model.save_weights(staging / "state.weights.h5")
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
            with atomic_path(self.run.checkpoints / BEST_WEIGHTS, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        self.epochs_done = epoch + 1
        self._save_backup()
        write_json_atomic(self.run.history, self.history)
        path = self.run.checkpoints / f"epoch-{self.epochs_done:03d}.weights.h5"
        with atomic_path(path, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
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
