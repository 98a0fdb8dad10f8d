"""`train --max-time` / `--max-steps`: a clean stop at the budget, recorded, resumable."""

import json

import pytest
from conftest import TINY_HPARAMS, TINY_TRAIN_FLAGS

from tftransformer._files import RunError
from tftransformer.cli import main
from tftransformer.cli.train import duration
from tftransformer.config import TransformerConfig
from tftransformer.runs.paths import RunDir
from tftransformer.runs.train import TrainingBudget, TrainSettings, format_seconds, train_run

# 24 pairs in batches of 8: 3 optimizer steps per epoch.
# The tutorial's schedule and kept weights: a budget shorter than its warm-up says so.
TINY = dict(limit=24, batch_size=8, warmup_steps=10, max_tokens=24, schedule="tutorial",
            keep="last", hparams=TransformerConfig(**TINY_HPARAMS))  # fmt: skip


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_budget_logic_with_a_fake_clock():
    clock = FakeClock()
    budget = TrainingBudget(max_seconds=60, max_steps=50, clock=clock)
    assert budget.exhausted(10) is None
    clock.now += 59.9
    assert budget.exhausted(10) is None
    clock.now += 0.1
    assert budget.exhausted(10) == "max_time"
    assert budget.exhausted(10, time_counts=False) is None
    assert budget.exhausted(50, time_counts=False) == "max_steps"
    assert TrainingBudget(clock=clock).exhausted(10**9) is None  # no budget


@pytest.mark.parametrize(
    "text, seconds",
    [("90", 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("1.5h", 5400), ("0.5s", 0.5)],
)
def test_durations(text, seconds):
    assert duration(text) == seconds
    assert duration(format_seconds(seconds)) == seconds
    if seconds < 60:
        assert format_seconds(seconds) == f"{seconds:g}s"  # "0.5s" stays "0.5s", not "0s"


def test_step_budget_stops_mid_epoch_records_and_resumes(tmp_path):
    out = tmp_path / "run"
    printed = []
    settings = TrainSettings(epochs=5, max_steps=4, **TINY)
    model, _tokenizers, history = train_run(out, settings, verbose=0, log=printed.append)
    # Epoch 1: steps 1-3; epoch 2 stops after its first step (4), validated and backed up.
    assert history["steps"] == [3.0, 4.0] and history["budget_stopped"] == [0.0, 1.0]
    assert len(history["val_loss"]) == 2 and int(model.optimizer.iterations.numpy()) == 4
    assert history["train_seconds"][0] < history["train_seconds"][1]
    run = RunDir(out)
    assert json.loads(run.history.read_text()) == history
    assert json.loads(run.config.read_text())["max_steps"] == 4
    assert run.model.exists()
    assert printed[-1].startswith("Stopped by --max-steps 4 after ")
    assert "optimizer step 4, in epoch 2 of 5" in printed[-1]
    assert "still warming up (step 4 of 10" in printed[-1]
    # A bigger budget continues with the next epoch.
    more = TrainSettings(epochs=5, max_steps=7, **TINY)
    _model, _tokenizers, history = train_run(out, more, verbose=0, log=printed.append)
    assert history["steps"] == [3.0, 4.0, 7.0] and history["budget_stopped"] == [0.0, 1.0, 1.0]
    # A spent budget trains nothing more.
    _model, _tokenizers, again = train_run(out, more, verbose=0, log=printed.append)
    assert again == history
    # A time budget already spent when training starts still trains one step (never nothing).
    timed = TrainSettings(epochs=5, max_time=1e-3, **TINY)
    model, _tokenizers, history = train_run(out, timed, verbose=0, log=printed.append)
    assert history["steps"] == [3.0, 4.0, 7.0, 8.0]
    assert history["budget_stopped"] == [0.0, 1.0, 1.0, 1.0]
    assert int(model.optimizer.iterations.numpy()) == 8
    assert printed[-1].startswith("Stopped by --max-time 0.001s after ")


def test_bad_budgets_are_named(tmp_path, capsys):
    with pytest.raises(RunError, match="--max-steps must be a positive integer or null, got 0"):
        train_run(tmp_path / "r", TrainSettings(max_steps=0, **TINY), verbose=0)
    assert main(["train", "--out", str(tmp_path / "r2"), "--max-time", "soon"]) == 2
    assert "--max-time: expected a duration" in capsys.readouterr().err
    config = {**TrainSettings(**TINY).to_json(), "max_time": "1h"}
    with pytest.raises(RunError, match="c.json: max_time must be a positive number or null, "
                                       "got '1h'"):  # fmt: skip
        TrainSettings.from_json(config, source="c.json")


def test_cli_budget_run_prints_precision_stop_and_scores(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "4", "--max-steps", "2",
            "--mixed-precision", "auto", *TINY_TRAIN_FLAGS]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Precision: " in printed and "(auto" in printed
    assert "Stopped by --max-steps 2 after" in printed
    assert "Test BLEU" in printed or "BLEU" in printed  # evaluated as usual
    config = json.loads(RunDir(out).config.read_text())
    assert config["max_steps"] == 2 and config["mixed_precision"] == "auto"
