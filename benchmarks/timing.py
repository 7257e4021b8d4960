"""The benchmarks' clock and what a timed round holds (no flags, no JAX: the PyTorch reference
uses it too)."""

from __future__ import annotations

import time
from collections.abc import Callable


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


def tests_every_round(cfg) -> bool:
  """Whether every round of the study evaluates its test set: the swap study's rounds do, and a
  memorization study's with `test_every=1`; other rounds are timed without the test pass, which
  runs every few rounds."""
  return cfg.kind.tests_every_round or cfg.test_every == 1
