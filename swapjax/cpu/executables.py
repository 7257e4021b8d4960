"""A program compiled for one device, loaded for another device of the same client.

On a split CPU (`cpu_devices`) or with `runs_per_device` chunks on several devices, every chunk
of a program runs the same machine code; only the device differs. XLA:CPU would compile the
program once per device (the device assignment is one of an executable's compile options), so a
split CPU paid each program's compile time twice. `on_device` instead serializes the executable
compiled for one device and loads it for another, the mechanism of JAX's persistent compilation
cache (`jax.experimental.serialize_executable` with the devices and the device assignment
replaced). It uses JAX internals (its pickler classes, `compiler.get_compile_options`), so any
failure returns None and the caller compiles as before; tests/test_scale.py checks that the loaded
program runs on its device and computes bitwise what a compilation for that device computes.

An executable that was itself loaded from the persistent compilation cache does not survive a
second serialization (XLA:CPU then fails at the first call: "Function ... not found"), so
`compile` says whether its result was compiled here; only those are moved.
"""

from __future__ import annotations

import functools
import io
import threading

import jax
import numpy as np
from jax.experimental import serialize_executable

_CACHE_MISS = "/jax/compilation_cache/cache_misses"
_local = threading.local()  # compilations run in threads; the event comes on the compiling one


def _listen(event: str, **kwargs) -> None:
  del kwargs
  if event == _CACHE_MISS:
    _local.missed = True


@functools.cache
def _listening() -> None:
  jax.monitoring.register_event_listener(_listen)


def compile(lowered):  # noqa: A001 - the stage it performs
  """`lowered.compile()`, and whether XLA compiled it here: with a persistent compilation cache,
  only when the cache missed (an in-memory hit may return an executable the cache loaded), i.e.
  whether `on_device` may move it."""
  _listening()
  _local.missed = False
  compiled = lowered.compile()
  return compiled, _local.missed or not jax.config.jax_compilation_cache_dir


def on_device(compiled, device):
  """`compiled` (a `jax.stages.Compiled` for one device, compiled in this process) loaded to
  run on `device`, or None where this JAX cannot (then compile for `device`)."""
  try:
    devices = {d for s in jax.tree.leaves(compiled.input_shardings) for d in s.device_set}
    if len(devices) != 1:
      return None  # a program over a mesh: not one device's code
    return _load(compiled, device)
  except Exception:  # noqa: BLE001 - internals differ between JAX versions; the caller compiles
    return None


def _load(compiled, device):
  from jax._src import compiler

  blob, in_tree, out_tree = serialize_executable.serialize(compiled)
  options = compiler.get_compile_options(
    num_replicas=1, num_partitions=1, device_assignment=np.array([[device]])
  )

  class Unpickler(serialize_executable._JaxPjrtUnpickler):
    def persistent_load(self, pid):
      if pid[0] == "device":  # the one device the program was compiled for
        return device
      if pid[0] == "exec":
        return self.backend.deserialize_executable(
          pid[1], executable_devices=self.execution_devices, compile_options=options
        )
      return super().persistent_load(pid)

  unloaded, args_flat, no_kwargs = Unpickler(io.BytesIO(blob), device.client, [device]).load()
  args_info = in_tree.unflatten(args_flat)
  loaded = jax.stages.Compiled(unloaded.load(), [], args_info, out_tree, no_kwargs=no_kwargs)
  if {d for s in jax.tree.leaves(loaded.input_shardings) for d in s.device_set} != {device}:
    return None  # the arguments did not move with it
  return loaded
