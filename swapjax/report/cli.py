"""The command: `python -m swapjax.report WORKDIR [WORKDIR ...] [--out=DIR]` rebuilds one study's
report, or compares several; a study it cannot read is one line on stderr and exit status 2.
`--reference=experiment` compares one study with the experiment file's numbers as installed
now instead of those its config.json recorded."""

from __future__ import annotations

import argparse
import sys

from swapjax import registry
from swapjax.report import build, comparison, files, references
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
  parser.add_argument(
    "--reference",
    choices=references.SOURCES,
    default="recorded",
    help="one study: the report's numbers it is compared with, those config.json recorded when "
    "the study started (default) or the experiment file's as installed now",
  )
  args = parser.parse_args(argv)
  if len(args.workdirs) == 1 and args.out:
    parser.error("--out is for comparing two or more studies; one study's report is its workdir's")
  if len(args.workdirs) > 1 and args.reference != "recorded":
    parser.error("--reference is for one study's report; a comparison shows no report numbers")
  try:
    if len(args.workdirs) == 1:
      study = files.load_study(args.workdirs[0])  # (config.json, rows): read once
      experiment = study[0].get("experiment")
      if args.reference == "experiment" and experiment not in registry.registry():
        raise files.StudyError(
          f"{args.workdirs[0]}: experiment {experiment!r} is not registered here, "
          "so only config.json's recorded numbers can be used (leave out --reference)"
        )
      print(build.write(args.workdirs[0], args.reference, study))
    else:
      print(comparison.compare(args.workdirs, args.out), end="")
  except (files.StudyError, WorkdirError) as e:
    print(f"swapjax.report: {e}", file=sys.stderr)
    return 2
  return 0
