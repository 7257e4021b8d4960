"""Kills a tiny study with SIGKILL at random moments, reruns it, and checks the final files.

    python tools/kill_resume.py --kills=20 [--seed=0] [--workdir=/tmp/kill_resume]

Runs one uninterrupted reference, then one workdir that is killed `--kills` times at random
moments (during training, checkpoint writes or report writing) and rerun each time; after the
last kill it runs to the end. A kill counts as matched when the rerun continued and the final
`metrics.jsonl` (without wall times) and `membership.npz` equal the reference bitwise.
Every kill gets its own workdir so each resume is checked separately.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STUDY = ["--experiment=tiny"]  # 4 rounds of a 2-run swap study on synthetic data


def _cmd(workdir: Path) -> list[str]:
  return [sys.executable, "-m", "swapjax.main", *STUDY, f"--workdir={workdir}"]


def _final(workdir: Path):
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("time/round_s")
  with np.load(workdir / "membership.npz") as z:
    arrays = {k: z[k] for k in z.files}
  return rows, arrays


def _same(a, b) -> bool:
  return a[0] == b[0] and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workdir", default="/tmp/kill_resume")
  args = parser.parse_args()
  rng = random.Random(args.seed)
  root = Path(args.workdir)
  shutil.rmtree(root, ignore_errors=True)
  root.mkdir(parents=True)
  env = dict(os.environ, PYTHONPATH=str(REPO))
  t0 = time.time()
  subprocess.run(_cmd(root / "reference"), env=env, cwd=REPO, check=True, capture_output=True)
  full_s = time.time() - t0
  reference = _final(root / "reference")
  print(f"reference run: {full_s:.1f} s", flush=True)
  matched = 0
  for i in range(args.kills):
    workdir = root / f"kill{i:02d}"
    delay = rng.uniform(0.5, full_s)
    proc = subprocess.Popen(
      _cmd(workdir), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
      proc.wait(timeout=delay)
      outcome = "finished before the kill"
    except subprocess.TimeoutExpired:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
      outcome = "killed"
    rows_at_kill = (
      len((workdir / "metrics.jsonl").read_text().splitlines())
      if (workdir / "metrics.jsonl").exists()
      else 0
    )
    rerun = subprocess.run(_cmd(workdir), env=env, cwd=REPO, capture_output=True, text=True)
    ok = rerun.returncode == 0 and _same(_final(workdir), reference)
    matched += ok
    print(
      f"kill {i + 1:2d}: {outcome} at {delay:5.1f} s ({rows_at_kill} rows written); "
      f"rerun {'matched' if ok else 'DIFFERED: ' + rerun.stderr[-300:]}",
      flush=True,
    )
  print(f"{matched}/{args.kills} resumes matched the uninterrupted run")
  return 0 if matched == args.kills else 1


if __name__ == "__main__":
  sys.exit(main())
