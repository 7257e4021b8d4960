"""A round for a second CPU device: compiled afresh, or the first device's executable reused.

    python3 -m benchmarks.executable_reuse [--groups=base,units128,adam] [--trials=2]

On a split CPU (`cpu_devices`) each chunk of a program runs on its own XLA device, and XLA:CPU
compiles a program for one device assignment. This benchmark builds binary_addition's round
programs (the named groups, the experiment's default sizes) on two CPU devices, as the runner
does, compiles each group's round for device 0 and then times, in one process, side by side:

- `fresh`: lowering and compiling the round for device 1 (what the runner does);
- `public`: `jax.experimental.serialize_executable.serialize` then `deserialize_and_load` with
  device 1 as the execution device, the public API's reuse; it loads the executable only with
  the device it was compiled for (the devices and the device assignment travel in the
  serialized form), so the row gives the reason it fails and the seconds of the same round trip
  onto device 0 (what a reuse by public API would cost if it could change the device);
- `internal`: the executable moved to device 1 by rewriting its device assignment through JAX
  internals (`jax._src.compiler.get_compile_options`, a subclass of the private unpickler, the
  keyword arguments of `Client.deserialize_executable`), checked to compute on device 1 what
  the fresh compilation computes; here only to measure what swapjax gives up (DESIGN 11).

No persistent compilation cache; `jax.clear_caches()` before every trial. Prints one line per
group and trial and the totals per method. Then, as the CLI runs a study (a persistent
compilation cache, on by default), two processes in turn compile every group for both devices
with one new cache folder: the first process misses and writes the cache, the second loads both
executables from it. A moved executable never reaches the cache (and only one compiled in the
process can move: one loaded from the cache fails when serialized again), so with the move a
study's second run would compile device 1's round, and only its third would load both.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax

jax.config.update("jax_num_cpu_devices", 2)

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from jax.experimental import serialize_executable  # noqa: E402

from swapjax import registry, study  # noqa: E402
from swapjax.config import apply_overrides  # noqa: E402

GROUPS = flags.DEFINE_list("groups", ["base", "units128", "adam"], "binary_addition's groups.")
TRIALS = flags.DEFINE_integer("trials", 2, "Repetitions of every measurement.")
CACHE_DIR = flags.DEFINE_string(
  "cache_dir", None, "Internal: compile both devices' rounds with this persistent cache."
)


def _programs():
  config = apply_overrides(
    registry.get_config("binary_addition"), [f"groups={','.join(GROUPS.value)}"]
  )
  programs = study.build_programs(
    config, study.load_datasets(config, None, None), None, jax.devices(), len(jax.devices())
  )
  pairs = {}
  for built in programs:
    pairs.setdefault(built.program, []).append(built)
  for group in pairs.values():
    assert [p.device.id for p in group] == [0, 1], [p.device for p in group]
  return config, list(pairs.values())


def _args(built):
  state = study.init_states([built])[0]
  return state, built.pool, built.runs, np.asarray(False)


def _timed(fn):
  t0 = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t0


def _public(compiled, device):
  """The public API's reuse onto `device`: (None, why) where it cannot; the seconds of the
  round trip onto the executable's own device."""
  blob, in_tree, out_tree = serialize_executable.serialize(compiled)
  try:
    loaded = serialize_executable.deserialize_and_load(
      blob, in_tree, out_tree, execution_devices=[device]
    )
    devices = {d for s in jax.tree.leaves(loaded.input_shardings) for d in s.device_set}
    why = "" if devices == {device} else f"loaded for {sorted(devices, key=str)}"
  except Exception as e:  # noqa: BLE001 - the reason is the measurement
    why = f"{type(e).__name__}: {str(e)[:80]}"
  (own,) = {d for s in jax.tree.leaves(compiled.input_shardings) for d in s.device_set}

  def round_trip():
    data, tree_in, tree_out = serialize_executable.serialize(compiled)
    return serialize_executable.deserialize_and_load(
      data, tree_in, tree_out, execution_devices=[own]
    )

  _, seconds = _timed(round_trip)
  return why, seconds


