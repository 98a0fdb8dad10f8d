"""A budget for one `train` invocation: wall time and/or optimizer steps (`--max-time`,
`--max-steps`), and the line that says how a budget ended the run."""

from __future__ import annotations

import time

import keras

from tftransformer.runs.schedule import plan_schedule


class TrainingBudget(keras.callbacks.Callback):
    """Ends training at the first step past a wall-time or step budget.

    The clock starts when the budget is made (`train_run`'s start, so
    tokenizer building and tracing count); `max_steps` counts the run's
    optimizer steps, earlier invocations included. When the budget runs out
    mid-epoch, Keras still validates that (partial) epoch and calls the epoch
    end, so it is backed up and counted like any other. Every epoch end adds
    `steps` (the optimizer step reached), `train_seconds` (since the clock
    started) and `budget_stopped` (1.0 on the epoch the budget ended) to the
    logs, hence to `history.json`.
    """

    def __init__(self, max_seconds=None, max_steps=None, clock=None):
        super().__init__()
        self.max_seconds = max_seconds
        self.max_steps = max_steps
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self.stopped_by = None

    def elapsed(self) -> float:
        return self.clock() - self.start

    def exhausted(self, step, time_counts=True):
        """"max_steps" or "max_time" if that budget is spent at optimizer step `step`."""
        if self.max_steps is not None and step >= self.max_steps:
            return "max_steps"
        if time_counts and self.max_seconds is not None and self.elapsed() >= self.max_seconds:
            return "max_time"
        return None

    def on_train_batch_end(self, batch, logs=None):
        reason = self.exhausted(int(self.model.optimizer.iterations.numpy()))
        if reason:
            self.stopped_by = reason
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # the same dict the later callbacks (RunBackup) record
            logs["steps"] = float(self.model.optimizer.iterations.numpy())
            logs["train_seconds"] = round(self.elapsed(), 3)
            logs["budget_stopped"] = 1.0 if self.stopped_by else 0.0


def format_seconds(seconds) -> str:
    """90 -> "1m30s"; 5400 -> "1h30m"; 45 -> "45s"; 0.5 -> "0.5s" (as `--max-time` reads them)."""
    if float(seconds) < 60 and float(seconds) != round(float(seconds)):
        return f"{float(seconds):g}s"  # a fraction of a minute, not rounded away to "0s"
    seconds = round(float(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs or not seconds else ""]  # fmt: skip
    return "".join(parts)


def budget_report(budget: TrainingBudget, settings, step, epochs_done, plan=None) -> str:
    """The line `train` prints when a budget ended the run, with the schedule's state."""
    limit = (f"--max-time {format_seconds(settings.max_time)}" if budget.stopped_by == "max_time"
             else f"--max-steps {settings.max_steps}")  # fmt: skip
    line = (f"Stopped by {limit} after {budget.elapsed():.0f} s at optimizer step {step}, "
            f"in epoch {epochs_done} of {settings.epochs} (kept the last weights)")  # fmt: skip
    plan = plan or plan_schedule(settings, steps_per_epoch=1)
    if step < plan.warmup_steps:
        line += (f"; the learning rate was still warming up (step {step} of "
                 f"{plan.warmup_steps}: --warmup-steps sets it)")  # fmt: skip
    elif plan.kind == "auto" and step < plan.total_steps:
        line += (f"; the learning rate had not finished its decay (step {step} of "
                 f"{plan.total_steps} planned)")  # fmt: skip
    return line
