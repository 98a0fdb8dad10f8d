"""`python -m tftransformer` runs the command-line tool."""

import sys

from tftransformer.cli import main

sys.exit(main())
