"""The `tftransformer` command line: argparse subcommands over a run directory.

`main(argv)` returns an exit code: 0 on success, 2 for errors a user can
cause (printed as one line on stderr, never a traceback), 130 when
interrupted (rerun the same `train` command to resume).

Each command group has its module here (`train`, `translate`, `classify`); they
parse arguments and call the jobs in `tftransformer.runs`.
"""

from __future__ import annotations

import sys

from tftransformer.cli import classify, train, translate
from tftransformer.cli.common import Parser, UsageError, add_hparam_flags, hparams_from_args
from tftransformer.version import __version__

# The vocabulary sizes of the tutorial's published pt/en converter.
TUTORIAL_INPUT_VOCAB = 7765
TUTORIAL_TARGET_VOCAB = 7010


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


def build_parser() -> Parser:
    parser = Parser(
        prog="tftransformer",
        description="The TensorFlow Transformer NMT tutorial as a command-line tool.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parsers(commands)
    translate.add_parsers(commands)
    classify.add_parsers(commands)

    summary = commands.add_parser(
        "summary", help="build the tutorial-size Transformer and print its summary"
    )
    summary.add_argument("--input-vocab-size", type=int, default=TUTORIAL_INPUT_VOCAB)
    summary.add_argument("--target-vocab-size", type=int, default=TUTORIAL_TARGET_VOCAB)
    add_hparam_flags(summary)
    summary.set_defaults(handler=_cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tftransformer._files import RunError
    from tftransformer.classification.labelled import LabelError
    from tftransformer.corpus import CorpusError

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


def run() -> None:
    """The `tftransformer` command: `main()` with the process' arguments, then exit."""
    from tftransformer._files import exit_process

    exit_process(main())


if __name__ == "__main__":  # pragma: no cover
    run()
