"""The `train` and `average` commands: their arguments, and the calls into `runs/`."""

from __future__ import annotations

import argparse
import math

from tftransformer.cli.common import (
    add_hparam_flags,
    add_tokenizer_options,
    hparams_from_args,
    positive_int,
    progress_bar,
    score_lines,
)


def _peak_rate(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _smoothing(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


_DURATION_UNITS = {"h": 3600, "m": 60, "s": 1}


def duration(text):
    """`--max-time`: seconds, or a duration such as 90s, 15m, 1h30m, 2h."""
    import re

    cleaned = text.strip().lower()
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?",
                         cleaned)  # fmt: skip
    if not cleaned or parts is None or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"expected a duration such as 90s, 15m or 1h30m, "
                                         f"got {text!r}")  # fmt: skip
    seconds = sum(float(v) * _DURATION_UNITS[u]
                  for v, u in zip(parts.groups(), "hms", strict=True) if v)  # fmt: skip
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return seconds


def add_budget_options(train) -> None:
    """`--max-time` / `--max-steps`: train for a budget instead of all epochs."""
    group = train.add_argument_group("training budget (default: all --epochs)")
    group.add_argument(
        "--max-time",
        type=duration,
        metavar="DURATION",
        help="stop at the first step past this wall time (90s, 15m, 1h30m; counted from the "
        "start of train, before the closing evaluation); the last weights are kept",
    )
    group.add_argument(
        "--max-steps",
        type=positive_int,
        metavar="N",
        help="stop once the run has taken N optimizer steps in all (warm-up is --warmup-steps)",
    )


def add_train_options(train) -> None:
    """The issue-7 flags of `tftransformer train`; all default to the tutorial's training."""
    group = train.add_argument_group("speed and scale-out (off by default: the tutorial)")
    group.add_argument(
        "--tokens-per-batch",
        type=positive_int,
        help="with --bucket: a token budget per batch instead of --batch-size sentences",
    )
    group.add_argument(
        "--mixed-precision",
        choices=("auto", "bf16", "fp16", "float32"),
        help="Keras mixed precision (float32 variables, logits and loss); auto (default, "
        "measured) picks bf16, fp16 or float32 from the device; bf16/fp16 are refused where "
        "the device would only emulate them (slower than float32); --recipe tutorial: float32",
    )
    group.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    group.add_argument(
        "--label-smoothing",
        type=_smoothing,
        help="masked label smoothing, as in the paper (default 0.1, measured; --recipe "
        "tutorial: 0)",
    )
    group.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default="default",
        help="tf.distribute: mirrored = this machine's GPUs; multiworker = cluster in "
        "TF_CONFIG; --batch-size is the global batch",
    )


def recipe_settings(args) -> dict:
    """The settings `--recipe` chooses, each replaced by its flag where one was given."""
    from tftransformer.runs.train import TrainSettings
    from tftransformer.runs.train_options import RECIPES

    defaults = TrainSettings()
    recipe = RECIPES[args.recipe]
    chosen = {}
    for name in RECIPE_FLAGS:
        given = getattr(args, name)
        chosen[name] = given if given is not None else recipe.get(name, getattr(defaults, name))
    if chosen["mixed_precision"] == "float32":
        chosen["mixed_precision"] = None
    # The dropout rate is a model hyperparameter (`--dropout-rate`), set by the recipe too.
    dropout = args.dropout_rate
    if dropout is None:
        dropout = recipe.get("dropout_rate", defaults.hparams.dropout_rate)
    chosen["hparams"] = hparams_from_args(args, dropout_rate=dropout)
    return chosen


# The flags `--recipe` sets (their parser default is None: "not given").
RECIPE_FLAGS = ("epochs", "tokenizer", "bucket", "tokens_per_batch", "batch_size",
                "mixed_precision", "schedule", "warmup_steps", "keep",
                "label_smoothing")  # fmt: skip


def add_recipe_options(train) -> None:
    """`--recipe` and the learning-rate schedule flags of `tftransformer train`."""
    from tftransformer.runs.schedule import PEAK_RATE
    from tftransformer.runs.train_options import RECIPES

    group = train.add_argument_group("recipe and learning rate")
    group.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="default",
        help="tutorial: every training setting of the tutorial (WordPiece, padded batches of "
        "64, dropout 0.1, no label smoothing, float32, CustomSchedule with 4000 warm-up steps, "
        "the last weights kept); flags "
        "given beside it still win",
    )
    group.add_argument(
        "--schedule",
        choices=("auto", "tutorial"),
        help="auto (default): warm-up, peak and cosine decay fitted to the run's planned "
        "steps; tutorial: CustomSchedule(d_model, --warmup-steps)",
    )
    group.add_argument(
        "--warmup-steps",
        type=positive_int,
        help="warm-up length (default: 8%% of the planned steps for auto, 4000 for tutorial)",
    )
    group.add_argument(
        "--peak-rate",
        type=_peak_rate,
        help=f"the auto schedule's peak learning rate (default {PEAK_RATE:g}, measured)",
    )
    group.add_argument(
        "--keep",
        choices=("best", "last"),
        help="model.keras holds: best (default) = of the last weights, the best epoch's and "
        "the last checkpoints' average, the highest validation chrF; last = the tutorial's",
    )


