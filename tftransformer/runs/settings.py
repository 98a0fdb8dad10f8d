"""The settings of a training run: what `config.json` holds, and every check on it.

`TrainSettings` is everything that defines a run; `from_json` reads a run's
`config.json` (runs from before a setting existed read as they were trained)
and `check_same_run` refuses a rerun that would train another model.
"""

from __future__ import annotations

import dataclasses

from tftransformer._checks import positive_int, positive_number
from tftransformer._files import RunError, read_json
from tftransformer.config import TransformerConfig
from tftransformer.data import MAX_TOKENS
from tftransformer.runs.keep import KEEP
from tftransformer.runs.paths import RunDir
from tftransformer.runs.schedule import SCHEDULES, SchedulePlan
from tftransformer.runs.train_options import check_train_options
from tftransformer.tokenizers import MIN_TOKEN_COUNT, VOCAB_SIZE

# 40 epochs with bf16 where the CPU computes it natively: measured on the embedded corpus,
# one core per run, 34.14 / 37.04 / 36.81 test BLEU on seeds 0-2 in 23.5-25 minutes, against a
# mean of 26.31 (five draws) at the tutorial's 20 epochs in float32, whose validation accuracy
# stopped near 0.64 for want of steps, not of data (docs/training.md, "Epochs and
# precision"). On a CPU without bf16, `auto` is float32 (35.76 BLEU, seed 0), whose 40 epochs
# took 26 min on 2 cores.
# Deviation from tutorial: the tutorial trains 20 epochs in float32 (`--recipe tutorial`).
DEFAULT_EPOCHS = 40
DEFAULT_MIXED_PRECISION = "auto"
# Regularization of the default recipe, measured (docs/training.md, "Results"): label
# smoothing 0.1 raised test BLEU on seeds 0 and 1; dropout did not pay within 20 epochs. Every
# run measured before 2026-12-06 trained without dropout (Keras 3's fit did not turn it on,
# see Transformer.call), and once dropout ran, 0.3 learned too slowly for 20 epochs of this
# corpus. Deviation from tutorial: the tutorial trains with dropout 0.1 and no label
# smoothing (`--recipe tutorial` restores both).
DEFAULT_DROPOUT_RATE = 0.0
DEFAULT_LABEL_SMOOTHING = 0.1
# Batches of 32 sentences: twice the optimizer steps in the same 20 epochs, which is where the
# small corpus gained most (docs/training.md, "Results"; seeds 0 and 1).
# Deviation from tutorial: the tutorial's batches are 64 (`--recipe tutorial`).
DEFAULT_BATCH_SIZE = 32


def default_hparams() -> TransformerConfig:
    """The tutorial's model sizes with the default recipe's dropout."""
    return TransformerConfig(dropout_rate=DEFAULT_DROPOUT_RATE)


