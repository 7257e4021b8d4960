"""The study loop's wall and CPU seconds per round, in one process.

    python3 -m benchmarks.loop_cpu [--experiment=logic_gates] [--rounds=60] [--checkpoint_every=10]

Runs the experiment's real study loop (`swapjax.runner.run`, pipelined: rows, TensorBoard,
checkpoints) in a temporary workdir and measures around its rounds (`runner._rounds`) the wall
time and the process's CPU time (user + system, `resource.getrusage`), each per round. CPU
seconds beside wall seconds say whether the loop waits for the device (CPU below wall) or for
its own Python (a core's worth of CPU per wall second, beside the compiled rounds' own).

Two commits side by side: run it alternately in each commit's tree, e.g.
`PYTHONPATH=TREE python3 -m benchmarks.loop_cpu` with TREE a `git worktree` of each commit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import tempfile
import time
from pathlib import Path

from absl import logging

from swapjax import registry, runner
from swapjax.config import apply_overrides


def _cpu_s() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def measure(experiment: str, rounds: int, checkpoint_every: int) -> dict[str, float]:
  """{"wall_s", "cpu_s"}: per round of the study loop, over all its rounds."""
  config = apply_overrides(registry.get_config(experiment), [f"rounds={rounds}"])
  measured = {}
  rounds_fn = runner._rounds

  def timed(*args, **kwargs):
    cpu, wall = _cpu_s(), time.perf_counter()
    try:
      return rounds_fn(*args, **kwargs)
    finally:
      measured["wall_s"] = (time.perf_counter() - wall) / rounds
      measured["cpu_s"] = (_cpu_s() - cpu) / rounds

  runner._rounds = timed
  try:
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
      options = runner.RunOptions(workdir=str(Path(tmp) / "w"), checkpoint_every=checkpoint_every)
      runner.run(config, experiment, options)
  finally:
    runner._rounds = rounds_fn
  return measured


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiment", default="logic_gates")
  parser.add_argument("--rounds", type=int, default=60)
  parser.add_argument("--checkpoint_every", type=int, default=10)
  ns = parser.parse_args()
  logging.set_verbosity(logging.WARNING)  # as the study's start-up: orbax logs saves at INFO
  got = measure(ns.experiment, ns.rounds, ns.checkpoint_every)
  print(
    f"benchmarks: {ns.experiment}, {ns.rounds} rounds, a checkpoint every "
    f"{ns.checkpoint_every}: wall {got['wall_s']:.4f} s per round, CPU {got['cpu_s']:.4f} core-s"
  )


if __name__ == "__main__":
  main()
