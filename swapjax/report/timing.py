"""The report's timing section from timing.json: device, compile time, seconds per round, and
which groups shared which compiled program with its memory."""

from __future__ import annotations

from typing import Any


def format_bytes(value) -> str:
  """`45 MiB`, or `486 KiB` below a MiB (tiny models' runs); `n/a` when not known."""
  if not value:
    return "n/a"
  return f"{value / 2**20:,.0f} MiB" if value >= 2**20 else f"{value / 2**10:,.0f} KiB"


def timing_lines(timing: dict[str, Any] | None) -> list[str]:
  """Markdown lines of the timing section; none without timing.json."""
  if not timing:
    return []
  return [
    "",
    "## Timing",
    "",
    f"- device: {timing.get('device')} ({timing.get('backend')}), jax {timing.get('jax')}",
    f"- compile: {timing.get('compile_s', float('nan')):.2f} s; rounds timed: "
    f"{timing.get('rounds_timed')}",
    f"- seconds per round: median {timing.get('round_s_median', float('nan')):.3f}, "
    f"min {timing.get('round_s_min', float('nan')):.3f}, "
    f"max {timing.get('round_s_max', float('nan')):.3f}",
    f"- conv formulation {timing.get('conv_impl')}, step driver {timing.get('driver')}"
    + (f", recurrences {timing['rnn_impl']}" if timing.get("rnn_impl") else ""),
  ] + _program_lines(timing.get("programs") or [])


def _program_lines(programs: list[dict[str, Any]]) -> list[str]:
  """Which groups shared which compiled program, its memory and its seconds per round."""
  if not programs:
    return []
  lines = [
    "",
    "Compiled programs (memory: the engine's estimate per run, and XLA's figure for one call: "
    "arguments, outputs and temporaries; seconds: until the program's results each round, "
    "median over rounds after the first):",
    "",
    "| program | groups | runs | runs per call | compile s | s per round | memory per run "
    "(estimate) | memory per call (XLA) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for p in programs:
    seconds = p.get("round_s_median")
    lines.append(
      f"| {p.get('program')} | {', '.join(f'`{g}`' for g in p.get('groups', []))} | "
      f"{p.get('runs')} | {p.get('runs_per_call')} | {p.get('compile_s', 0.0):.1f} | "
      + (f"{seconds:.2f}" if seconds is not None else "n/a")
      + f" | {format_bytes(p.get('memory_estimate_bytes_per_run'))} | "
      f"{format_bytes(p.get('xla_peak_bytes_per_call'))} |"
    )
  return lines