@dataclasses.dataclass
class TrainSettings:
    """Everything that defines a run; stored as RUN/config.json."""

    corpus: str = "embedded"
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    max_tokens: int = MAX_TOKENS
    vocab_size: int = VOCAB_SIZE
    min_token_count: int = MIN_TOKEN_COUNT
    bucket: bool = False
    # "sentencepiece": cased and reversible (tftransformer.vocabularies); "wordpiece": the
    # tutorial's lower-casing CustomTokenizer; "wordpiece-cased". Chosen by measurement
    # (README, "Which tokenizer by default"): on the embedded corpus, same model, epochs and
    # seed, SentencePiece scored 19.84 BLEU / 39.85 chrF on raw references, WordPiece 10.66 /
    # 32.88 (greedy). Runs from before this setting are WordPiece (`from_json`).
    # Deviation from tutorial: the tutorial tokenizes with WordPiece ("wordpiece"; `tutorials/`
    # keep it).
    tokenizer: str = "sentencepiece"
    # One vocabulary learned from both languages, used by both sides (tftransformer.vocabularies);
    # the tutorial learns one per language. Runs from before this setting are separate.
    shared_vocabulary: bool = False
    # Training options (issue 7); off by default, i.e. the tutorial's training, except
    # mixed_precision ("auto", measured: see DEFAULT_EPOCHS).
    tokens_per_batch: int | None = None  # token budget per bucketed batch
    # None (float32) | "auto" (picked from the device, see runs.precision) | "bf16" | "fp16".
    # A config.json from before this setting is float32 (`from_json`); later ones store it.
    # Deviation from tutorial: "auto" by default (see DEFAULT_EPOCHS); the tutorial's float32
    # is `--mixed-precision float32` or `--recipe tutorial`.
    mixed_precision: str | None = DEFAULT_MIXED_PRECISION
    jit_compile: bool = False
    # Runs from before this default are 0 (`from_json`).
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    strategy: str = "default"  # default | mirrored | multiworker
    # The learning-rate schedule (runs.schedule): "auto" fits warm-up, peak and decay to the
    # run's planned steps; "tutorial" is `CustomSchedule(d_model, warmup_steps=4000)`. Runs
    # from before this setting are "tutorial" (`from_json`).
    # Deviation from tutorial: "auto" by default (docs/training.md, "The schedule").
    schedule: str = "auto"
    # None: 4000 for "tutorial" (the tutorial's), derived from the plan for "auto".
    warmup_steps: int | None = None
    peak_rate: float | None = None  # "auto" only; None: runs.schedule.PEAK_RATE
    # The plan the run trains with (`runs.schedule.SchedulePlan`), written by `train_run`
    # once known, so that a resumed run rebuilds exactly the same curve.
    schedule_plan: dict | None = None
    # What model.keras holds at the end (runs.keep): "best" (of the last, the best epoch's
    # and the last checkpoints' average, by validation chrF) or "last" (the tutorial's).
    # Deviation from tutorial: "best" by default. Runs from before this setting are "last".
    keep: str = "best"
    seed: int = 0
    limit: int | None = None  # use only the first N examples of each split
    # A budget for one `train` invocation (see `TrainingBudget`): wall seconds, and/or a
    # total optimizer step count. None: train all `epochs`.
    max_time: float | None = None
    max_steps: int | None = None
    hparams: TransformerConfig = dataclasses.field(default_factory=default_hparams)

    # Settings a rerun may change: they change how the run computes, or for how long.
    RESUMABLE_CHANGES = ("epochs", "strategy", "jit_compile", "max_time", "max_steps",
                         "peak_rate", "schedule_plan", "keep")  # fmt: skip

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["hparams"] = self.hparams.to_dict()
        return data

    @classmethod
    def from_json(cls, data: dict, source="config.json", for_training=True) -> TrainSettings:
        data = dict(data)
        data.pop("tftransformer_version", None)
        # A config.json from before the `tokenizer` setting is a WordPiece run (the default
        # then); the dataclass default changed since.
        data.setdefault("tokenizer", "wordpiece")
        # ... and one from before the `schedule` setting trained with the tutorial's.
        data.setdefault("schedule", "tutorial")
        data.setdefault("keep", "last")
        data.setdefault("label_smoothing", 0.0)
        # ... and one from before the `mixed_precision` setting trained in float32.
        data.setdefault("mixed_precision", None)
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
                    "seed")  # fmt: skip
        for name in integers:
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise RunError(f"{source}: {name} must be a non-negative integer, got {value!r}")
        for name in ("bucket", "shared_vocabulary"):
            value = getattr(settings, name)
            if not isinstance(value, bool):
                raise RunError(f"{source}: {name} must be true or false, got {value!r}")
        if not isinstance(settings.corpus, str):
            raise RunError(f"{source}: corpus must be a string, got {settings.corpus!r}")
        if settings.limit is not None and (
            isinstance(settings.limit, bool) or not isinstance(settings.limit, int)
        ):
            raise RunError(f"{source}: limit must be an integer or null, got {settings.limit!r}")
        if for_training:
            check_train_options(settings, source)
            check_budget(settings, source)
            check_schedule(settings, source)
        return settings

    def plan(self) -> SchedulePlan | None:
        """The stored schedule plan, or None before the run first planned it."""
        return None if self.schedule_plan is None else SchedulePlan.from_json(self.schedule_plan)


def load_settings(run: RunDir, for_training=True) -> TrainSettings:
    """RUN/config.json as settings; `for_training=False` (a finished run loaded to translate,
    evaluate or export) skips the checks of what only training reads."""
    return TrainSettings.from_json(read_json(run.config), source=str(run.config),
                                   for_training=for_training)  # fmt: skip


def check_same_run(stored, wanted, source) -> None:
    """A rerun must train the same model (any settings dataclass).

    Only the fields in the class's `RESUMABLE_CHANGES` (default: `epochs`) may change.
    """
    for field in dataclasses.fields(stored):
        if field.name in getattr(stored, "RESUMABLE_CHANGES", ("epochs",)):
            continue
        old, new = getattr(stored, field.name), getattr(wanted, field.name)
        if old != new:
            raise RunError(
                f"{source}: this run was trained with {field.name}={old!r}, not {new!r}; "
                "use the same settings to resume, or a new --out"
            )


def check_schedule(settings, source=None) -> None:
    """`RunError` naming `schedule` / `warmup_steps` / `peak_rate` / `schedule_plan` if unusable."""
    where = (lambda name: f"--{name.replace('_', '-')}" if source is None
             else f"{source}: {name}")  # fmt: skip
    if settings.schedule not in SCHEDULES:
        raise RunError(f"{where('schedule')} must be one of {', '.join(SCHEDULES)}, "
                       f"got {settings.schedule!r}")  # fmt: skip
    positive_int(settings.warmup_steps, where("warmup_steps"), error=RunError, none_ok=True)
    peak = positive_number(settings.peak_rate, where("peak_rate"), error=RunError, none_ok=True,
                           below=1)  # fmt: skip
    if peak is not None:
        if settings.schedule != "auto":
            raise RunError(f"{where('peak_rate')} needs --schedule auto (the tutorial's "
                           "schedule takes its peak from d_model and --warmup-steps)")
    if settings.keep not in KEEP:
        raise RunError(f"{where('keep')} must be one of {', '.join(KEEP)}, got {settings.keep!r}")
    if settings.schedule_plan is not None:
        try:
            SchedulePlan.from_json(settings.schedule_plan, source or "schedule_plan")
        except ValueError as error:
            raise RunError(str(error)) from None


def check_budget(settings, source=None) -> None:
    """`RunError` naming `max_time` / `max_steps` when set to anything but a positive number."""
    for name, check in (("max_time", positive_number), ("max_steps", positive_int)):
        where = f"--{name.replace('_', '-')}" if source is None else f"{source}: {name}"
        check(getattr(settings, name), where, error=RunError, none_ok=True)