def _internal(compiled, device):
  """The removed reuse: the executable reloaded with `device` as its device assignment."""
  from jax._src import compiler  # the internals this benchmark measures the absence of

  blob, in_tree, out_tree = serialize_executable.serialize(compiled)
  options = compiler.get_compile_options(
    num_replicas=1, num_partitions=1, device_assignment=np.array([[device]])
  )

  class Unpickler(serialize_executable._JaxPjrtUnpickler):
    def persistent_load(self, pid):
      if pid[0] == "device":
        return device
      if pid[0] == "exec":
        return self.backend.deserialize_executable(
          pid[1], executable_devices=self.execution_devices, compile_options=options
        )
      return super().persistent_load(pid)

  unloaded, args_flat, no_kwargs = Unpickler(io.BytesIO(blob), device.client, [device]).load()
  args_info = in_tree.unflatten(args_flat)
  return jax.stages.Compiled(unloaded.load(), [], args_info, out_tree, no_kwargs=no_kwargs)


def _with_cache(pairs, names) -> None:
  """One pass: each group's round compiled for device 0 and for device 1 with the persistent
  cache `--cache_dir`; prints {group: [seconds device 0, seconds device 1]} as JSON."""
  out = {}
  for pair in pairs:
    seconds = []
    for built in pair:
      args = _args(built)
      seconds.append(_timed(lambda b=built, a=args: b.round_fn.lower(*a).compile())[1])
    out[names[pair[0].program]] = seconds
  print(json.dumps(out))


def _cache_runs() -> None:
  """Two processes, one after the other, on one new persistent cache folder."""
  with tempfile.TemporaryDirectory() as folder:
    for name in ("cold cache (misses, writes)", "warm cache (loads)"):
      args = [sys.executable, "-m", "benchmarks.executable_reuse", f"--cache_dir={folder}"]
      args += [f"--groups={','.join(GROUPS.value)}"]
      done = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ))
      if done.returncode:
        print(f"  {name}: failed: {done.stderr[-500:]}")
        return
      seconds = json.loads(done.stdout.strip().splitlines()[-1])
      rows = ", ".join(f"{g} {a:.2f} + {b:.2f}" for g, (a, b) in seconds.items())
      total = sum(a + b for a, b in seconds.values())
      print(f"  {name}: device 0 + device 1 per group: {rows}; total {total:.2f} s", flush=True)


def main(argv):
  del argv
  if CACHE_DIR.value:
    jax.config.update("jax_compilation_cache_dir", CACHE_DIR.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  config, pairs = _programs()
  names = {p.program: ",".join(sorted(set(p.groups))) for group in pairs for p in group}
  if CACHE_DIR.value:
    _with_cache(pairs, names)
    return
  totals = {"first": [], "fresh": [], "public": [], "internal": []}
  print(
    f"jax {jax.__version__}, {jax.devices()}, groups {GROUPS.value}, "
    f"{config.num_seeds} seeds in chunks of {len(pairs[0][0].runs_table)}"
  )
  for trial in range(TRIALS.value):
    jax.clear_caches()
    sums = dict.fromkeys(totals, 0.0)
    for first, second in pairs:
      args0, args1 = _args(first), _args(second)
      compiled, t_first = _timed(lambda f=first, a=args0: f.round_fn.lower(*a).compile())
      lowered, t_lower = _timed(lambda s=second, a=args1: s.round_fn.lower(*a))
      direct, t_compile = _timed(lowered.compile)
      why, t_public = _public(compiled, second.device)
      try:
        moved, t_internal = _timed(lambda c=compiled, d=second.device: _internal(c, d))
        got, want = moved(*_args(second)), direct(*_args(second))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
          assert a.devices() == {second.device}
          np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
      except Exception as e:  # noqa: BLE001 - internals differ between JAX versions
        t_internal = float("nan")
        print(f"  internal reuse failed: {type(e).__name__}: {str(e)[:120]}")
      row = {
        "first": t_first,
        "fresh": t_lower + t_compile,
        "public": t_public,
        "internal": t_internal,
      }
      for k, v in row.items():
        sums[k] += v
      print(
        f"trial {trial} {names[first.program]:>10}: device 0 {t_first:6.2f} s | "
        f"device 1 fresh {t_lower + t_compile:6.2f} s (lower {t_lower:.2f}, compile "
        f"{t_compile:.2f}) | public reuse: {why or 'ok'}, round trip {t_public:.2f} s | "
        f"internal reuse {t_internal:.2f} s",
        flush=True,
      )
    for k, v in sums.items():
      totals[k].append(v)
  print("totals over the groups, median of trials (s):")
  for k, v in totals.items():
    print(f"  {k:>8}: {statistics.median(v):6.2f}  {[round(x, 2) for x in v]}")
  print("with a persistent compilation cache, one process after the other (s):")
  _cache_runs()


if __name__ == "__main__":
  app.run(main)
