"""``python -m experiments CONFIG``: the same as ``jnmf-run CONFIG``."""

import sys

from experiments.cli import run_main

if __name__ == "__main__":
    sys.exit(run_main())
