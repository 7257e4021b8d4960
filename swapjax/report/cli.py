"""The command: `python -m swapjax.report WORKDIR [WORKDIR ...] [--out=DIR]` rebuilds one study's
report, or compares several; a study it cannot read is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys

from swapjax.report import build, comparison, files
from swapjax.workdir import WorkdirError


def main(argv: list[str] | None = None) -> int:
  """`python -m swapjax.report WORKDIR [WORKDIR ...] [--out=DIR]`; returns the exit status."""
  parser = argparse.ArgumentParser(
    prog="python -m swapjax.report",
    description="Rebuild one study's report.md and plots/, or compare several studies.",
  )
  parser.add_argument("workdirs", nargs="+", metavar="WORKDIR", help="a study's workdir")
  parser.add_argument(
    "--out", metavar="DIR", help="comparing: also write DIR/compare.md and DIR/compare.png"
  )
  args = parser.parse_args(argv)
  if len(args.workdirs) == 1 and args.out:
    parser.error("--out is for comparing two or more studies; one study's report is its workdir's")
  try:
    if len(args.workdirs) == 1:
      files.load_study(args.workdirs[0])
      print(build.write(args.workdirs[0]))
    else:
      print(comparison.compare(args.workdirs, args.out), end="")
  except (files.StudyError, WorkdirError) as e:
    print(f"swapjax.report: {e}", file=sys.stderr)
    return 2
  return 0
