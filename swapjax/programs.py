"""Compiling a study's programs, and the timing report (timing.json) of their rounds."""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import numpy as np

from swapjax import backend, report
from swapjax import mesh as meshlib
from swapjax.study import compiled_once


def runs_per_call(programs) -> list[int]:
  """Each program's runs per compiled call (its chunk), in program order."""
  sizes = {}
  for built in programs:
    sizes.setdefault(built.program, len(built.runs_table))
  return [sizes[i] for i in sorted(sizes)]


def compile_programs(programs, states):
  """AOT-compiles each program's round once per device (its chunks on one device share it);
  returns the programs with compiled rounds and the compile seconds per program.

  One program at a time: XLA:CPU compiles one program on several cores already (the
  binary-addition study's 7 programs: 22.1 / 23.5 s one at a time, 27.6 / 26.1 s two at a time
  in threads; AMD EPYC, 2 cores, 2026-12-01, benchmarks/results/history/2026-12-01-compile-once.md).
  Chunks on other single devices (a split CPU, `runs_per_device`) compile the program for their
  device: JAX's public API loads an executable only on the device it was compiled for, and the
  persistent compilation cache keeps each device's code for later runs. Chunks another process
  runs are compiled there. Programs whose rounds trace to one computation
  (`study.fingerprint`) share one executable: it is lowered and compiled once."""
  results, peak = {}, {}
  compiled, source = {}, {}  # `study.compiled_once`'s; {program: the program compiled for}
  start = time.perf_counter()
  for built, state in zip(programs, states, strict=True):
    key = (built.program, getattr(built.device, "id", None))
    if built.driver != "scan" or key in results or not meshlib.owns(built.device):
      continue
    t0 = time.perf_counter()
    args = (state, built.pool, built.runs, np.asarray(False))
    done, owner = compiled_once(built.round_fn, args, built.device, compiled, owner=key)
    if owner != key:
      source[key] = owner
    results[key] = (done, time.perf_counter() - t0)
  if len(results) > 1:
    took = f"took {time.perf_counter() - start:.1f} s"
    if len(compiled) == len(results):  # `compiled`: one entry per compilation
      print(f"swapjax: {len(results)} compilations {took}")
    else:
      many = "compilation" + ("s" if len(compiled) > 1 else "")
      print(f"swapjax: {len(results)} programs, {len(compiled)} {many} {took} (the others' "
            "rounds are the same computation of their own arrays)")  # fmt: skip
  built_of = {(p.program, getattr(p.device, "id", None)): p for p in programs}
  names_of = lambda i: sorted({g for p in programs if p.program == i for g in p.groups})  # noqa: E731
  per_program = {}
  for key, (done, took) in results.items():
    built = built_of[key]
    per_program[built.program] = per_program.get(built.program, 0.0) + took
    peak[built.program] = xla_peak_bytes(done)
    groups = names_of(built.program)
    per_run, _ = built.memory_estimate
    what = f"the round of {len(built.runs_table)} runs x {built.config.members} members"
    if key in source:
      same = ", ".join(names_of(built_of[source[key]].program))
      what = f"{what} ({', '.join(groups)}) is {same}'s program (traced in {took:.1f} s)"
    else:
      what = f"compiled {what} ({', '.join(groups)}) in {took:.1f} s"
    print(
      f"swapjax: {what}"
      + (f" for {built.device}" if built.device else "")
      + f"; memory: ~{report.format_bytes(per_run)} per run (estimate), XLA's figure per "
      + f"call {report.format_bytes(peak[built.program])}",
      flush=True,
    )
  compiled = []
  for built in programs:
    key = (built.program, getattr(built.device, "id", None))
    if key in results:
      built = dataclasses.replace(built, round_fn=results[key][0])
    compiled.append(built)
  return compiled, per_program, peak


