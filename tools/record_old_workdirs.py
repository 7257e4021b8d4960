"""Records workdirs stopped mid-way, and the rows of the same studies run without a stop.

    python tools/record_old_workdirs.py [--out tests/old_workdirs]

Each fixture is one small study run through the command line twice: once stopped cleanly after
its first round (`--stop_after=1`, as on SIGTERM), kept as `<name>/stopped/` (config.json,
metrics.jsonl, checkpoints, membership.npz, ...), and once uninterrupted, kept as
`<name>/expected.jsonl` (its rows without wall times) and `<name>/expected_membership.npz`.
`<name>/args.json` is the command's arguments without `--workdir`.

tests/test_old_workdirs.py resumes every `stopped/` workdir with the same command under the
code being tested and checks that it ends identical, row for row, to `expected.jsonl`. The
fixtures in the repository were written by the code of commit e952fde (the flat config); they
are what users' existing workdirs look like. Rerunning this script with later code writes
workdirs of that later code, which no longer tests reading old ones: do that only to add a
format, never to replace the e952fde fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
FIXTURES = {
  "swap_tiny": [
    "--experiment=tiny",
    "--set",
    "rounds=3",
    "--set",
    "num_seeds=2",
    "--set",
    "conv_impl=patches",
    "--set",
    "layers=conv:4,relu,maxpool,flatten,dense:10",
  ],
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


def command(args: list[str], workdir: Path, *extra: str) -> list[str]:
  return [sys.executable, "-m", "swapjax.main", *args, f"--workdir={workdir}", *extra]


def environment() -> dict[str, str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.setdefault("SWAPJAX_COMPILATION_CACHE", "")
  return env


def rows_of(workdir: Path) -> list[dict]:
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in r.items() if k not in IGNORED} for r in rows]


def membership_of(workdir: Path) -> dict[str, np.ndarray]:
  with np.load(workdir / "membership.npz") as z:
    return {k: z[k] for k in z.files}


def record(name: str, args: list[str], out: Path) -> None:
  target = out / name
  if target.exists():
    shutil.rmtree(target)
  target.mkdir(parents=True)
  with tempfile.TemporaryDirectory() as tmp:
    full = Path(tmp) / "full"
    subprocess.run(command(args, full), check=True, env=environment(), cwd=REPO)
    stopped = target / "stopped"
    subprocess.run(
      command(args, stopped, "--stop_after=1"), check=False, env=environment(), cwd=REPO
    )
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows_of(full))
    (target / "expected.jsonl").write_text(text)
    np.savez(target / "expected_membership.npz", **membership_of(full))
  (target / "args.json").write_text(json.dumps(args, indent=1) + "\n")
  print(f"recorded {target}", file=sys.stderr)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(REPO / "tests" / "old_workdirs"))
  parser.add_argument("names", nargs="*", default=sorted(FIXTURES))
  ns = parser.parse_args()
  for name in ns.names:
    record(name, FIXTURES[name], Path(ns.out))


if __name__ == "__main__":
  main()
