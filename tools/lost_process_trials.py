"""Kills one process of a distributed study at random moments and checks that nothing is lost.

    python tools/lost_process_trials.py --kills=20 [--seed=0] [--workdir=/tmp/lost_process]
        [--runs_per_device=N]

The study is tests/distributed_job.py's (the tiny swap study, 2 rounds, 8 runs, with
`--heartbeat_timeout=10`) on 2 or 4 processes on localhost. One uninterrupted run per process
count is the reference. Each trial starts the study in a fresh workdir, kills a random process
with SIGKILL after a random delay (start-up, rounds, checkpoint writes and the report all
happen in that window), and records each other process' exit status and seconds after the
kill; then it reruns the same command on every process. A trial counts as survived when every
other process exited with status 75 naming the killed process within the bound (killed
before JAX's runtime started: status 75 with "did not start" within `--startup_timeout`; after
the others had finished: status 0), and the rerun's metrics.jsonl
(without wall times) and membership.npz equal the reference bitwise. Prints one line per
trial and a summary; exit status 1 if any trial was not survived. `--runs_per_device=N`: chunks
of N runs (N=1: 8 chunks, each process runs its share), in every run; the summary then also says
whether the 2- and the 4-process references are equal.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from distributed_job import BOUND_S, finish, lose_one, membership, rows  # noqa: E402


def _same(workdir: Path, reference) -> bool:
  got = membership(workdir)
  return rows(workdir) == reference[0] and all(
    np.array_equal(got[k], v) for k, v in reference[1].items()
  )


def _trial(root: Path, count: int, victim: int, delay: float, reference, extra):
  """(survived, what happened) of one kill and its rerun."""
  workdir = root / "w"
  began = time.monotonic()
  moment = lambda job: time.monotonic() - began >= delay  # noqa: E731
  outcome = lose_one(workdir, count, victim, moment, root, extra)
  ok = True
  for code, seconds, last in outcome.values():
    lost = code == 75 and f"process {victim} of {count}" in last and seconds < BOUND_S
    never_joined = code == 75 and "did not start" in last  # killed before JAX's runtime began
    ok &= lost or never_joined or code == 0
  said = ", ".join(f"{i}: {c} after {s:.1f} s" for i, (c, s, _) in sorted(outcome.items()))
  finish(workdir, count, root / "rerun", extra)
  same = _same(workdir, reference)
  return ok and same, f"others {said}; rerun {'equal' if same else 'DIFFERS'}"


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workdir", default="/tmp/lost_process")
  parser.add_argument("--window", type=float, default=30.0, help="latest kill, seconds")
  parser.add_argument("--runs_per_device", type=int, default=0, help="0: the default chunks")
  args = parser.parse_args()
  extra = ("--set", f"runs_per_device={args.runs_per_device}") if args.runs_per_device else ()
  rng = random.Random(args.seed)
  root = Path(args.workdir)
  shutil.rmtree(root, ignore_errors=True)
  references = {}
  for count in (2, 4):
    finish(root / f"reference{count}", count, root / f"reference{count}-logs", extra)
    references[count] = (rows(root / f"reference{count}"), membership(root / f"reference{count}"))
  survived = 0
  for k in range(args.kills):
    count = rng.choice((2, 4))
    victim, delay = rng.randrange(count), rng.uniform(0.0, args.window)
    ok, said = _trial(root / f"trial{k}", count, victim, delay, references[count], extra)
    survived += ok
    print(f"kill {k}: process {victim} of {count} at {delay:.1f} s: {said}", flush=True)
  print(f"{survived} of {args.kills} kills survived with nothing lost")
  if extra:
    print(f"2 and 4 processes' references equal: {_same(root / 'reference4', references[2])}")
  return 0 if survived == args.kills else 1


if __name__ == "__main__":
  sys.exit(main())