def xla_peak_bytes(compiled) -> int | None:
  """XLA's figure for a compiled program's device memory: arguments + outputs + temporaries -
  donated (aliased) buffers. (`peak_memory_in_bytes` on XLA:CPU counts the arguments only.)"""
  try:
    stats = compiled.memory_analysis()
  except Exception:  # noqa: BLE001 - not every backend reports it
    return None
  if stats is None:
    return None
  parts = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
  return int(sum(getattr(stats, p, 0) for p in parts) - getattr(stats, "alias_size_in_bytes", 0))


def timing_report(meta, programs, compile_s, peak_bytes, times, finished_early) -> dict[str, Any]:
  """timing.json's contents. `times`: per round of this process, (seconds from the previous
  round's results to its own, {program: seconds until its results}, the whole iteration,
  the wait from the iteration's start until its results) as the runner's clock keeps them;
  the medians, minima and maxima leave out the first round (it waits for the first call)."""
  round_times, program_times, wall_times, wait_times = times
  steady = round_times[1:] if len(round_times) > 1 else round_times
  steady_wait = wait_times[1:] if len(wait_times) > 1 else wait_times
  steady_programs = program_times[1:] if len(program_times) > 1 else program_times

  def program_median(i):
    values = [t[i] for t in steady_programs if i in t]
    return statistics.median(values) if values else None

  of = lambda i: [p for p in programs if p.program == i]  # noqa: E731
  sizes = dict(enumerate(runs_per_call(programs)))
  return {
    "backend": jax.default_backend(),
    "device": meta["device"],
    "device_count": jax.device_count(),
    "jax": jax.__version__,
    "compile_s": sum(compile_s.values()),
    "programs": [
      {
        "program": i,
        "variant": of(i)[0].config.variant,
        "train_fraction": of(i)[0].config.data.train_fraction[0],
        "groups": sorted({g for p in of(i) for g in p.groups}),
        "runs": sum(len(p.runs_table) for p in of(i)),
        "runs_per_call": sizes[i],
        "calls_per_round": len(of(i)),
        "rnn_impl": backend.rnn_impl(of(i)[0].config),
        "compile_s": compile_s.get(i, 0.0),
        "memory_estimate_bytes_per_run": of(i)[0].memory_estimate[0],
        "memory_estimate_bytes_per_program": of(i)[0].memory_estimate[1],
        "xla_peak_bytes_per_call": peak_bytes.get(i),
        # Seconds until the program's results each round (its own time on one device).
        "round_s_median": program_median(i),
      }
      for i in sorted({p.program for p in programs})
    ],
    "schedule": "interleaved: every program runs round r before any runs round r + 1",
    "rounds_timed": len(round_times),
    # From one round's results to the next's (the first: from its dispatch): the study's pace.
    "round_s": round_times,
    # Each round's whole iteration: results, health checks, rows, TensorBoard, checkpoint.
    "wall_s": wall_times,
    # From each iteration's start until its round's results: the host's wait for the device.
    "wait_s": wait_times,
    "conv_impl": programs[0].conv_impl,
    "rnn_impl": rnn_impls(programs),
    "driver": programs[0].driver,
    "round_s_median": statistics.median(steady) if steady else float("nan"),
    "round_s_min": min(steady) if steady else float("nan"),
    "round_s_max": max(steady) if steady else float("nan"),
    "wait_s_median": statistics.median(steady_wait) if steady_wait else float("nan"),
    "finished_early": finished_early,
  }


def rnn_impls(programs) -> str | None:
  """The recurrences' formulation: one name, or the most common one and the groups of the
  others (`native; fused for units128`); None without recurrent layers."""
  by_impl = {}
  for p in programs:
    impl = backend.rnn_impl(p.config)
    if impl:
      by_impl.setdefault(impl, set()).update(p.groups)
  if not by_impl:
    return None
  common = max(by_impl, key=lambda impl: len(by_impl[impl]))
  others = [f"{impl} for {', '.join(sorted(g))}" for impl, g in by_impl.items() if impl != common]
  return "; ".join([common, *others])
