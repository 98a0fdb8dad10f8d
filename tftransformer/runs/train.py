"""One training run into a run directory: the tutorial's "Training" section as a job.

Builds (or reuses) the tokenizers, trains the Transformer with the
tutorial's optimizer, loss and metrics through `model.fit`, and leaves
everything later commands need in the run directory (see `paths.py`).
Running the same job again resumes from the last backup.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras
import numpy as np
import tensorflow as tf

from tftransformer._files import RunError, write_json_atomic
from tftransformer.corpus import load_corpus
from tftransformer.runs.backup import (
    RunBackup,
    raise_if_stopped_on_nan,
    require_run_space,
    restore_backup,
    save_model_atomic,
)
from tftransformer.runs.budget import TrainingBudget, budget_report, format_seconds
from tftransformer.runs.distribute import make_strategy, prepare_fit, worker_out
from tftransformer.runs.guard import CollapseGuard, NormTrackingAdam, unigram_accuracy
from tftransformer.runs.keep import keep_best
from tftransformer.runs.paths import RunDir
from tftransformer.runs.precision import (
    AUTO,
    PrecisionError,
    resolve_precision,
    training_device,
)
from tftransformer.runs.schedule import SchedulePlan, StepTimePlanner, plan_schedule
from tftransformer.runs.settings import (
    DEFAULT_EPOCHS,
    TrainSettings,
    check_budget,
    check_same_run,
    check_schedule,
    load_settings,
)
from tftransformer.runs.train_inputs import (
    count_batches,
    make_batches_for,
    prepare_tokenizers,
    take,
)
from tftransformer.runs.train_options import (
    check_train_options,
    dtype_policy,
    training_loss,
)
from tftransformer.runs.translate import validation_chrf
from tftransformer.training import masked_accuracy
from tftransformer.transformer import Transformer
from tftransformer.version import __version__

# Settings and the budget live in their own modules; they are re-exported here for callers
# that import them from the job.
__all__ = [
    "DEFAULT_EPOCHS", "TrainSettings", "TrainingBudget", "build_model", "budget_report",
    "check_budget", "check_same_run", "check_schedule", "epoch_seed", "format_seconds",
    "load_settings", "make_batches_for", "prepare_tokenizers", "resume_plan", "run_optimizer",
    "train_run",
]  # fmt: skip


def run_optimizer(settings: TrainSettings, schedule=None):
    """The tutorial's Adam(0.9, 0.98, 1e-9) over the run's learning-rate `schedule` (default:
    the settings' schedule planned for one step per epoch, enough to load a backup into).

    Deviation from tutorial: `NormTrackingAdam` (Adam's updates exactly, plus the
    gradient norm the collapse guard reads) instead of `Adam`.
    """
    if schedule is None:
        schedule = plan_schedule(settings, steps_per_epoch=1).schedule(settings.hparams.d_model)
    return NormTrackingAdam(schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9)


def build_model(settings: TrainSettings, tokenizers, strategy=None, schedule=None) -> Transformer:
    """The compiled Transformer, its variables created under `strategy` (default: none),
    trained with the learning-rate `schedule` (see `run_optimizer`)."""
    strategy = strategy or tf.distribute.get_strategy()
    precision = settings.mixed_precision
    if precision == AUTO:
        # `train_run` resolves it once, before anything is written; here for other callers.
        precision, _why = resolve_precision(precision, training_device())
    with strategy.scope(), dtype_policy(precision):
        model = Transformer.from_hparams(
            settings.hparams,
            input_vocab_size=tokenizers.pt.get_vocab_size(),
            target_vocab_size=tokenizers.en.get_vocab_size(),
        )
        if precision:
            # Deviation from tutorial (--mixed-precision, auto by default): the logits (and
            # so the softmax and loss) stay float32 while the rest runs in 16 bits.
            model.final_layer.dtype_policy = "float32"
        model.build(((None, None), (None, None)))
        model.compile(
            loss=training_loss(settings, strategy),
            optimizer=run_optimizer(settings, schedule),
            metrics=[masked_accuracy],
            # The tutorial's Keras 2 default; Keras 3's "auto" would turn XLA on on a GPU.
            jit_compile=settings.jit_compile,
        )
        # Create the optimizer's slots now, so a backup (which holds them) can load.
        model.optimizer.build(model.trainable_variables)
    return model


def epoch_seed(seed: int, epoch: int) -> int:
    """The train split's shuffle seed in `epoch` (0-based): a function of (seed, epoch) only."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def collapse_report(guard: CollapseGuard, backup: RunBackup, plan: SchedulePlan) -> str:
    """The error that ends a run the collapse guard stopped: what, where, what to do."""
    kept = (f"the last good backup (after epoch {backup.epochs_done}) is kept in "
            f"{backup.backup_dir}" if backup.epochs_done else "no epoch finished before it")
    if plan.kind == "auto":
        advice = f"rerun with a lower --peak-rate (this run's: {plan.peak_rate:.2g})"
    else:
        advice = "rerun with a longer --warmup-steps, or with --schedule auto"
    return f"{guard.fired}; {kept}; {advice}"


def resume_plan(stored: TrainSettings | None, settings: TrainSettings,
                steps_per_epoch: int) -> SchedulePlan:  # fmt: skip
    """The schedule this invocation trains with.

    A new run plans it (`plan_schedule`). A resumed run reuses the plan in its
    config.json, so the curve continues exactly; only what a rerun may change
    changes it: another `--peak-rate`, or more or fewer epochs / `--max-steps`
    (a new planned end; the warm-up already done stays as it was). Under
    `--max-time`, `StepTimePlanner` then fits the end to this invocation's budget.
    """
    fresh = plan_schedule(settings, steps_per_epoch)
    plan = stored.plan() if stored is not None else None
    if plan is None or plan.kind != fresh.kind:
        return fresh
    if plan.kind == "auto":
        if settings.peak_rate is not None and settings.peak_rate != plan.peak_rate:
            plan = dataclasses.replace(plan, peak_rate=fresh.peak_rate,
                                       final_rate=fresh.final_rate)  # fmt: skip
        changed = (stored.epochs, stored.max_steps) != (settings.epochs, settings.max_steps)
        if settings.max_time is None and changed and fresh.total_steps != plan.total_steps:
            total = max(fresh.total_steps, plan.warmup_steps + 1)
            plan = dataclasses.replace(plan, total_steps=total, how=fresh.how)
    return plan


def _open_run(out, settings, log):
    """Checks, the strategy, the precision and the run dir's stored settings, before
    any training: returns (strategy, run, precision, stored settings or None, config)."""
    check_train_options(settings)
    check_budget(settings)
    # First, before any other TensorFlow work (the multi-worker strategy needs that).
    strategy = make_strategy(settings.strategy)
    run = RunDir(worker_out(out, settings.strategy))
    # Refused before anything is written: a precision this device would only emulate.
    try:
        precision, why = resolve_precision(settings.mixed_precision, training_device())
    except PrecisionError as error:
        raise RunError(str(error)) from None
    log(f"Precision: {why}")
    run.path.mkdir(parents=True, exist_ok=True)
    stored = None
    if run.config.exists():
        stored = load_settings(run)
        check_same_run(stored, settings, run.config)
    config = {"tftransformer_version": __version__, **settings.to_json()}
    if not run.config.exists():
        write_json_atomic(run.config, config)  # a new run: its settings come first
    return strategy, run, precision, stored, config


def _fit_epochs(model, settings, tokenizers, train_pairs, val, callbacks, *, done, budget,
                stopped, verbose):
    """`model.fit` one epoch at a time from epoch `done`, until the epochs are done, the
    `budget` is spent or `stopped()` (NaN, collapse) says the run stops."""
    for epoch in range(done, settings.epochs):
        step = int(model.optimizer.iterations.numpy())
        # Every invocation trains at least one step unless the step budget is spent.
        reason = budget.exhausted(step, time_counts=epoch > done)
        if reason:
            budget.stopped_by = reason
            break
        # Deviation from tutorial: the tutorial's `shuffle` draws a new order at
        # every pass through the data, so a run resumed at epoch k would see other
        # batches than an uninterrupted one. Here epoch k's order depends only on
        # (seed, k), and with the restored weights, optimizer and dropout seeds a
        # resumed run trains exactly as an uninterrupted one.
        train = make_batches_for(
            settings, tokenizers, train_pairs, seed=epoch_seed(settings.seed, epoch)
        )
        with warnings.catch_warnings():  # for this call only, never process-wide
            if settings.bucket:
                # Bucketed batches have no known count, so Keras notes the end of every
                # epoch's data as "ran out of data"; nothing is cut short.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                train,
                epochs=settings.epochs,
                initial_epoch=epoch,
                validation_data=val,
                shuffle=False,  # the tf.data pipeline shuffles (make_batches)
                callbacks=[*callbacks, _EndFitAtEpochEnd()],
                verbose=verbose,
            )
        if stopped():
            break


