"""What one checkpoint costs the study loop, by the size of a packed state.

    python3 -m benchmarks.checkpoint_save [--sizes_mb=1,10,60] [--saves=6] [--repeats=3]

Saves a packed state (one float32 array of the given size and a step counter, the shape
`swapjax.checkpoint.to_saved` gives a study's state) through `swapjax.checkpoint.Checkpointer`,
`--saves` times in a row, and times each save's call (what the round loop waits for before its
next round) and the call with orbax's background write (`wait`). Two variants, alternating, in
one process: orbax as swapjax runs it, whose host-array handler copies every array before its
write, and the same handler with that copy off (`deepcopy_host_arrays=False`, registered only
while that variant runs). The first save of each series is left out (orbax's start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from benchmarks.timing import median_range
from swapjax import checkpoint

VARIANTS = ("orbax's default (copies)", "no host-array copy")


@contextlib.contextmanager
def numpy_handler(copy: bool):
  """orbax's numpy-array handler with its copy on or off, the registered one restored after."""
  registered = ocp.type_handlers.get_type_handler(np.ndarray)
  if not copy:
    handler = ocp.type_handlers.NumpyHandler(deepcopy_host_arrays=False)
    ocp.type_handlers.register_type_handler(np.ndarray, handler, override=True)
  try:
    yield
  finally:
    ocp.type_handlers.register_type_handler(np.ndarray, registered, override=True)


def series(directory: Path, megabytes: float, saves: int) -> list[tuple[float, float]]:
  """(call s, call and write s) of saves 2..`saves` of a packed state of `megabytes`."""
  values = np.random.default_rng(0).standard_normal(int(megabytes * 2**20 / 4))
  state = {"params": jax.device_put(values.astype(np.float32)), "step": jax.device_put(1)}
  times = []
  with checkpoint.Checkpointer(directory) as ckpt:
    for step in range(1, saves + 1):
      t0 = time.perf_counter()
      ckpt.save(step, state)
      t1 = time.perf_counter()
      ckpt.wait()
      times.append((t1 - t0, time.perf_counter() - t0))
  return times[1:]


def measure(sizes_mb, saves: int, repeats: int) -> dict:
  """{size: {variant: [(call s, with write s), ...]}}, the variants alternating."""
  found = {size: {v: [] for v in VARIANTS} for size in sizes_mb}
  with tempfile.TemporaryDirectory() as tmp:
    for size in sizes_mb:
      for r in range(repeats):
        for i, variant in enumerate(VARIANTS):
          with numpy_handler(copy=i == 0):
            found[size][variant] += series(Path(tmp) / f"{size}-{r}-{i}", size, saves)
  return found


def render(found) -> str:
  lines = [
    "| state | orbax | save call, ms (median, range) | with the write, ms (median, range) |",
    "| ---: | --- | ---: | ---: |",
  ]
  for size, variants in found.items():
    for variant, times in variants.items():
      cells = [median_range([1e3 * t[k] for t in times], ".1f") for k in (0, 1)]
      lines.append(f"| {size:g} MB | {variant} | {cells[0]} | {cells[1]} |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes_mb", default="1,10,60")
  parser.add_argument("--saves", type=int, default=6)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  try:
    sizes = [float(x) for x in args.sizes_mb.split(",")]
  except ValueError:
    sizes = []
  if not sizes or min(sizes) <= 0 or max(sizes) * 2**20 > checkpoint.PACK_BYTES or args.saves < 2:
    raise SystemExit("benchmarks: --sizes_mb numbers in (0, 64] (packed states), --saves >= 2")
  logging.set_verbosity(logging.ERROR)  # orbax logs every save, and each handler registered
  print(render(measure(sizes, args.saves, args.repeats)))


if __name__ == "__main__":
  main()
