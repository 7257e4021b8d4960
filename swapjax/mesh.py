"""Scale-out on JAX's own engine: a `Mesh` whose `runs` axis shards the runs (population
parallelism) and whose `data` axis may split a member's batch; multi-host via
`jax.distributed.initialize()`, the same program on every process.

Every array with a leading run axis is sharded on `runs`; everything else (images, the holdout
set, the round counter) is replicated. Runs never exchange data, so sharding them changes
where each run is computed, not what.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# XLA:CPU flags swapjax adds to XLA_FLAGS for a study with convolutions, unless XLA_FLAGS names
# them already (benchmarks/README.md, "XLA:CPU's scheduler"): the concurrency-optimised
# scheduler runs independent operations side by side, which on a small CPU slows the oneDNN
# convolutions that already use every core (measured 4-7% per round; within noise on the RNN
# study, so studies without convolutions keep XLA's default).
CPU_XLA_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)


def study_xla_flags(config) -> tuple[str, ...]:
  """The XLA flags swapjax sets for `config`'s study: CPU_XLA_FLAGS where any of its networks
  has a convolution, else none (the flags only affect XLA:CPU)."""
  from swapjax.config import program_configs
  from swapjax.models import config_layers

  layers = [layer for p in program_configs(config) for layer in config_layers(p)]
  return CPU_XLA_FLAGS if any(layer.startswith("conv:") for layer in layers) else ()


def set_xla_flags(flags=CPU_XLA_FLAGS) -> list[str]:
  """Adds `flags` to XLA_FLAGS, each unless XLA_FLAGS names it (a user's or a benchmark's
  choice wins), before JAX starts its backends (later they take no effect); returns those
  added."""
  import os

  current = os.environ.get("XLA_FLAGS", "")
  added = [f for f in flags if f.split("=", 1)[0] not in current]
  if added:
    os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added


def split_cpu(devices: int) -> int:
  """Splits the host's CPU into `devices` XLA devices (0: one per core the process may use)
  before JAX starts its backends; returns the count set, or 0 where nothing changed: 1 asked
  for, a count already forced in XLA_FLAGS (tests, users), or JAX already started (a notebook
  that ran JAX before; the study then runs on the devices it has)."""
  import os

  count = devices or len(os.sched_getaffinity(0))
  if count == 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
    return 0
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError:  # backends already initialised
    return 0
  return count


def split_devices(config) -> list | None:
  """The single CPU devices a study's runs are spread over in equal chunks (`cpu_devices`
  split the host: one process, no `data` axis, no `runs_per_device` or `mesh_runs` asked
  for, more than one CPU device), or None."""
  local = jax.local_devices()
  split = (
    config.cpu_devices != 1
    and jax.process_count() == 1
    and config.mesh_data == 1
    and not (config.runs_per_device or config.mesh_runs)
    and local[0].platform == "cpu"
    and len(local) > 1
  )
  return local if split else None


class MeshError(ValueError):
  """A mesh shape that does not fit the devices or the runs; one line for the user."""


def choose_runs_axis(num_runs: int, num_devices: int, requested: int, data: int) -> int:
  """Devices on the runs axis: `requested` if set, else as many as divide the runs evenly."""
  available = num_devices // data
  if requested:
    return requested
  return max(d for d in range(1, available + 1) if available % d == 0 and num_runs % d == 0)


def make_mesh(num_runs: int, mesh_runs: int = 0, mesh_data: int = 1) -> tuple[Mesh | None, str]:
  """The mesh for a study of `num_runs` runs, or None on one device; and a line saying so."""
  devices = jax.devices()
  if len(devices) == 1 and mesh_runs <= 1 and mesh_data == 1:
    return None, "one device"
  if len(devices) % mesh_data:
    raise MeshError(f"mesh_data={mesh_data} does not divide the {len(devices)} devices")
  runs = choose_runs_axis(num_runs, len(devices), mesh_runs, mesh_data)
  if num_runs % runs:
    raise MeshError(f"mesh_runs={runs} does not divide the {num_runs} runs")
  if runs * mesh_data > len(devices):
    raise MeshError(f"mesh {runs}x{mesh_data} needs more than the {len(devices)} devices")
  mesh = jax.make_mesh(
    (runs, mesh_data),
    ("runs", "data"),
    axis_types=(AxisType.Auto,) * 2,
    devices=devices[: runs * mesh_data],
  )
  note = (
    f"mesh: {runs} device(s) on 'runs' ({num_runs // runs} run(s) each) x {mesh_data} on "
    f"'data', of {len(devices)} device(s) in {jax.process_count()} process(es)"
  )
  return mesh, note


def run_shardings(mesh: Mesh, tree, num_runs: int):
  """NamedSharding per leaf: `runs` on a leading run axis, replicated otherwise."""

  def one(leaf):
    shape = getattr(leaf, "shape", ())
    return NamedSharding(mesh, P("runs") if shape and shape[0] == num_runs else P())

  return jax.tree.map(one, tree)


def put(tree, shardings):
  """Places host arrays as global arrays; each process supplies only its own shards."""

  def one(leaf, sharding):
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

  return jax.tree.map(one, tree, shardings)


def to_host(tree):
  """Fetches (possibly multi-process) global arrays to NumPy on every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils

  return multihost_utils.process_allgather(tree, tiled=True)
