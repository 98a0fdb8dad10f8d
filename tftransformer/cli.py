"""The `tftransformer` command line: argparse subcommands, exit codes.

`main(argv)` returns 0 on success and 2 for errors a user can cause, printed
as one line on stderr (never a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tftransformer.config import TransformerConfig

# The vocabulary sizes of the tutorial's published pt/en converter.
TUTORIAL_INPUT_VOCAB = 7765
TUTORIAL_TARGET_VOCAB = 7010


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


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


def _cmd_summary(args: argparse.Namespace) -> int:
    from tftransformer.transformer import Transformer

    model = Transformer.from_hparams(
        hparams_from_args(args),
        input_vocab_size=args.input_vocab_size,
        target_vocab_size=args.target_vocab_size,
    )
    model.build(((None, None), (None, None)))
    model.summary()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tftransformer",
        description="The TensorFlow Transformer NMT tutorial as a command-line tool.",
    )
    from tftransformer import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = commands.add_parser(
        "summary", help="build the tutorial-size Transformer and print its summary"
    )
    summary.add_argument("--input-vocab-size", type=int, default=TUTORIAL_INPUT_VOCAB)
    summary.add_argument("--target-vocab-size", type=int, default=TUTORIAL_TARGET_VOCAB)
    add_hparam_flags(summary)
    summary.set_defaults(run=_cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line message
        return int(exit_.code or 0)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"tftransformer {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
