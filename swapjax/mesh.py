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
