"""The `tftransformer` command line: argparse subcommands over a run directory.

`main(argv)` returns an exit code: 0 on success, 2 for errors a user can
cause (printed as one line on stderr, never a traceback), 130 when
interrupted (rerun the same `train` command to resume).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tftransformer.config import TransformerConfig

# The vocabulary sizes of the tutorial's published pt/en converter.
TUTORIAL_INPUT_VOCAB = 7765
TUTORIAL_TARGET_VOCAB = 7010

# The tutorial's example sentences ("Run inference", "Create attention plots").
TUTORIAL_EXAMPLES = [
    ("este é um problema que temos que resolver.", "this is a problem we have to solve ."),
    (
        "os meus vizinhos ouviram sobre esta ideia.",
        "and my neighboring homes heard about this idea .",
    ),
    ("este é o primeiro livro que eu fiz.", "this is the first book i've ever done."),
]


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no multi-line usage dump)."""

    def error(self, message):
        # Command-line bytes that are not UTF-8 reach Python as lone surrogates,
        # which stderr cannot encode: print them escaped instead of crashing.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_hparam_flags(parser: argparse.ArgumentParser) -> None:
    """One `--flag` per `TransformerConfig` field, defaulting to the tutorial's."""
    group = parser.add_argument_group("model hyper-parameters (tutorial defaults)")
    for field in dataclasses.fields(TransformerConfig):
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            type=float if field.type in (float, "float") else int,
            default=field.default,
            help=f"default {field.default}",
        )


def hparams_from_args(args: argparse.Namespace) -> TransformerConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TransformerConfig)}
    try:
        return TransformerConfig(**values)
    except ValueError as error:
        raise UsageError(str(error)) from error


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _progress(done, total, stream=None, width=30):
    """A one-line progress bar on stderr (stdout stays clean for pipes)."""
    stream = stream or sys.stderr
    filled = int(width * done / max(total, 1))
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        stream.write("\n")
    stream.flush()


def _cmd_summary(args):
    from tftransformer.transformer import Transformer

    model = Transformer.from_hparams(
        hparams_from_args(args),
        input_vocab_size=args.input_vocab_size,
        target_vocab_size=args.target_vocab_size,
    )
    model.build(((None, None), (None, None)))
    model.summary()
    return 0


def _cmd_train(args):
    from tftransformer.cli_train import train_options_from_args
    from tftransformer.distribute import worker_out
    from tftransformer.trainer import TrainSettings, train_run
    from tftransformer.workflow import evaluate_split, print_examples

    settings = TrainSettings(
        corpus=args.corpus,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        vocab_size=args.vocab_size,
        min_token_count=args.min_token_count,
        bucket=args.bucket,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        limit=args.limit,
        hparams=hparams_from_args(args),
        **train_options_from_args(args),
    )
    model, tokenizers, _history = train_run(args.out, settings, save_every=args.save_every)
    print(f"Saved {worker_out(args.out, settings.strategy) / 'model.keras'}")
    scores, rows, hypotheses = evaluate_split(
        model,
        tokenizers,
        settings.corpus,
        "test",
        limit=settings.limit,
        progress=_progress,
        max_tokens=settings.max_tokens,
    )
    print(
        f"Test BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
        f"({scores['sentences']} sentences, greedy decoding as in the tutorial)"
    )
    beam_scores, _rows, _beams = evaluate_split(
        model,
        tokenizers,
        settings.corpus,
        "test",
        limit=settings.limit,
        max_tokens=settings.max_tokens,
        decode="beam",
    )
    print(
        f"Test BLEU {beam_scores['bleu']:.2f}  chrF {beam_scores['chrf']:.2f}  "
        f"({beam_scores['sentences']} sentences, beam search: beam 4, alpha 0.6)"
    )
    print_examples(rows[:3], hypotheses[:3])
    return 0


def _cmd_plot(args):
    from tftransformer.workflow import load_run, write_plots

    settings, tokenizers, model = load_run(args.run)
    out = Path(args.out) if args.out else Path(args.run) / "plots"
    for path in write_plots(Path(args.run), settings, tokenizers, model, args.sentence, out):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from tftransformer import __version__
    from tftransformer.cli_decode import add_export_parser, add_translate_parsers
    from tftransformer.trainer import DEFAULT_EPOCHS, TrainSettings

    parser = _Parser(
        prog="tftransformer",
        description="The TensorFlow Transformer NMT tutorial as a command-line tool.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = TrainSettings()

    train = commands.add_parser("train", help="train a pt→en Transformer into a run directory")
    train.add_argument("--corpus", default="embedded", help="embedded | tsv:PATH | tfds:NAME")
    train.add_argument("--out", default="runs/pt_en", help="run directory (default runs/pt_en)")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS)
    train.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    train.add_argument("--max-tokens", type=_positive_int, default=defaults.max_tokens)
    train.add_argument("--vocab-size", type=_positive_int, default=defaults.vocab_size)
    train.add_argument("--warmup-steps", type=_positive_int, default=defaults.warmup_steps)
    train.add_argument(
        "--min-token-count",
        type=_positive_int,
        default=defaults.min_token_count,
        help="WordPiece learner's lower_thresh (default 10, as in the guide)",
    )
    train.add_argument(
        "--bucket",
        action="store_true",
        help="length-bucketed batches (deviation from the tutorial; off by default)",
    )
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--limit", type=_positive_int, help="use only the first N pairs per split")
    train.add_argument(
        "--save-every",
        type=_positive_int,
        help="also back up for resuming every N steps (default: at each epoch end only)",
    )
    add_hparam_flags(train)
    from tftransformer.cli_train import add_average_parser, add_train_options

    add_train_options(train, _positive_int)
    train.set_defaults(handler=_cmd_train)
    add_average_parser(commands, _positive_int)

    add_translate_parsers(commands, _positive_int)

    plot = commands.add_parser("plot", help="PNG figures: attention, training, schedule, encoding")
    plot.add_argument("run", help="run directory")
    plot.add_argument(
        "--sentence",
        default=TUTORIAL_EXAMPLES[2][0],
        help="Portuguese sentence for the attention plots",
    )
    plot.add_argument("--out", help="output directory (default RUN/plots)")
    plot.set_defaults(handler=_cmd_plot)

    add_export_parser(commands, _positive_int)

    from tftransformer.cli_classify import add_classify_parser

    add_classify_parser(commands, add_hparam_flags, _positive_int)

    summary = commands.add_parser(
        "summary", help="build the tutorial-size Transformer and print its summary"
    )
    summary.add_argument("--input-vocab-size", type=int, default=TUTORIAL_INPUT_VOCAB)
    summary.add_argument("--target-vocab-size", type=int, default=TUTORIAL_TARGET_VOCAB)
    add_hparam_flags(summary)
    summary.set_defaults(handler=_cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tftransformer.corpus import CorpusError
    from tftransformer.labelled import LabelError
    from tftransformer.rundir import RunError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line message
        return int(exit_.code or 0)
    try:
        return args.handler(args)
    except (UsageError, RunError, CorpusError, LabelError) as error:
        command = args.command + (f" {args.classify_command}" if args.command == "classify" else "")
        print(f"tftransformer {command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ntftransformer {args.command}: interrupted"
            + ("; run the same command again to resume" if args.command == "train" else ""),
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
