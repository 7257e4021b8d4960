"""Two commits side by side: the same study commands, alternately, each in a fresh process.

    python3 -m benchmarks.commits --old=e952fde --new=HEAD [--repeats=2] [--studies=a,b] [--resume]

Each commit is checked out into a temporary git worktree; every study command runs there with
`python3 -m swapjax.main ... --workdir=<new folder>`, old and new in turn (ABAB...), so that a
machine's drift reaches both alike. The persistent compilation cache is off
(SWAPJAX_COMPILATION_CACHE=''), so compile times are real. From each run's timing.json: the compile
seconds, the median seconds per round after the first (`round_s`: from one round's results to the
next's; a commit before the wait was timed apart, `wait_s`, timed each round until its results
only), per program the wait for its results (in the log), the median wall seconds per round after
the first (its rows, TensorBoard and checkpoint included); from its output the build phase's
seconds (the initialisers' compilation in it) and the report's (report.md and its figures); and the
command's wall time. With `--resume`, each finished study is then resumed for one more round (the
same command with `--set rounds=R+1` in its workdir): that command's wall time and its build phase
(where a resume restores the checkpoint and keeps the rows before it). Prints one markdown table
(median over the repeats, with min-max) and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.startup import study_phases
from benchmarks.timing import median_range

REPO = Path(__file__).resolve().parents[1]
STUDIES = {
  # The swap study's program at pool 2,000 (3 conditions x 2 seeds, 3 rounds).
  "swap_pool2000": [
    "--experiment=swap_cifar10",
    "--set=pool_size=2000",
    "--set=rounds=3",
    "--set=num_seeds=2",
    "--set=warmup=0",
  ],
  # The README's main job, first 10 epochs.
  "memorize_mnist": ["--experiment=memorize_mnist", "--set=rounds=10", "--set=early_stop=false"],
  # Report 002's RNN study, 7 groups x 100 seeds, 3 of its 5 epochs.
  "binary_addition": ["--experiment=binary_addition", "--set=rounds=3"],
  # Tiny networks, 6 programs x 1,000 (6,000 rows a round), a checkpoint every 10 rounds.
  "logic_gates_every10": ["--experiment=logic_gates", "--checkpoint_every=10"],
  # 3 programs x 100 networks (300 rows a round), a checkpoint every 10 rounds.
  "iris_every10": ["--experiment=iris", "--checkpoint_every=10"],
}


def _worktree(rev: str, root: Path) -> Path:
  path = root / rev.replace("/", "_")
  subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True)
  return path


def _run(tree: Path, args: list[str], data_dir: str, workdir: Path) -> dict:
  env = dict(os.environ, SWAPJAX_COMPILATION_CACHE="")
  command = [sys.executable, "-m", "swapjax.main", *args, f"--data_dir={data_dir}"]
  start = time.perf_counter()
  done = subprocess.run([*command, f"--workdir={workdir}"], cwd=tree, env=env, capture_output=True)
  wall = time.perf_counter() - start
  if done.returncode:
    raise SystemExit(f"{tree.name}: {' '.join(args)} failed:\n{done.stderr.decode()[-2000:]}")
  timing = json.loads((workdir / "timing.json").read_text())
  programs = {p["variant"] or str(p["program"]): p["round_s_median"] for p in timing["programs"]}
  wall_s = timing.get("wall_s", [])[1:]  # an older commit's timing.json may have none
  return {
    "wall": wall,
    "compile": timing["compile_s"],
    "build": _phase(done.stdout.decode(), "build"),
    "report": _phase(done.stdout.decode(), "report"),
    "round": timing["round_s_median"],
    "round wall": statistics.median(wall_s) if wall_s else math.nan,
    "programs": programs,
  }


def _phase(stdout: str, name: str) -> float:
  """A phase's seconds from the study's last line (`seconds in the study: ...`), NaN if none."""
  return study_phases(stdout).get(name, math.nan)


def _resumed(tree: Path, args: list[str], data_dir: str, workdir: Path) -> dict:
  """The finished study in `workdir` resumed for one more round: its wall and build seconds."""
  rounds = json.loads((workdir / "config.json").read_text())["config"]["rounds"]
  got = _run(tree, [*args, f"--set=rounds={rounds + 1}"], data_dir, workdir)
  return {"resume wall": got["wall"], "resume build": got["build"]}


def _cell(values: list[float]) -> str:
  return median_range(values, ".3g")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--old", required=True)
  parser.add_argument("--new", default="HEAD")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--studies", default=",".join(STUDIES))
  parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
  parser.add_argument("--out", default="")
  parser.add_argument("--resume", action="store_true", help="also resume each study one round")
  ns = parser.parse_args()
  results = {}
  with tempfile.TemporaryDirectory() as tmp:
    trees = {rev: _worktree(rev, Path(tmp)) for rev in (ns.old, ns.new)}
    try:
      for study in ns.studies.split(","):
        for repeat in range(ns.repeats):
          for rev, tree in trees.items():
            workdir = Path(tmp) / f"{study}-{rev}-{repeat}"
            got = _run(tree, STUDIES[study], ns.data_dir, workdir)
            if ns.resume:
              got |= _resumed(tree, STUDIES[study], ns.data_dir, workdir)
            print(f"{study} {rev} #{repeat}: {got}", file=sys.stderr, flush=True)
            results.setdefault((study, rev), []).append(got)
    finally:
      for tree in trees.values():
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO)
  keys = ["wall", "build", "compile", "report", "round", "round wall"]
  names = ["wall s", "build s", "compile s", "report s", "s per round", "wall s per round"]
  if ns.resume:
    keys += ["resume wall", "resume build"]
    names += ["resume wall s", "resume build s"]
  lines = [
    f"| study | commit | {' | '.join(names)} |",
    "| --- | --- | " + " | ".join(["---:"] * len(names)) + " |",
  ]
  for (study, rev), runs in results.items():
    cells = [_cell([r[k] for r in runs]) for k in keys]
    lines.append(f"| {study} | {rev} | {' | '.join(cells)} |")
  table = "\n".join(lines) + "\n"
  print(table)
  if ns.out:
    Path(ns.out).write_text(table)


if __name__ == "__main__":
  main()
