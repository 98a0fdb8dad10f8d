"""The `tftransformer` command line (argparse only; the jobs are in `tftransformer.runs`)."""

from tftransformer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
