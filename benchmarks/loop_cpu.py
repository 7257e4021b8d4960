"""The study loop's wall and CPU seconds per round, in one process.

    python3 -m benchmarks.loop_cpu [--experiment=logic_gates] [--rounds=60] [--checkpoint_every=10]
    python3 -m benchmarks.loop_cpu --without=text,write,tensorboard,progress [--repeats=2]
    python3 -m benchmarks.loop_cpu --parts [--repeats=2]

Runs the experiment's real study loop (`swapjax.runner.run`, pipelined: rows, TensorBoard,
checkpoints) in a temporary workdir and measures around its rounds (`runner._rounds`) the wall
time and the process's CPU time (user + system, `resource.getrusage`), each per round. CPU
seconds beside wall seconds say whether the loop waits for the device (CPU below wall) or for
its own Python (a core's worth of CPU per wall second, beside the compiled rounds' own).

`--without` says what each of the loop's host parts costs: the compiled rounds alone, the
whole loop, and the loop with each named part left out (`PARTS`), side by side in one process,
the loops alternating `--repeats` times. A loop without a part writes less than a study does:
its numbers are a measurement, not a mode of the study.

`--parts` says where the loop's main thread spends a round: the milliseconds per round inside
each of its host calls (`TIMED`; `fetch` includes the wait for the device's results), the rest
of the round (`other`) and the compiled rounds alone, for the loop pipelined and in turn
(`pipeline=False`: the device idle while the host works), alternating `--repeats` times. A part
that takes longer pipelined than in turn shares the cores with the device's round.

Two commits side by side: run it alternately in each commit's tree, e.g.
`PYTHONPATH=TREE python3 -m benchmarks.loop_cpu` with TREE a `git worktree` of each commit.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import tempfile
import time
from pathlib import Path
from unittest import mock

from absl import logging

from benchmarks.host_overhead import compiled_round_times, cpu_seconds
from swapjax import checkpoint, registry, runner, tensorboard, workdir
from swapjax.config import apply_overrides
from swapjax.rows import Layout, RoundRows

# A host part of the loop: what leaving it out patches (object, attribute, stand-in).
PARTS = {
  # The rows' JSON text: metrics.jsonl is appended an empty text (its syncs stay).
  "text": (RoundRows, "encoded", lambda self: b""),
  # metrics.jsonl's appends and syncs: the text is built and dropped.
  "write": (workdir.Workdir, "append_metrics_text", lambda self, text, sync=True: None),
  # TensorBoard's events of the round (the group means and one event per row).
  "tensorboard": (tensorboard.EventWriter, "write_round", lambda self, rows: None),
  # The progress line (its means over the runs, the ETA): `RunOptions(progress=False)`.
  "progress": None,
}


# A host call of the loop's main thread that `--parts` times: (object, attribute).
TIMED = {
  "dispatch": (runner, "_dispatch"),
  "fetch": (runner, "_fetch"),
  "health": (runner, "check_health"),
  "rows": (Layout, "rows"),
  "text": (RoundRows, "encoded"),
  "append": (workdir.MetricsAppender, "append"),
  "tensorboard": (tensorboard.EventWriter, "write_round"),
  "checkpoint": (checkpoint.Checkpointer, "save"),
  "progress": (runner, "progress_line"),
}


def _config(experiment: str, rounds: int):
  return apply_overrides(registry.get_config(experiment), [f"rounds={rounds}"])


def _compiled_alone(experiment: str, rounds: int):
  """The first loop of a comparison: the study's compiled rounds alone, measured once."""
  return ("compiled rounds alone", [compiled_round_times(_config(experiment, rounds), rounds)])


def _timed(seconds: dict[str, float], name: str, fn):
  """`fn`, adding the seconds of each call to `seconds[name]`."""

  @functools.wraps(fn)
  def timed(*args, **kwargs):
    t0 = time.perf_counter()
    try:
      return fn(*args, **kwargs)
    finally:
      seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

  return timed


def measure(
  experiment: str,
  rounds: int,
  checkpoint_every: int,
  without: tuple[str, ...] = (),
  pipeline: bool = True,
  parts: bool = False,
) -> dict[str, float]:
  """{"wall_s", "cpu_s"}: per round of the study loop, over all its rounds, with the host
  parts `without` (names in `PARTS`) left out; with `parts`, also each of `TIMED`'s calls'
  seconds per round (and "other", the rest of the round)."""
  config = _config(experiment, rounds)
  measured = {}
  rounds_fn = runner._rounds

  def timed(*args, **kwargs):
    cpu, wall = cpu_seconds(), time.perf_counter()
    try:
      return rounds_fn(*args, **kwargs)
    finally:
      measured["wall_s"] = (time.perf_counter() - wall) / rounds
      measured["cpu_s"] = (cpu_seconds() - cpu) / rounds

  with contextlib.ExitStack() as stack:
    stack.enter_context(mock.patch.object(runner, "_rounds", timed))
    for part in without:
      if PARTS[part] is not None:
        stack.enter_context(mock.patch.object(*PARTS[part]))
    spent: dict[str, float] = {}
    for name, (owner, attribute) in TIMED.items() if parts else ():
      call = _timed(spent, name, getattr(owner, attribute))
      stack.enter_context(mock.patch.object(owner, attribute, call))
    tmp = stack.enter_context(tempfile.TemporaryDirectory())
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    options = runner.RunOptions(
      workdir=str(Path(tmp) / "w"),
      checkpoint_every=checkpoint_every,
      progress="progress" not in without,
      pipeline=pipeline,
    )
    runner.run(config, experiment, options)
  if parts:
    measured.update({name: spent.get(name, 0.0) / rounds for name in TIMED})
    measured["other"] = measured["wall_s"] - sum(measured[name] for name in TIMED)
  return measured


