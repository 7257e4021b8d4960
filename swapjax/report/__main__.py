"""`python -m swapjax.report WORKDIR [WORKDIR ...] [--out=DIR]` (swapjax/report/cli.py)."""

import sys

from swapjax.report.cli import main

if __name__ == "__main__":
  sys.exit(main())