def _finish(model, run, settings, tokenizers, budget, backup, guard, plan, val, log):
    """After the last epoch: refuse a NaN or collapsed run, report a spent budget, keep
    the best weights (`--keep best`) and write `model.keras` and `history.json`."""
    raise_if_stopped_on_nan(backup)
    if guard.fired:
        raise RunError(collapse_report(guard, backup, plan))
    if budget.stopped_by:
        log(budget_report(budget, settings, int(model.optimizer.iterations.numpy()),
                          backup.epochs_done, plan))  # fmt: skip
    if settings.keep == "best" and backup.history:
        score = validation_chrf(model, tokenizers, settings)
        keep_best(model, run, backup.history, val, log=log, score=score)
    save_model_atomic(model, run.model)
    write_json_atomic(run.history, backup.history)


class _EndFitAtEpochEnd(keras.callbacks.Callback):
    # `train_run` calls `fit` once per epoch (each epoch has its own data order).
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def train_run(
    out,
    settings: TrainSettings,
    verbose=1,
    save_every=None,
    extra_callbacks=(),
    log=print,
):
    """Train into run dir `out` (creating or resuming it); returns (model, tokenizers, history).

    (Longer than most functions: it is the job's sequence, read top to bottom: settings,
    tokenizers, batches, the schedule plan, the model, its callbacks, the epochs, the end.)

    With `settings.max_time` / `max_steps`, training stops at the first step past
    the budget (see `TrainingBudget`); the last weights are saved as usual and a
    rerun continues with the next epoch. The tutorial's learning-rate schedule
    depends only on the step, so it stays the same: a budget shorter than
    `warmup_steps` simply ends during warm-up (and says so).
    """
    budget = TrainingBudget(settings.max_time, settings.max_steps)
    strategy, run, precision, stored, config = _open_run(out, settings, log)
    keras.utils.set_random_seed(settings.seed)
    tokenizers = prepare_tokenizers(run, settings, log=log)
    # Each split is read once; only the train batches' order changes per epoch.
    train_pairs = take(load_corpus(settings.corpus, "train"), settings.limit)
    val_pairs = take(load_corpus(settings.corpus, "validation"), settings.limit)
    # Deviation from tutorial: validation batches keep the corpus order (the tutorial
    # shuffles them too); the validation loss does not depend on the order.
    val = make_batches_for(settings, tokenizers, val_pairs)
    train = make_batches_for(settings, tokenizers, train_pairs, seed=settings.seed)
    # "auto" is stored as asked (each machine decides); the model gets the decision.
    steps_per_epoch = count_batches(train)
    plan = resume_plan(stored, settings, steps_per_epoch)
    config["schedule_plan"] = plan.to_json()
    schedule = plan.schedule(settings.hparams.d_model)
    model = build_model(dataclasses.replace(settings, mixed_precision=precision), tokenizers,
                        strategy, schedule)  # fmt: skip
    history = restore_backup(run, model)
    require_run_space(run, model, settings.epochs)
    # A rerun updates config.json (e.g. more epochs) only once its backup has loaded,
    # so a run dir that cannot resume is left exactly as it was.
    write_json_atomic(run.config, config)
    log(f"Learning rate: {plan.describe()}")
    planner = []
    if settings.max_time is not None and plan.kind == "auto":

        def record(new_plan):
            config["schedule_plan"] = new_plan.to_json()
            write_json_atomic(run.config, config)
            log(f"Learning rate: {new_plan.describe()}")

        planner = [StepTimePlanner(schedule, plan, budget, settings, count_batches(val),
                                   steps_per_epoch, on_plan=record)]  # fmt: skip
    done = len(next(iter(history.values()), []))
    if done:
        log(
            f"Resuming {run.path} after epoch {done} "
            f"(optimizer step {int(model.optimizer.iterations.numpy())})"
        )

    guard = CollapseGuard(unigram_accuracy(val), history=history, log=log)
    backup = RunBackup(run, history=history, save_every=save_every,
                       healthy=lambda: guard.fired is None)  # fmt: skip
    callbacks = [
        budget,  # first: it adds steps and seconds to the logs RunBackup records
        *planner,
        guard,  # before RunBackup and TerminateOnNaN: a collapsed epoch is never backed up
        backup,
        keras.callbacks.TensorBoard(log_dir=str(run.logs)),
        keras.callbacks.TerminateOnNaN(),
        *extra_callbacks,
    ]
    prepare_fit(model, strategy, train)
    _fit_epochs(model, settings, tokenizers, train_pairs, val, callbacks, done=done,
                budget=budget, verbose=verbose,
                stopped=lambda: backup.stopped_on_nan or budget.stopped_by or guard.fired)
    _finish(model, run, settings, tokenizers, budget, backup, guard,
            planner[0].plan if planner else plan, val, log)
    return model, tokenizers, backup.history