def split(experiment: str, rounds: int, checkpoint_every: int, repeats: int):
  """[(loop, [measure(..., parts=True) per repeat])]: the compiled rounds alone once, then the
  loop pipelined and in turn, alternating `repeats` times."""
  got = [_compiled_alone(experiment, rounds), ("pipelined", []), ("in turn", [])]
  for _ in range(repeats):
    for pipeline, (_, runs) in zip((True, False), got[1:], strict=True):
      runs.append(measure(experiment, rounds, checkpoint_every, pipeline=pipeline, parts=True))
  return got


def render_parts(got) -> str:
  """A Markdown table: per loop, the round's wall and each timed part, milliseconds per round
  (each repeat)."""
  names = ["wall_s", *TIMED, "other"]
  lines = [
    "| loop | " + " | ".join("round" if n == "wall_s" else n for n in names) + " |",
    "| --- |" + " ---: |" * len(names),
  ]
  for loop, runs in got:
    cells = [", ".join(f"{r[n] * 1e3:.1f}" for r in runs) if n in runs[0] else "" for n in names]
    lines.append(f"| {loop} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def compare(experiment: str, rounds: int, checkpoint_every: int, without, repeats: int):
  """[(loop, [{"wall_s", "cpu_s"} per repeat])]: the compiled rounds alone once, then the
  whole loop, each loop without one part of `without`, and (with more than one part) without
  all of them, alternating `repeats` times."""
  loops = [("whole loop", ())] + [(f"without {part}", (part,)) for part in without]
  if len(without) > 1:
    loops.append((f"without {', '.join(without)}", tuple(without)))
  got = [_compiled_alone(experiment, rounds)] + [(name, []) for name, _ in loops]
  for _ in range(repeats):
    for (_, parts), (_, runs) in zip(loops, got[1:], strict=True):
      runs.append(measure(experiment, rounds, checkpoint_every, parts))
  return got


def render(got) -> str:
  """A Markdown table: per loop, wall and CPU seconds per round (each repeat), the wall's
  ratio to the compiled rounds alone."""
  alone = got[0][1][0]["wall_s"]
  lines = [
    "| loop | wall s per round | CPU core-s per round | wall / compiled rounds |",
    "| --- | ---: | ---: | ---: |",
  ]
  for name, runs in got:
    join = lambda key, runs=runs: ", ".join(f"{r[key]:.4f}" for r in runs)
    ratios = ", ".join(f"{r['wall_s'] / alone:.2f}x" for r in runs)
    lines.append(f"| {name} | {join('wall_s')} | {join('cpu_s')} | {ratios} |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiment", default="logic_gates")
  parser.add_argument("--rounds", type=int, default=60)
  parser.add_argument("--checkpoint_every", type=int, default=10)
  parser.add_argument("--without", default="", help=f"comma-separated parts of {sorted(PARTS)}")
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--parts", action="store_true", help="milliseconds per round of each part")
  ns = parser.parse_args()
  without = [part for part in ns.without.split(",") if part]
  if unknown := sorted(set(without) - set(PARTS)):
    parser.error(f"--without: unknown {', '.join(unknown)} (known: {', '.join(PARTS)})")
  logging.set_verbosity(logging.WARNING)  # as the study's start-up: orbax logs saves at INFO
  said = f"{ns.experiment}, {ns.rounds} rounds, a checkpoint every {ns.checkpoint_every}"
  if ns.parts:
    got = split(ns.experiment, ns.rounds, ns.checkpoint_every, ns.repeats)
    print(f"benchmarks: {said}, milliseconds per round\n{render_parts(got)}")
    return
  if without:
    got = compare(ns.experiment, ns.rounds, ns.checkpoint_every, without, ns.repeats)
    print(f"benchmarks: {said}\n{render(got)}")
    return
  got = measure(ns.experiment, ns.rounds, ns.checkpoint_every)
  print(f"benchmarks: {said}: wall {got['wall_s']:.4f} s per round, CPU {got['cpu_s']:.4f} core-s")


if __name__ == "__main__":
  main()
