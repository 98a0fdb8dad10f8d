"""`python -m tftransformer` runs the command-line tool."""

from tftransformer.cli.main import run

run()
