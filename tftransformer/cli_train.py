"""`train`'s speed and scale-out flags, and the `average` subcommand (issue 7).

Kept out of `cli.py` so that module stays small; `cli.build_parser` calls
`add_train_options` on the `train` parser and `add_average_parser` once.
"""

from __future__ import annotations

import argparse
import math


def _smoothing(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value < 1):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def add_train_options(train, positive_int) -> None:
    """The issue-7 flags of `tftransformer train`; all default to the tutorial's training."""
    group = train.add_argument_group("speed and scale-out (off by default: the tutorial)")
    group.add_argument(
        "--tokens-per-batch",
        type=positive_int,
        help="with --bucket: a token budget per batch instead of --batch-size sentences",
    )
    group.add_argument(
        "--mixed-precision",
        choices=("bf16", "fp16"),
        help="Keras mixed precision policy (float32 variables, logits and loss)",
    )
    group.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    group.add_argument(
        "--label-smoothing",
        type=_smoothing,
        default=0.0,
        help="masked label smoothing, as in the paper (0.1 there; default 0)",
    )
    group.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker"),
        default="default",
        help="tf.distribute: mirrored = this machine's GPUs; multiworker = cluster in "
        "TF_CONFIG; --batch-size is the global batch",
    )


def train_options_from_args(args) -> dict:
    """`TrainSettings` keyword arguments for the flags `add_train_options` added."""
    return dict(
        tokens_per_batch=args.tokens_per_batch,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        label_smoothing=args.label_smoothing,
        strategy=args.strategy,
    )


def _cmd_average(args):
    from tftransformer.averaging import average_run

    path = average_run(args.run, args.last, out=args.out)
    print(path)
    return 0


def add_average_parser(commands, positive_int) -> None:
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
