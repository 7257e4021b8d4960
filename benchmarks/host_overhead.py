"""The study loop's host work against the compiled rounds alone: `python3 -m benchmarks.run
--preset=host_overhead [--cases=iris,logic_gates] [--repeats=N] [--out=DIR]`.

For each case, in one process, each of `--repeats` times: the compiled rounds alone (the programs of
the study, dispatched round after round with nothing read back until the last: the device's time per
round), then the real study loop (`swapjax.runner.run`: health checks, metrics.jsonl, TensorBoard,
an orbax checkpoint every round, the progress line) with its rounds in turn (`pipeline=False`,
the loop before pipelining), pipelined (round r+1 dispatched before round r is written), and
pipelined with a checkpoint every `EVERY` rounds (`--checkpoint_every`), and pipelined with
continuous checkpoints (`--checkpoint_every=0`: after each round whose previous checkpoint's write
has finished), with and without `--checkpoint_min_interval=MIN_INTERVAL` (at least that many seconds
apart). The loop's seconds per round are the mean wall time of its rounds after the first
(timing.json `wall_s`), the compiled rounds' the mean over the same rounds (the same test passes);
the ratio is the median over the repeats of a loop's wall per round over the median of the compiled
round, each repeat's baseline timed beside its loops. Synthetic or generated data of each study's
shapes; the persistent compilation cache is whatever the environment sets.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import jax
from absl import logging

from swapjax import registry, runner, study
from swapjax.config import apply_overrides
from swapjax.programs import compile_programs

EVERY = 10  # --checkpoint_every of the third loop
MIN_INTERVAL = 1  # --checkpoint_min_interval of the fifth

# name: (experiment, overrides). Rounds are set by the benchmark.
CASES = {
  # The README's main job (report 004's CNN on 3,000 images, random labels), synthetic images.
  "main_job": ("memorize_mnist", ["source=synthetic", "early_stop=false"]),
  # Tiny networks: 3 programs x 100 networks, and 6 programs x 1,000.
  "iris": ("iris", []),
  "logic_gates": ("logic_gates", []),
  # Report 002's base group: 100 RNNs of 16 units.
  "binary_addition_base": ("binary_addition", ["groups=base"]),
}


def _config(case: str, rounds: int):
  experiment, overrides = CASES[case]
  config = apply_overrides(registry.get_config(experiment), [*overrides, f"rounds={rounds}"])
  return experiment, config


def cpu_seconds() -> float:
  """The process's CPU seconds so far, user and system, all its threads."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def compiled_round_times(config, rounds: int) -> dict[str, float]:
  """{"wall_s", "cpu_s"}: seconds per round of the study's programs alone, wall and the
  process's CPU: one warm-up round, then rounds 2 to `rounds` dispatched one after another,
  waiting only for the last."""
  programs = study.build_programs(config, study.load_datasets(config, None, None))
  states = study.init_states(programs)
  programs, _, _ = compile_programs(programs, states)

  def run(first: int, count: int):
    nonlocal states
    for rnd in range(first, first + count):
      due = study.test_due(config, rnd)
      states = [study.step_round(p, s, due)[0] for p, s in zip(programs, states, strict=True)]
    jax.block_until_ready(states)

  run(0, 1)
  t0, cpu0 = time.perf_counter(), cpu_seconds()
  run(1, rounds - 1)
  return {
    "wall_s": (time.perf_counter() - t0) / (rounds - 1),
    "cpu_s": (cpu_seconds() - cpu0) / (rounds - 1),
  }


def compiled_rounds(config, rounds: int) -> float:
  """Mean wall seconds per round of the study's programs alone (`compiled_round_times`)."""
  return compiled_round_times(config, rounds)["wall_s"]


def study_loop(
  experiment: str, config, pipeline: bool, checkpoint_every: int = 1, min_interval: int = 0
) -> float:
  """Mean wall seconds per round of the real study loop in a new workdir, rounds 2 to the
  last (the rounds `compiled_rounds` times: the same test passes)."""
  with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
    options = runner.RunOptions(
      workdir=str(Path(tmp) / "w"),
      pipeline=pipeline,
      checkpoint_every=checkpoint_every,
      checkpoint_min_interval=min_interval,
    )
    runner.run(config, experiment, options)
    timing = json.loads((Path(tmp) / "w" / "timing.json").read_text())
  return statistics.mean(timing["wall_s"][1:])


# (name, table header, pipelined, checkpoint_every, checkpoint_min_interval) of the loops timed
# against the compiled rounds; the last two checkpoint continuously (`--checkpoint_every=0`:
# each round whose previous write is done, the last at least MIN_INTERVAL seconds apart).
LOOPS = (
  ("in turn", "loop in turn: wall s (ratio)", False, 1, 0),
  ("pipelined", "pipelined: wall s (ratio)", True, 1, 0),
  (f"every {EVERY}", f"pipelined, checkpoint every {EVERY} rounds", True, EVERY, 0),
  ("continuous", "pipelined, continuous checkpoints", True, 0, 0),
  (
    f"continuous {MIN_INTERVAL} s",
    f"pipelined, continuous checkpoints at least {MIN_INTERVAL} s apart",
    True,
    0,
    MIN_INTERVAL,
  ),
)


def measure(cases, rounds: int, repeats: int) -> dict:
  """{case: seconds per round}: each repeat times the compiled rounds alone, then each loop of
  LOOPS, so the baseline is measured beside the loops it divides (a machine whose speed drifts
  moves both); medians over the repeats, and every repeat's (`_all`)."""
  results = {}
  for case in cases:
    experiment, config = _config(case, rounds)
    alone, loops = [], {name: [] for name, *_ in LOOPS}
    for _ in range(repeats):
      alone.append(compiled_rounds(config, rounds))
      for name, _, pipeline, every, min_interval in LOOPS:
        loops[name].append(study_loop(experiment, config, pipeline, every, min_interval))
    results[case] = {
      "compiled_round_s": statistics.median(alone),
      "compiled_round_s_all": alone,
      **{f"{name} wall_s": statistics.median(v) for name, v in loops.items()},
      **{f"{name} wall_s_all": v for name, v in loops.items()},
    }
    print(f"benchmarks: {case}: {results[case]}", flush=True)
  return results


def render(report) -> str:
  lines = [
    f"# Host overhead of the study loop ({report['device']}, jax {report['jax']}, "
    f"{report['rounds']} rounds, {report['repeats']} repeats)",
    "",
    "| case | compiled round s | " + " | ".join(header for _, header, *_ in LOOPS) + " |",
    "| --- | ---: | " + " | ".join("---:" for _ in LOOPS) + " |",
  ]
  for case, r in report["cases"].items():
    alone = r["compiled_round_s"]
    names = [f"{name} wall_s" for name, *_ in LOOPS if f"{name} wall_s" in r]
    cells = [f"{r[k]:.4f} ({r[k] / alone:.2f}x)" for k in names]
    lines.append(f"| {case} | {alone:.4f} | {' | '.join(cells)} |")
  return "\n".join(lines) + "\n"


def report(cases, rounds: int, repeats: int) -> dict:
  logging.set_verbosity(logging.WARNING)  # as the study's start-up: orbax logs saves at INFO
  return {
    "preset": "host_overhead",
    "backend": jax.default_backend(),
    "device": jax.devices()[0].device_kind,
    "jax": jax.__version__,
    "rounds": rounds,
    "repeats": repeats,
    "cases": measure(cases, rounds, repeats),
  }
