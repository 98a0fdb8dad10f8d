"""The run's learning-rate schedule: auto (fitted to the run) or the tutorial's; recipes; resume."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_HPARAMS

from tftransformer._files import RunError
from tftransformer.cli.main import build_parser
from tftransformer.cli.train import recipe_settings
from tftransformer.config import TransformerConfig
from tftransformer.runs.schedule import (
    FINAL_FRACTION,
    MAX_WARMUP_STEPS,
    PEAK_RATE,
    RunSchedule,
    SchedulePlan,
    StepTimePlanner,
    plan_schedule,
)
from tftransformer.runs.train import (
    TrainingBudget,
    TrainSettings,
    resume_plan,
    run_optimizer,
    train_run,
)
from tftransformer.training import CustomSchedule


def rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


@pytest.mark.parametrize("epochs, steps_per_epoch", [(20, 56), (3, 7), (400, 100)])
def test_auto_plan_warms_up_to_the_capped_peak_and_decays_to_the_planned_end(
    epochs, steps_per_epoch
):
    plan = plan_schedule(TrainSettings(epochs=epochs), steps_per_epoch)
    total = epochs * steps_per_epoch
    assert plan.kind == "auto" and plan.total_steps == total
    assert plan.warmup_steps == max(1, min(MAX_WARMUP_STEPS, round(0.08 * total)))
    schedule = plan.schedule(d_model=128)
    warmup = plan.warmup_steps
    assert float(schedule(0)) == 0.0
    np.testing.assert_allclose(float(schedule(warmup)), PEAK_RATE, rtol=1e-6)  # the peak
    np.testing.assert_allclose(float(schedule(warmup // 2)), PEAK_RATE * (warmup // 2) / warmup,
                               rtol=1e-5)  # linear warm-up  # fmt: skip
    every = rates(schedule, range(0, total + 50, max(1, total // 200)))
    assert every.max() <= PEAK_RATE * (1 + 1e-6)  # the cap holds at every step
    # The decay ends at the planned end, and the rate stays there.
    end = PEAK_RATE * FINAL_FRACTION
    np.testing.assert_allclose(rates(schedule, [total, total + 1, 10 * total]), end, rtol=1e-5)
    assert float(schedule(total - 1)) > end
    decay = range(warmup, total + 1, max(1, total // 300))
    assert np.all(np.diff(rates(schedule, decay)) <= 1e-12)  # monotone decay


def test_max_steps_and_peak_rate_shape_the_plan():
    plan = plan_schedule(TrainSettings(epochs=20, max_steps=100, peak_rate=5e-4), 56)
    assert (plan.total_steps, plan.warmup_steps, plan.peak_rate) == (100, 8, 5e-4)
    assert plan.final_rate == pytest.approx(5e-5)
    given = plan_schedule(TrainSettings(epochs=2, warmup_steps=30), 10)
    assert (given.total_steps, given.warmup_steps) == (20, 19)  # warm-up ends before the end


def test_run_schedule_round_trips_through_a_keras_config():
    schedule = RunSchedule(1e-3, 10, 100)
    revived = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(revived, RunSchedule)
    assert revived.get_config() == schedule.get_config()
    steps = [0, 3, 10, 57, 100, 130]
    np.testing.assert_array_equal(rates(revived, steps), rates(schedule, steps))


def test_replan_changes_the_curve_without_a_new_schedule():
    schedule = RunSchedule(1e-3, 10, 100)
    schedule.replan(4, 40)
    assert schedule.get_config()["warmup_steps"] == 4 and schedule.total_steps == 40
    np.testing.assert_allclose(float(schedule(4)), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(40)), 1e-4, rtol=1e-5)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedule.replan(40, 40)


def _planner(max_time, steps_per_epoch, val_batches):
    """A `StepTimePlanner` for 100 epochs under `max_time` seconds, on a fake clock.

    Returns (now: the clock's one-element list to set, schedule, recorded plans, planner).
    """
    now = [0.0]
    clock = lambda: now[0]
    settings = TrainSettings(epochs=100, max_time=max_time)
    plan = plan_schedule(settings, steps_per_epoch=steps_per_epoch)  # provisional: 100 epochs
    schedule = plan.schedule(d_model=16)
    budget = TrainingBudget(max_seconds=max_time, clock=clock)
    recorded = []
    planner = StepTimePlanner(schedule, plan, budget, settings, val_batches=val_batches,
                              steps_per_epoch=steps_per_epoch, on_plan=recorded.append,
                              clock=clock)  # fmt: skip
    return now, schedule, recorded, planner


def test_step_time_planner_fits_the_end_to_the_time_left():
    now, schedule, recorded, planner = _planner(130.0, steps_per_epoch=10, val_batches=3)
    now[0] = 30.0  # 30 s gone (tokenizers, tracing), then 0.5 s per step
    new = planner.replan(step=13, seconds_per_step=0.5)
    # 100 s left at 0.5 s per step, plus validation: 3 batches / 10 steps / 3 = 10% per step.
    assert new.total_steps == 13 + int(100 / (0.5 * 1.1)) == 194
    assert new.warmup_steps == round(0.08 * 194)
    assert schedule.total_steps == 194 and recorded == [new]
    assert "0.5 s per step" in new.how and "100 s of --max-time left" in new.how
    # Faster than the epochs allow: the epochs' plan stays the end.
    assert planner.replan(step=13, seconds_per_step=1e-4).total_steps == 1000


def test_the_tutorial_recipe_is_the_tutorials_training_exactly():
    args = build_parser().parse_args(["train", "--recipe", "tutorial"])
    chosen = recipe_settings(args)
    assert chosen == dict(epochs=20, tokenizer="wordpiece", bucket=False, tokens_per_batch=None,
                          batch_size=64, mixed_precision=None, schedule="tutorial",
                          warmup_steps=4000, keep="last", label_smoothing=0.0,
                          hparams=TransformerConfig())  # fmt: skip
    # The tutorial's model: its sizes and dropout (TransformerConfig's defaults are the
    # tutorial's "Hyperparameters"), no label smoothing.
    assert chosen["hparams"].dropout_rate == 0.1 and TransformerConfig().num_layers == 4
    settings = TrainSettings(**chosen)
    optimizer = run_optimizer(settings)
    tutorial = CustomSchedule(settings.hparams.d_model, 4000)
    steps = [1, 100, 3999, 4000, 4001, 40000]
    used = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert isinstance(used, CustomSchedule) and used.get_config() == tutorial.get_config()
    np.testing.assert_array_equal(rates(used, steps), rates(tutorial, steps))
    ours = plan_schedule(settings, steps_per_epoch=56).schedule(settings.hparams.d_model)
    assert isinstance(ours, CustomSchedule) and ours.get_config() == tutorial.get_config()
    np.testing.assert_array_equal(rates(ours, steps), rates(tutorial, steps))
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.98, 1e-9)
    # A flag given beside the recipe still wins.
    args = build_parser().parse_args(["train", "--recipe", "tutorial", "--bucket",
                                      "--dropout-rate", "0.2"])  # fmt: skip
    assert recipe_settings(args)["bucket"] is True
    assert recipe_settings(args)["hparams"].dropout_rate == 0.2


def test_defaults_without_a_recipe_are_the_settings_defaults():
    chosen = recipe_settings(build_parser().parse_args(["train"]))
    defaults = TrainSettings()
    assert chosen == {name: getattr(defaults, name) for name in chosen}
    assert chosen["schedule"] == "auto" and chosen["keep"] == "best"
    assert chosen["label_smoothing"] == 0.1 and chosen["hparams"].dropout_rate == 0.0
    assert chosen["batch_size"] == 32
    # 40 epochs, 16-bit where the device computes it natively (the tutorial: 20, float32).
    assert chosen["epochs"] == 40 and chosen["mixed_precision"] == "auto"
    assert chosen["hparams"] == TransformerConfig(dropout_rate=0.0)  # the tutorial's sizes
    # The tutorial's float32 by name, and any epochs, beside the defaults.
    args = build_parser().parse_args(["train", "--mixed-precision", "float32", "--epochs", "3"])
    assert recipe_settings(args)["mixed_precision"] is None
    assert recipe_settings(args)["epochs"] == 3


def test_a_config_from_before_the_schedule_setting_reads_as_it_was_trained():
    old = {"corpus": "embedded", "epochs": 20, "batch_size": 64, "max_tokens": 128,
           "vocab_size": 8000, "min_token_count": 10, "bucket": False, "tokenizer": "wordpiece",
           "warmup_steps": 4000, "seed": 0, "limit": None,
           "hparams": {"num_layers": 4, "d_model": 128, "dff": 512, "num_heads": 8,
                       "dropout_rate": 0.1}}  # fmt: skip
    settings = TrainSettings.from_json(old)
    assert (settings.schedule, settings.warmup_steps, settings.keep) == ("tutorial", 4000, "last")
    assert settings.label_smoothing == 0.0 and settings.hparams.dropout_rate == 0.1
    assert settings.mixed_precision is None and settings.epochs == 20  # float32, as trained
    schedule = plan_schedule(settings, steps_per_epoch=56).schedule(128)
    assert schedule.get_config() == {"d_model": 128, "warmup_steps": 4000}
    # ... and one from before the warm-up setting too (the tutorial's 4000).
    del old["warmup_steps"]
    assert plan_schedule(TrainSettings.from_json(old), 56).warmup_steps == 4000


@pytest.mark.parametrize(
    "field, value, message",
    [("schedule", "linear", "schedule must be one of auto, tutorial"),
     ("peak_rate", 2.0, "peak_rate must be a number in (0, 1)"),
     ("warmup_steps", 0, "warmup_steps must be a positive integer"),
     ("keep", "first", "keep must be one of best, last"),
     ("schedule_plan", {"kind": "auto", "bogus": 1}, "unknown field")],
)  # fmt: skip
def test_bad_schedule_settings_name_the_field(field, value, message):
    with pytest.raises(RunError, match=rf"cfg\.json: .*{message}".replace("(", r"\(")
                       .replace(")", r"\)")):  # fmt: skip
        TrainSettings.from_json({field: value}, source="cfg.json")


def test_resume_reuses_the_stored_plan_and_extends_only_its_end():
    stored = TrainSettings(epochs=10)
    stored.schedule_plan = plan_schedule(stored, 20).to_json()  # 200 steps, warm-up 16
    same = resume_plan(stored, TrainSettings(epochs=10), steps_per_epoch=21)
    assert same == SchedulePlan.from_json(stored.schedule_plan)  # not re-planned from 21 steps
    longer = resume_plan(stored, TrainSettings(epochs=20), steps_per_epoch=20)
    assert (longer.total_steps, longer.warmup_steps) == (400, 16)
    lower = resume_plan(stored, TrainSettings(epochs=10, peak_rate=5e-4), steps_per_epoch=20)
    assert lower.peak_rate == 5e-4 and lower.final_rate == pytest.approx(5e-5)


class _RecordRates(keras.callbacks.Callback):
    def __init__(self, stop_after_epoch=None):
        super().__init__()
        self.rates, self.stop_after_epoch = [], stop_after_epoch

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.rates.append(float(optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_after_epoch:  # after RunBackup saved the epoch: a Ctrl-C
            raise KeyboardInterrupt


def test_a_resumed_run_continues_the_same_learning_rate_curve_exactly(tmp_path):
    settings = TrainSettings(epochs=3, batch_size=8, limit=24, max_tokens=24,
                             hparams=TransformerConfig(**TINY_HPARAMS))  # fmt: skip
    whole = _RecordRates()
    train_run(tmp_path / "whole", settings, verbose=0, extra_callbacks=[whole], log=lambda _: 0)
    first = _RecordRates(stop_after_epoch=0)
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path / "cut", settings, verbose=0, extra_callbacks=[first],
                  log=lambda _: 0)  # fmt: skip
    rest = _RecordRates()
    train_run(tmp_path / "cut", settings, verbose=0, extra_callbacks=[rest], log=lambda _: 0)
    assert len(whole.rates) == 9 and whole.rates[0] == 0.0 and max(whole.rates) > 0
    assert first.rates + rest.rates == whole.rates  # the same curve, step for step
    plans = [json.loads((tmp_path / name / "config.json").read_text())["schedule_plan"]
             for name in ("whole", "cut")]  # fmt: skip
    assert plans[0] == plans[1] and plans[0]["total_steps"] == 9
    # The .keras file records the same schedule.
    model = keras.models.load_model(tmp_path / "cut" / "model.keras")
    assert model.optimizer.get_config()["learning_rate"]["config"]["total_steps"] == 9


def test_step_time_planner_corrects_the_end_at_epoch_ends_from_all_inclusive_time():
    now, schedule, recorded, planner = _planner(600.0, steps_per_epoch=50, val_batches=5)

    class Model:  # what the callback reads: the optimizer's step count
        class optimizer:
            iterations = tf.Variable(0, dtype=tf.int64)

    planner.set_model(Model())
    for step in range(1, 14):  # steps 3-13 at 0.5 s each, after 20 s of setup and tracing
        Model.optimizer.iterations.assign(step)
        now[0] = 20.0 + 0.5 * max(0, step - 3)
        planner.on_train_batch_end(step - 1)
    first = planner.plan
    # 575 s left at 0.5 s per step plus a validation share of 5 / 50 / 3.
    assert first.total_steps == 13 + int(575 / (0.5 * (1 + 5 / 50 / 3))) == 1125
    # The first epoch ends at step 50 after 60 s of steps 3-50: validation and the backup
    # made each step cost 1.2 s in all, so the end moves in: 50 + 510 s / (60 s / 47 steps).
    Model.optimizer.iterations.assign(50)
    now[0] = 20.0 + 60.0
    planner.on_epoch_end(0)
    second = planner.plan
    assert second.total_steps == 50 + int(520 / (60.0 / 47)) == 457
    assert second.warmup_steps == first.warmup_steps == 90  # only the decay changes
    assert schedule.total_steps == 457 and recorded == [first, second]
    assert "re-planned after epoch 1" in second.how and "with validation and backups" in second.how
    # An end that moves by 2% or less is left alone.
    Model.optimizer.iterations.assign(100)
    now[0] = 20.0 + 60.0 * 97 / 47
    assert planner.replan_at_epoch_end(2, 100, 60.0 / 47) is None and planner.plan == second


def test_a_max_time_run_plans_from_its_measured_step_time_and_records_it(tmp_path):
    printed = []
    settings = TrainSettings(epochs=6, batch_size=8, limit=24, max_tokens=24, max_time=3600.0,
                             hparams=TransformerConfig(**TINY_HPARAMS))  # fmt: skip
    train_run(tmp_path / "run", settings, verbose=0, log=printed.append)
    plan = json.loads((tmp_path / "run" / "config.json").read_text())["schedule_plan"]
    # 3 steps an epoch: timed over this invocation's steps 4-13; the hour left allows far more
    # than the 18 steps the epochs have, so the epochs' end stays the plan's.
    assert "s per step measured over steps 4-13" in plan["how"]
    assert plan["total_steps"] == 18 and plan["warmup_steps"] == 1
    assert sum(line.startswith("Learning rate: ") for line in printed) == 2
