"""One training run into a run directory: the tutorial's "Training" section as a job.

Builds (or reuses) the tokenizers, trains the Transformer with the
tutorial's optimizer, loss and metrics through `model.fit`, and leaves
everything later commands need in the run directory (see `rundir.py`).
Running the same job again resumes from the last backup.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from tftransformer import __version__
from tftransformer.config import TransformerConfig
from tftransformer.corpus import load_corpus
from tftransformer.data import BATCH_SIZE, MAX_TOKENS, make_batches, make_bucketed_batches
from tftransformer.rundir import (
    RunDir,
    RunError,
    read_json,
    recover_dir,
    replace_dir_atomic,
    staging_dir,
    write_json_atomic,
)
from tftransformer.tokenizers import (
    MIN_TOKEN_COUNT,
    VOCAB_SIZE,
    build_tokenizers,
    load_tokenizers,
    save_tokenizers,
)
from tftransformer.training import masked_accuracy, masked_loss, tutorial_optimizer
from tftransformer.transformer import Transformer

# Measured on the 2-core CPU: see README ("Train").
DEFAULT_EPOCHS = 20
KEEP_EPOCH_CHECKPOINTS = 5


@dataclasses.dataclass
class TrainSettings:
    """Everything that defines a run; stored as RUN/config.json."""

    corpus: str = "embedded"
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = BATCH_SIZE
    max_tokens: int = MAX_TOKENS
    vocab_size: int = VOCAB_SIZE
    min_token_count: int = MIN_TOKEN_COUNT
    bucket: bool = False
    warmup_steps: int = 4000
    seed: int = 0
    limit: int | None = None  # use only the first N examples of each split
    hparams: TransformerConfig = dataclasses.field(default_factory=TransformerConfig)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["hparams"] = self.hparams.to_dict()
        return data

    @classmethod
    def from_json(cls, data: dict, source="config.json") -> TrainSettings:
        data = dict(data)
        data.pop("tftransformer_version", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RunError(f"{source}: unknown setting(s) {unknown}")
        try:
            hparams = TransformerConfig.from_dict(data.pop("hparams", {}))
        except (TypeError, ValueError) as error:
            raise RunError(f"{source}: hparams: {error}") from None
        settings = cls(**data, hparams=hparams)
        integers = ("epochs", "batch_size", "max_tokens", "vocab_size", "min_token_count",
                    "warmup_steps", "seed")  # fmt: skip
        for name in integers:
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RunError(f"{source}: {name} must be a non-negative integer, got {value!r}")
        if not isinstance(settings.bucket, bool):
            raise RunError(f"{source}: bucket must be true or false, got {settings.bucket!r}")
        if not isinstance(settings.corpus, str):
            raise RunError(f"{source}: corpus must be a string, got {settings.corpus!r}")
        if settings.limit is not None and (
            isinstance(settings.limit, bool) or not isinstance(settings.limit, int)
        ):
            raise RunError(f"{source}: limit must be an integer or null, got {settings.limit!r}")
        return settings


def load_settings(run: RunDir) -> TrainSettings:
    return TrainSettings.from_json(read_json(run.config), source=str(run.config))


def check_same_run(stored, wanted, source) -> None:
    """A rerun must train the same model; only `epochs` may change (any settings dataclass)."""
    for field in dataclasses.fields(stored):
        if field.name == "epochs":
            continue
        old, new = getattr(stored, field.name), getattr(wanted, field.name)
        if old != new:
            raise RunError(
                f"{source}: this run was trained with {field.name}={old!r}, not {new!r}; "
                "use the same settings to resume, or a new --out"
            )


def _take(ds, limit):
    return ds if limit is None else ds.take(limit)


def build_model(settings: TrainSettings, tokenizers) -> Transformer:
    model = Transformer.from_hparams(
        settings.hparams,
        input_vocab_size=tokenizers.pt.get_vocab_size(),
        target_vocab_size=tokenizers.en.get_vocab_size(),
    )
    model.build(((None, None), (None, None)))
    model.compile(
        loss=masked_loss,
        optimizer=tutorial_optimizer(settings.hparams.d_model, settings.warmup_steps),
        metrics=[masked_accuracy],
    )
    # Create the optimizer's slots now, so a backup (which holds them) can load.
    model.optimizer.build(model.trainable_variables)
    return model


class RunBackup(keras.callbacks.Callback):
    """Atomic training backups for resuming, plus history.json and epoch weights.

    Every `save_every` steps and at each epoch end the model and optimizer
    state and a small JSON (epochs done, history) are written to a staging
    directory, then swapped in for `checkpoints/backup/`. At each epoch end the
    weights also go to `checkpoints/epoch-NNN.weights.h5` (the last
    `KEEP_EPOCH_CHECKPOINTS` are kept) and the history to `history.json`.

    Deviation from Keras' `BackupAndRestore`: writes are atomic, and the
    history of epochs before an interruption is kept.
    """

    def __init__(self, run: RunDir, history=None, save_every=None):
        super().__init__()
        self.run = run
        self.history = history or {}
        self.save_every = save_every
        self.epochs_done = len(next(iter(self.history.values()), []))

    @property
    def backup_dir(self) -> Path:
        return self.run.checkpoints / "backup"

    def _save_backup(self):
        staging = staging_dir(self.backup_dir)
        try:
            self.model.save_weights(staging / "state.weights.h5")
            meta = {"epochs_done": self.epochs_done, "history": self.history}
            (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            replace_dir_atomic(staging, self.backup_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging)

    @staticmethod
    def _finite(logs):
        # Never back up a state whose loss already went NaN/Inf: keep the last good one.
        loss = (logs or {}).get("loss")
        return loss is None or bool(tf.math.is_finite(float(loss)))

    def on_train_batch_end(self, batch, logs=None):
        if self.save_every and (batch + 1) % self.save_every == 0 and self._finite(logs):
            self._save_backup()

    def on_epoch_end(self, epoch, logs=None):
        if not self._finite(logs):
            return
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        self._save_backup()
        write_json_atomic(self.run.history, self.history)
        path = self.run.checkpoints / f"epoch-{self.epochs_done:03d}.weights.h5"
        tmp = path.with_name(f".{path.name}.tmp.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, path)
        for old in sorted(self.run.checkpoints.glob("epoch-*.weights.h5"))[
            :-KEEP_EPOCH_CHECKPOINTS
        ]:
            old.unlink()


def restore_backup(run: RunDir, model) -> dict:
    """Load `checkpoints/backup/` into `model` (weights and optimizer); its history."""
    backup = recover_dir(run.checkpoints / "backup")
    if not (backup / "meta.json").exists():
        return {}
    try:
        model.load_weights(backup / "state.weights.h5")
    except Exception as error:  # h5py/keras raise many types for a bad file
        raise RunError(
            f"{backup / 'state.weights.h5'}: cannot restore the training backup ({error})"
        ) from None
    return read_json(backup / "meta.json").get("history", {})


def prepare_tokenizers(run: RunDir, settings: TrainSettings, log=print):
    """Load RUN/tokenizers/, or learn them from the train split and save them there."""
    # save_tokenizers renames a finished SavedModel into place, so the directory
    # existing (after undoing a cut-short replacement) means it is complete.
    if recover_dir(run.tokenizers).exists():
        log(f"Reusing tokenizers from {run.tokenizers}")
        return load_tokenizers(run.tokenizers)
    log(f"Building tokenizers from {settings.corpus} (train split) ...")
    pairs = _take(load_corpus(settings.corpus, "train"), settings.limit)
    with tempfile.TemporaryDirectory(prefix="tftransformer-vocab-") as vocab_dir:
        # The vocab files are copied into the SavedModel as assets.
        built = build_tokenizers(
            pairs,
            settings.vocab_size,
            vocab_dir=vocab_dir,
            min_token_count=settings.min_token_count,
        )
        save_tokenizers(built, run.tokenizers)
    return load_tokenizers(run.tokenizers)


def make_datasets(settings: TrainSettings, tokenizers):
    """Train batches (shuffled) and validation batches (fixed order)."""
    batcher = make_bucketed_batches if settings.bucket else make_batches
    common = dict(batch_size=settings.batch_size, max_tokens=settings.max_tokens)
    train = batcher(
        _take(load_corpus(settings.corpus, "train"), settings.limit),
        tokenizers,
        seed=settings.seed,
        **common,
    )
    val = batcher(
        _take(load_corpus(settings.corpus, "validation"), settings.limit),
        tokenizers,
        shuffle=False,
        **common,
    )
    return train, val


def train_run(
    out,
    settings: TrainSettings,
    verbose=1,
    save_every=None,
    extra_callbacks=(),
    log=print,
):
    """Train into run dir `out` (creating or resuming it); returns (model, tokenizers, history)."""
    run = RunDir(out)
    run.path.mkdir(parents=True, exist_ok=True)
    if run.config.exists():
        check_same_run(load_settings(run), settings, run.config)
    config = {"tftransformer_version": __version__, **settings.to_json()}
    write_json_atomic(run.config, config)

    keras.utils.set_random_seed(settings.seed)
    if settings.bucket:
        # Bucketed batches have no known count, so Keras notes the end of every
        # epoch's data as "ran out of data"; nothing is cut short.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
    tokenizers = prepare_tokenizers(run, settings, log=log)
    train, val = make_datasets(settings, tokenizers)
    model = build_model(settings, tokenizers)
    history = restore_backup(run, model)
    done = len(next(iter(history.values()), []))
    if done:
        log(
            f"Resuming {run.path} after epoch {done} "
            f"(optimizer step {int(model.optimizer.iterations)})"
        )

    backup = RunBackup(run, history=history, save_every=save_every)
    callbacks = [
        backup,
        keras.callbacks.TensorBoard(log_dir=str(run.logs)),
        keras.callbacks.TerminateOnNaN(),
        *extra_callbacks,
    ]
    if done < settings.epochs:
        model.fit(
            train,
            epochs=settings.epochs,
            initial_epoch=done,
            validation_data=val,
            shuffle=False,  # the tf.data pipeline shuffles (make_batches)
            callbacks=callbacks,
            verbose=verbose,
        )
    if model.stop_training and backup.epochs_done < settings.epochs:
        raise RunError(
            "training stopped: the loss became NaN or Inf; the last good backup is kept "
            f"in {backup.backup_dir}"
        )
    tmp = run.path / ".model.tmp.keras"
    model.save(tmp)
    os.replace(tmp, run.model)
    write_json_atomic(run.history, backup.history)
    return model, tokenizers, backup.history
