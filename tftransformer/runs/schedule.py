"""The learning-rate schedule of a run: the tutorial's, or one fitted to the run's length.

`train --schedule tutorial` is the tutorial's `CustomSchedule(d_model, 4000)`:
its rate depends on the step alone, so a short run (the embedded corpus's 20
epochs are 1,120 steps) ends inside the 4,000-step warm-up and never reaches
the schedule's peak.

`train --schedule auto` (the default) plans the schedule from the run's planned
optimizer steps P (`plan_schedule`):

- linear warm-up from 0 over W = `WARMUP_FRACTION` x P steps (at least 1, at
  most 4,000, or `--warmup-steps` when given);
- to a peak rate of `PEAK_RATE` (or `--peak-rate`), the highest rate the
  post-norm tutorial model trained without collapsing on seeds 0-2
  (docs/training.md, "The peak rate");
- cosine decay to `FINAL_FRACTION` x peak at step P, held there after P.

That is Keras' own `CosineDecay` with `warmup_target` / `warmup_steps`
(`RunSchedule` only adds a config that round-trips through `.keras` files and
a `replan` for `--max-time`). P is `epochs x steps per epoch` (capped by
`--max-steps`); under `--max-time` it comes from the step time measured over
the first steps (`StepTimePlanner`). The plan is stored in `config.json`
(`schedule_plan`), so a resumed run rebuilds exactly the same curve.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import tensorflow as tf

from tftransformer.training import CustomSchedule

# Measured (docs/training.md, "The peak rate"): the tutorial model, batch 64, embedded corpus.
PEAK_RATE = 5e-4
WARMUP_FRACTION = 0.08
MAX_WARMUP_STEPS = 4000
FINAL_FRACTION = 0.1
TUTORIAL_WARMUP_STEPS = 4000
SCHEDULES = ("auto", "tutorial")


def _check_lengths(warmup_steps, total_steps):
    if warmup_steps < 1 or total_steps <= warmup_steps:
        raise ValueError(
            f"need 1 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}"
        )


@keras.saving.register_keras_serializable(package="tftransformer")
class RunSchedule(keras.optimizers.schedules.CosineDecay):
    """Linear warm-up to `peak_rate` over `warmup_steps`, cosine decay to `final_rate` at
    `total_steps` (Keras' `CosineDecay` with warm-up), then constant.

    Deviation from tutorial (default `--schedule auto`; `--schedule tutorial` keeps
    `CustomSchedule`): the curve is fitted to the run's planned length.

    The warm-up and decay lengths are held in non-trainable variables read at
    each step, so that `replan` (the `--max-time` estimate) changes them
    without tracing the training step again.
    """

    def __init__(self, peak_rate, warmup_steps, total_steps, final_rate=None, name="RunSchedule"):
        peak_rate = float(peak_rate)
        warmup_steps, total_steps = int(warmup_steps), int(total_steps)
        if not peak_rate > 0:
            raise ValueError(f"peak_rate must be positive, got {peak_rate!r}")
        _check_lengths(warmup_steps, total_steps)
        final_rate = FINAL_FRACTION * peak_rate if final_rate is None else float(final_rate)
        super().__init__(
            initial_learning_rate=0.0,
            decay_steps=total_steps - warmup_steps,
            alpha=final_rate / peak_rate,
            name=name,
            warmup_target=peak_rate,
            warmup_steps=warmup_steps,
        )
        self.peak_rate, self.final_rate = peak_rate, final_rate
        self._warmup = tf.Variable(float(warmup_steps), trainable=False, name="warmup_steps")
        self._decay = tf.Variable(float(total_steps - warmup_steps), trainable=False,
                                  name="decay_steps")  # fmt: skip
        # CosineDecay reads these two attributes at every call.
        self.warmup_steps, self.decay_steps = self._warmup, self._decay

    @property
    def total_steps(self) -> int:
        return int(self._warmup.numpy() + self._decay.numpy())

    def replan(self, warmup_steps: int, total_steps: int) -> None:
        """New warm-up and end steps (`StepTimePlanner`); takes effect at the next step."""
        _check_lengths(warmup_steps, total_steps)
        self._warmup.assign(float(warmup_steps))
        self._decay.assign(float(total_steps - warmup_steps))

    def get_config(self):
        return {
            "peak_rate": self.peak_rate,
            "warmup_steps": int(self._warmup.numpy()),
            "total_steps": self.total_steps,
            "final_rate": self.final_rate,
            "name": self.name,
        }


@dataclasses.dataclass
class SchedulePlan:
    """The schedule a run trains with, as stored in `config.json` (`schedule_plan`)."""

    kind: str  # "auto" | "tutorial"
    warmup_steps: int
    peak_rate: float | None = None  # auto only (the tutorial's peak follows from d_model)
    total_steps: int | None = None  # auto only: the planned last step
    final_rate: float | None = None
    how: str = ""  # how the plan was made, in words

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data, source="config.json") -> SchedulePlan:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: schedule_plan must be an object, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: schedule_plan: unknown field(s) {unknown}")
        try:
            plan = cls(**data)
        except TypeError as error:
            raise ValueError(f"{source}: schedule_plan: {error}") from None
        if plan.kind not in SCHEDULES:
            raise ValueError(f"{source}: schedule_plan: kind must be auto or tutorial")
        return plan

    def schedule(self, d_model: int):
        """The Keras schedule this plan describes."""
        if self.kind == "tutorial":
            return CustomSchedule(d_model, self.warmup_steps)
        return RunSchedule(self.peak_rate, self.warmup_steps, self.total_steps, self.final_rate)

    def describe(self) -> str:
        if self.kind == "tutorial":
            return (f"the tutorial's CustomSchedule (warm-up {self.warmup_steps} steps, then "
                    "inverse square-root decay)")  # fmt: skip
        return (f"warm-up {self.warmup_steps} steps to {self.peak_rate:.2g}, cosine decay to "
                f"{self.final_rate:.2g} at step {self.total_steps} ({self.how})")  # fmt: skip


def warmup_for(total_steps: int, warmup_steps: int | None = None) -> int:
    """The warm-up length of an auto plan of `total_steps` steps (`warmup_steps` if given)."""
    if warmup_steps is not None:
        return max(1, min(int(warmup_steps), total_steps - 1))
    return max(1, min(MAX_WARMUP_STEPS, round(WARMUP_FRACTION * total_steps), total_steps - 1))


def plan_schedule(settings, steps_per_epoch: int) -> SchedulePlan:
    """The schedule of a run with these settings and this many optimizer steps per epoch.

    For `--max-time` runs the plan's length is provisional (`epochs` x steps per
    epoch) until `StepTimePlanner` has measured the step time.
    """
    if settings.schedule == "tutorial":
        warmup = TUTORIAL_WARMUP_STEPS if settings.warmup_steps is None else settings.warmup_steps
        return SchedulePlan("tutorial", warmup, how="the tutorial's")
    total = settings.epochs * steps_per_epoch
    how = f"planned: {settings.epochs} epochs x {steps_per_epoch} steps"
    if settings.max_steps is not None and settings.max_steps < total:
        total, how = settings.max_steps, f"planned: --max-steps {settings.max_steps}"
    total = max(total, 2)
    peak = PEAK_RATE if settings.peak_rate is None else float(settings.peak_rate)
    return SchedulePlan(
        "auto",
        warmup_for(total, settings.warmup_steps),
        peak_rate=peak,
        total_steps=total,
        final_rate=FINAL_FRACTION * peak,
        how=how,
    )


class StepTimePlanner(keras.callbacks.Callback):
    """Under `--max-time`: fit the auto schedule's length to the time the budget leaves.

    It times optimizer steps `first` to `first + count` of this invocation (the
    first steps carry the tracing, so they are left out), then plans

        P = step now + (seconds left) / (seconds per step x (1 + validation share))

    where the validation share counts each validation batch as a third of a
    training step (a forward pass only). The warm-up is re-derived from P (or
    stays `--warmup-steps`); `on_plan(plan)` records the new plan (config.json).

    That first estimate leaves out what happens between steps (validation
    beyond the estimate above, epoch-end backups, a slower machine later): on
    the embedded corpus it was 25-30% optimistic. So at every epoch end the
    planner measures again, over everything since step `first` (steps,
    validation, backups): P = step now + seconds left / all-inclusive seconds
    per step, and re-plans when the end moves by more than `tolerance` of it.
    The warm-up keeps its first planned length (only the decay is stretched or
    shortened), and each re-plan is recorded like the first.

    When the estimate is still off: if steps turn out slower, the budget stops
    the run before the decay ends (the closing line says at which step of how
    many); if faster, the rate stays at its final value until the budget ends.
    """

    def __init__(self, schedule: RunSchedule, plan: SchedulePlan, budget, settings,
                 val_batches: int, steps_per_epoch: int, on_plan=None, first=3, count=10,
                 clock=None, tolerance=0.02):  # fmt: skip
        super().__init__()
        self.schedule, self.plan, self.budget, self.settings = schedule, plan, budget, settings
        self.most_steps = plan.total_steps  # the epochs' (or --max-steps') end bounds the plan
        self.val_share = val_batches / max(1, steps_per_epoch) / 3.0
        self.on_plan = on_plan
        self.first, self.count = first, count
        self.clock = clock or time.monotonic
        self.tolerance = tolerance
        self.seen = 0
        self.started = None
        self.started_step = None
        self.done = False

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        self.seen += 1
        if self.seen == self.first:
            self.started = self.clock()
            self.started_step = int(self.model.optimizer.iterations.numpy())
        elif self.seen == self.first + self.count:
            self.replan(int(self.model.optimizer.iterations.numpy()),
                        (self.clock() - self.started) / self.count)  # fmt: skip

    def on_epoch_end(self, epoch, logs=None):
        if not self.done or self.started_step is None:
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step - self.started_step >= self.count:
            seconds_per_step = (self.clock() - self.started) / (step - self.started_step)
            self.replan_at_epoch_end(epoch + 1, step, seconds_per_step)

    def _end(self, step: int, seconds_per_step: float, left: float) -> int:
        total = min(self.most_steps, step + int(left / seconds_per_step))
        return max(total, step + 1, 2)

    def replan(self, step: int, seconds_per_step: float) -> SchedulePlan:
        """The first plan, from the training steps' time alone (see the class docstring)."""
        self.done = True
        left = max(0.0, self.budget.max_seconds - self.budget.elapsed())
        total = self._end(step, seconds_per_step * (1.0 + self.val_share), left)
        warmup = warmup_for(total, self.settings.warmup_steps)
        return self._record(warmup, total, f"planned: {seconds_per_step:.3g} s per step measured "
                            f"over steps {step - self.count + 1}-{step}, {left:.0f} s of "
                            "--max-time left")  # fmt: skip

    def replan_at_epoch_end(self, epochs: int, step: int, seconds_per_step: float):
        """A later plan, from all-inclusive time per step; None when the end moved too little
        (or the epochs' end is reached: nothing is left to plan)."""
        if step + 1 >= self.most_steps:
            return None
        left = max(0.0, self.budget.max_seconds - self.budget.elapsed())
        total = self._end(step, seconds_per_step, left)
        if abs(total - self.plan.total_steps) <= self.tolerance * self.plan.total_steps:
            return None
        warmup = self.plan.warmup_steps  # kept: only the decay's length changes
        total = max(total, warmup + 1)
        return self._record(warmup, total, f"re-planned after epoch {epochs}: "
                            f"{seconds_per_step:.3g} s per step with validation and backups, "
                            f"{left:.0f} s of --max-time left")  # fmt: skip

    def _record(self, warmup: int, total: int, how: str) -> SchedulePlan:
        self.plan = dataclasses.replace(self.plan, warmup_steps=warmup, total_steps=total,
                                        how=how)  # fmt: skip
        self.schedule.replan(warmup, total)
        if self.on_plan is not None:
            self.on_plan(self.plan)
        return self.plan