def _cmd_average(args):
    from tftransformer.runs.average import average_run

    path = average_run(args.run, args.last, out=args.out)
    print(path)
    return 0


def add_average_parser(commands) -> None:
    average = commands.add_parser(
        "average",
        help="average the last N epoch checkpoints into a new run directory",
        description="Average the weights of RUN's last N epoch checkpoints "
        "(checkpoints/epoch-NNN.weights.h5) into a new run directory "
        "(default RUN/averaged-last-N) that evaluate, translate and export take.",
    )
    average.add_argument("run", help="run directory")
    average.add_argument("--last", type=positive_int, required=True, help="N checkpoints")
    average.add_argument("--out", help="new run directory (default RUN/averaged-last-N)")
    average.set_defaults(handler=_cmd_average)


def _cmd_train(args):
    from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE
    from tftransformer.runs.distribute import worker_index, worker_out
    from tftransformer.runs.scoring import prints_normalized_text
    from tftransformer.runs.train import TrainSettings, train_run
    from tftransformer.runs.translate import evaluate_after_training, print_examples

    settings = TrainSettings(
        corpus=args.corpus,
        max_tokens=args.max_tokens,
        vocab_size=args.vocab_size,
        min_token_count=args.min_token_count,
        shared_vocabulary=args.shared_vocabulary,
        peak_rate=args.peak_rate,
        seed=args.seed,
        limit=args.limit,
        max_time=args.max_time,
        max_steps=args.max_steps,
        jit_compile=args.jit_compile,
        strategy=args.strategy,
        **recipe_settings(args),
    )
    model, tokenizers, _history = train_run(args.out, settings, save_every=args.save_every)
    print(f"Saved {worker_out(args.out, settings.strategy) / 'model.keras'}")
    worker = worker_index(settings.strategy)
    if worker != 0:
        # Every worker holds the same weights after training; scoring the test split
        # again on each would only repeat the chief's work and lines.
        print(f"Worker {worker}: the chief (worker 0) evaluates the test split")
        return 0
    found = evaluate_after_training(model, tokenizers, settings, progress=progress_bar())
    normalized = prints_normalized_text(settings.tokenizer)
    greedy = "greedy decoding as in the tutorial"
    print(*score_lines("Test", found["greedy"], greedy, normalized), sep="\n")
    beam = f"beam search: beam {DEFAULT_BEAM_SIZE}, alpha {DEFAULT_ALPHA}"
    print(*score_lines("Test", found["beam"], beam, normalized), sep="\n")
    print_examples(found["rows"][:3], found["hypotheses"][:3])
    return 0


def add_parsers(commands) -> None:
    """The `train` and `average` subcommands."""
    from tftransformer.runs.train import TrainSettings

    defaults = TrainSettings()
    train = commands.add_parser("train", help="train a pt→en Transformer into a run directory")
    # Deviation from tutorial: the default corpus is the embedded one (the tutorial downloads
    # TED talks with TFDS, which needs the network; `--corpus tfds:ted_hrlr_translate/pt_to_en`).
    train.add_argument("--corpus", default="embedded", help="embedded | tsv:PATH | tfds:NAME")
    train.add_argument("--out", default="runs/pt_en", help="run directory (default runs/pt_en)")
    train.add_argument("--epochs", type=positive_int,
                       help=f"passes over the training split (default {defaults.epochs}, "
                            "measured; --recipe tutorial: the tutorial's 20)")  # fmt: skip
    train.add_argument("--batch-size", type=positive_int,
                       help=f"sentences per batch (default {defaults.batch_size}, measured; "
                            "--recipe tutorial: the tutorial's 64)")  # fmt: skip
    train.add_argument("--max-tokens", type=positive_int, default=defaults.max_tokens)
    add_tokenizer_options(train, defaults)
    train.add_argument(
        "--shared-vocabulary",
        action="store_true",
        help="one vocabulary of at most --vocab-size pieces learned from pt and en together, "
        "used by both sides (default: one per language, as in the tutorial)",
    )
    train.add_argument(
        "--min-token-count",
        type=positive_int,
        default=defaults.min_token_count,
        help="WordPiece learner's lower_thresh (default 10, as in the guide)",
    )
    train.add_argument(
        "--bucket",
        action=argparse.BooleanOptionalAction,
        help=f"length-bucketed batches (deviation from the tutorial; default "
        f"{'on' if defaults.bucket else 'off'})",
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--limit", type=positive_int, help="use only the first N pairs per split")
    train.add_argument(
        "--save-every",
        type=positive_int,
        help="also back up for resuming every N steps (default: at each epoch end only)",
    )
    add_hparam_flags(train, recipe_defaults={
        "dropout_rate": "default 0, measured (--recipe tutorial: the tutorial's 0.1)"})
    add_train_options(train)
    add_recipe_options(train)
    add_budget_options(train)
    # None = "not given": `recipe_settings` fills in the recipe's value or the default.
    train.set_defaults(handler=_cmd_train, **dict.fromkeys(RECIPE_FLAGS))
    add_average_parser(commands)
