"""The benchmarks' clock and what a timed round holds (no flags, no JAX: the PyTorch reference
uses it too)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def timed(call: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
  """Seconds of a warm-up `call()` (compiles, allocates) and of each of `repeats` more calls.
  `call` waits for its own results (`block_until_ready`, a CUDA sync) before it returns."""
  t0 = time.perf_counter()
  call()
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
  return first, times


def median_range(values, spec: str) -> str:
  """`median (min-max)` of `values`, each number formatted with `spec` (e.g. ".2f")."""
  return f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def tests_every_round(cfg) -> bool:
  """Whether every round of the study evaluates its test set: the swap study's rounds do, and a
  memorization study's with `test_every=1`; other rounds are timed without the test pass, which
  runs every few rounds."""
  return cfg.kind.tests_every_round or cfg.test_every == 1


def write_report(folder: str, json_name: str, md_name: str, report: dict, render) -> None:
  """Writes `report` as FOLDER/JSON_NAME.json and its markdown `render(report)` as
  FOLDER/MD_NAME.md, and prints the markdown."""
  out = Path(folder)
  out.mkdir(parents=True, exist_ok=True)
  (out / f"{json_name}.json").write_text(json.dumps(report, indent=2) + "\n")
  text = render(report)
  (out / f"{md_name}.md").write_text(text)
  print(text)
