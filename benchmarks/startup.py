"""Where the seconds of a small study's command go, with a warm compilation cache.

    python3 -m benchmarks.startup [--experiment=iris] [--repeats=3] [--set key=value ...]

Runs `python3 -m swapjax.main --experiment=NAME` once to fill the persistent compilation cache
(a fresh cache folder of its own), then `--repeats` times, each in a new workdir and process.
Per run: the command's wall time and the phases of its last line (data and checks, build,
compile, rounds, report); the rest of the wall time is the interpreter, imports and start-up
before the study. Prints the median of each.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import median_range

REPO = Path(__file__).resolve().parents[1]
PHASES = re.compile(r"seconds in the study: (.*)$", re.MULTILINE)


def study_phases(stdout: str) -> dict[str, float]:
  """{phase: seconds} from a study's `seconds in the study: ...` line; {} where it has none."""
  found = PHASES.search(stdout)
  parts = found.group(1).split(", ") if found else []
  return {name: float(seconds) for name, seconds in (p.rsplit(" ", 1) for p in parts)}


def one_run(experiment: str, overrides: list[str], workdir: Path, env: dict) -> dict[str, float]:
  command = [sys.executable, "-m", "swapjax.main", f"--experiment={experiment}"]
  command += [f"--set={x}" for x in overrides] + [f"--workdir={workdir}"]
  t0 = time.perf_counter()
  done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if done.returncode:
    raise SystemExit(f"benchmarks: {' '.join(command)} failed: {done.stderr[-500:]}")
  phases = study_phases(done.stdout)
  if not phases:
    raise SystemExit("benchmarks: the study printed no 'seconds in the study' line")
  return {"command": wall, "start-up": wall - sum(phases.values()), **phases}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiment", default="iris")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--set", action="append", default=[], dest="overrides")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    env = dict(os.environ, SWAPJAX_COMPILATION_CACHE=str(Path(tmp) / "cache"))
    one_run(args.experiment, args.overrides, Path(tmp) / "warm", env)
    runs = [
      one_run(args.experiment, args.overrides, Path(tmp) / f"run{i}", env)
      for i in range(args.repeats)
    ]
  print(f"| {args.experiment}, warm cache, median of {args.repeats} | seconds |")
  print("| --- | ---: |")
  for key in runs[0]:
    values = [r[key] for r in runs]
    print(f"| {key} | {median_range(values, '.2f')} |")


if __name__ == "__main__":
  main()
