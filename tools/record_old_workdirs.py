"""Records workdirs stopped mid-way, and the rows of the same studies run without a stop.

    python tools/record_old_workdirs.py [--out tests/old_workdirs] [--code DIR] [NAME ...]

Each fixture is one small study run through the command line twice: once stopped cleanly after
its first round (`--stop_after=1`, as on SIGTERM), kept as `<name>/stopped/` (config.json,
metrics.jsonl, checkpoints, membership.npz, ...), and once uninterrupted, kept as
`<name>/expected.jsonl` (its rows without wall times) and `<name>/expected_membership.npz`.
`<name>/args.json` is the command's arguments without `--workdir`. A fixture named in
`PROCESSES` runs as a `--distributed` job of that many processes on localhost (one CPU device
each), and `<name>/processes.txt` says how many. `--code DIR`: the checkout whose swapjax
records (for example a `git worktree` of an older commit); this one by default.

tests/test_old_workdirs.py resumes every `stopped/` workdir with the same command under the
code being tested and checks that it ends identical, row for row, to `expected.jsonl`. The
fixtures in the repository were written by the code of commit e952fde (the flat config), but
`swap_tiny_two_processes`, written by commit 8ad1fe4 (the last whose multi-process runs shard
the runs over a mesh, recording no `placement`); they are what users' existing workdirs look
like. Rerunning this script with later code writes
workdirs of that later code, which no longer tests reading old ones: do that only to add a
format, never to replace the e952fde fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IGNORED = ("time/round_s",)

# Small studies of every kind the old config could express: the swap study (independent and
# shared models), an epochs study with variant groups (iris), one with the recurrent kernels
# (binary_addition) and the memorization study with random labels and periodic test passes.
# The convolutional studies use a small network so that their checkpoints stay small.
SWAP_TINY = [
  "--experiment=tiny",
  "--set",
  "rounds=3",
  "--set",
  "num_seeds=2",
  "--set",
  "conv_impl=patches",
  "--set",
  "layers=conv:4,relu,maxpool,flatten,dense:10",
]
FIXTURES = {
  "swap_tiny": SWAP_TINY,
  "swap_shared": [
    "--experiment=tiny",
    "--set",
    "rounds=3",
    "--set",
    "shared_model=true",
    "--set",
    "conv_impl=patches",
    "--set",
    "layers=conv:4,relu,maxpool,flatten,dense:10",
  ],
  # The same on two processes (one CPU device each): 4 runs (2 seeds x 2 conditions) on a
  # 2 x 1 mesh, 2 runs per device, as commit 8ad1fe4 placed them.
  "swap_tiny_two_processes": SWAP_TINY,
  "iris": ["--experiment=iris", "--set", "rounds=3", "--set", "num_seeds=3"],
  "binary_addition": [
    "--experiment=binary_addition",
    "--set",
    "rounds=2",
    "--set",
    "num_seeds=2",
    "--set",
    "pool_size=64",
    "--set",
    "holdout_size=32",
    "--set",
    "groups=base,adam,recurrent_dropout",
  ],
  "memorize": [
    "--experiment=memorize_mnist",
    "--set",
    "source=synthetic",
    "--set",
    "pool_size=64",
    "--set",
    "holdout_size=32",
    "--set",
    "batch_size=8",
    "--set",
    "rounds=3",
    "--set",
    "num_seeds=2",
    "--set",
    "label_corruption=0.0,1.0",
    "--set",
    "test_every=2",
    "--set",
    "early_stop=false",
    "--set",
    "eval_batch_size=32",
    "--set",
    "conv_impl=patches",
    "--set",
    "layers=conv:4,relu,maxpool,flatten,dense:10",
  ],
}


PROCESSES = {"swap_tiny_two_processes": 2}


def command(args: list[str], workdir: Path, *extra: str) -> list[str]:
  return [sys.executable, "-m", "swapjax.main", *args, f"--workdir={workdir}", *extra]


def environment() -> dict[str, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.setdefault("SWAPJAX_COMPILATION_CACHE", "")
  return env


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(args: list[str], workdir: Path, processes: int, code: Path, *extra: str) -> list[int]:
  """The study's command on `processes` processes of this machine (one: a plain run); their
  exit statuses."""
  if processes == 1:
    return [subprocess.run(command(args, workdir, *extra), env=environment(), cwd=code).returncode]
  port = free_port()
  env = dict(environment(), XLA_FLAGS="--xla_force_host_platform_device_count=1")
  distributed = ["--distributed", f"--coordinator_address=127.0.0.1:{port}"]
  procs = [
    subprocess.Popen(
      command(args, workdir, *extra, *distributed, f"--num_processes={processes}")
      + [f"--process_id={i}"],
      env=env,
      cwd=code,
    )
    for i in range(processes)
  ]
  return [p.wait() for p in procs]


def rows_of(workdir: Path) -> list[dict]:
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in r.items() if k not in IGNORED} for r in rows]


def membership_of(workdir: Path) -> dict[str, np.ndarray]:
  with np.load(workdir / "membership.npz") as z:
    return {k: z[k] for k in z.files}


def record(name: str, args: list[str], out: Path, code: Path) -> None:
  target = out / name
  if target.exists():
    shutil.rmtree(target)
  target.mkdir(parents=True)
  processes = PROCESSES.get(name, 1)
  with tempfile.TemporaryDirectory() as tmp:
    full = Path(tmp) / "full"
    codes = launch(args, full, processes, code)
    if any(codes):
      raise SystemExit(f"{name}: the uninterrupted run exited {codes}")
    stopped = target / "stopped"
    launch(args, stopped, processes, code, "--stop_after=1")
    shutil.rmtree(stopped / ".processes", ignore_errors=True)  # the watchers' heartbeats
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows_of(full))
    (target / "expected.jsonl").write_text(text)
    np.savez(target / "expected_membership.npz", **membership_of(full))
  (target / "args.json").write_text(json.dumps(args, indent=1) + "\n")
  if processes > 1:
    (target / "processes.txt").write_text(f"{processes}\n")
  print(f"recorded {target}", file=sys.stderr)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(REPO / "tests" / "old_workdirs"))
  parser.add_argument("--code", default=str(REPO), help="the checkout whose swapjax records")
  parser.add_argument("names", nargs="*", default=sorted(FIXTURES))
  ns = parser.parse_args()
  for name in ns.names:
    record(name, FIXTURES[name], Path(ns.out).absolute(), Path(ns.code).absolute())


if __name__ == "__main__":
  main()
