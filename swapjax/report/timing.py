"""The report's timing section: the rounds' time summed from metrics.jsonl (over every process
that ran them), and from timing.json (the last process that ended the study) the device,
compile time, seconds per round, and which groups shared which compiled program with its
memory."""

from __future__ import annotations

import math
from typing import Any

from swapjax.progress import duration
from swapjax.report import stats


def format_bytes(value) -> str:
  """`45 MiB`, or `486 KiB` below a MiB (tiny models' runs); `n/a` when not known."""
  if not value:
    return "n/a"
  return f"{value / 2**20:,.0f} MiB" if value >= 2**20 else f"{value / 2**10:,.0f} KiB"


def seconds_text(value) -> str:
  """Seconds to three significant digits (`0.0463`, `2.21`, `18.4`), whole from 100 on, `n/a`
  for none: a round of tiny networks takes milliseconds, a CIFAR-10 round minutes."""
  if value is None or not math.isfinite(value):
    return "n/a"
  return f"{value:.0f}" if value >= 100 else f"{value:.3g}" if value >= 1e-3 else f"{value:.5f}"


def rounds_time_line(rows, more_follows: bool = False) -> list[str]:
  """One line: how many rounds metrics.jsonl holds and their `time/round_s` summed, over every
  process that ran them (timing.json covers the last process that ended the study); none
  when no row has the time. `more_follows`: timing.json's lines come next."""
  key = stats.round_key(rows) if rows else None
  seconds = {r[key]: r["time/round_s"] for r in rows if r.get("time/round_s") is not None}
  if not seconds:
    return []
  first, last = min(seconds), max(seconds)
  total = sum(seconds.values())
  summed = duration(total) if total >= 60 else f"{seconds_text(total)} s"
  after = (
    "; the lines below: timing.json, of the process that ended the study" if more_follows else ""
  )
  return [
    f"- rounds in metrics.jsonl: {len(seconds):,} ({first:,}-{last:,}), their `time/round_s` "
    f"summed: {summed} (every process that ran them{after})"
  ]


def timing_lines(timing: dict[str, Any] | None, rows=()) -> list[str]:
  """Markdown lines of the timing section: the rounds' time summed from metrics `rows`, and
  timing.json's numbers (of the process that ended the study); none without either."""
  head = ["", "## Timing", ""] + rounds_time_line(rows, more_follows=bool(timing))
  if not timing:
    none = "- timing.json: none (written when the study ends: its last round or an early stop)"
    return [*head, none] if rows else []
  return (
    head
    + [
      f"- device: {timing.get('device')} ({timing.get('backend')}), jax {timing.get('jax')}",
      f"- compile: {timing.get('compile_s', float('nan')):.2f} s; rounds timed: "
      f"{timing.get('rounds_timed')}",
      _round_line(timing),
      f"- conv formulation {timing.get('conv_impl')}, step driver {timing.get('driver')}"
      + (f", recurrences {timing['rnn_impl']}" if timing.get("rnn_impl") else ""),
    ]
    + _program_lines(timing.get("programs") or [])
  )


def _round_line(timing: dict[str, Any]) -> str:
  """The seconds per round after the first: from one round's results to the next's, and of it
  the wait for the device. A timing.json without `wait_s_median` (an earlier swapjax) timed
  each round until its results only, which leaves out the host's work of a pipelined round."""
  spread = ", ".join(
    f"{what} {seconds_text(timing.get(f'round_s_{what}'))}" for what in ("median", "min", "max")
  )
  if "wait_s_median" not in timing:
    return f"- seconds per round until its results (timing.json of an earlier swapjax): {spread}"
  return (
    f"- seconds per round (from one round's results to the next's, the host's work included): "
    f"{spread}; of it waiting for the device's results: median "
    f"{seconds_text(timing['wait_s_median'])}"
  )


def _program_lines(programs: list[dict[str, Any]]) -> list[str]:
  """Which groups shared which compiled program, its memory and its seconds per round."""
  if not programs:
    return []
  lines = [
    "",
    "Compiled programs (memory: the engine's estimate per run, and XLA's figure for one call: "
    "arguments, outputs and temporaries; s until results: how long the host waited for the "
    "program's results each round, after the programs before it, median over rounds after the "
    "first; pipelined, the device runs a round while the host writes the one before, so the "
    "wait is what the host's work did not cover):",
    "",
    "| program | groups | runs | runs per call | compile s | s until results | memory per run "
    "(estimate) | memory per call (XLA) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for p in programs:
    seconds = p.get("round_s_median")
    lines.append(
      f"| {p.get('program')} | {', '.join(f'`{g}`' for g in p.get('groups', []))} | "
      f"{p.get('runs')} | {p.get('runs_per_call')} | {p.get('compile_s', 0.0):.1f} | "
      + seconds_text(seconds)
      + f" | {format_bytes(p.get('memory_estimate_bytes_per_run'))} | "
      f"{format_bytes(p.get('xla_peak_bytes_per_call'))} |"
    )
  return lines
