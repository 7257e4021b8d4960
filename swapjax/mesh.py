"""Scale-out: chunks of runs on the devices of one or several processes, or a `Mesh`.

By default every chunk of runs is a single-device program of the recorded width, whatever the
number of devices or processes (`swapjax.study.runs_per_call`): on several processes
(`jax.distributed.initialize()`) each process runs the chunks of its own devices and the
processes exchange their chunks' host values (`exchange`): the round's metrics, and the
states for a checkpoint. Results are then bitwise those of one process.

Asked for (`mesh_runs`, `mesh_data`), a `Mesh` whose `runs` axis shards the runs (population
parallelism) and whose `data` axis may split a member's batch runs one SPMD program on every
process instead: every array with a leading run axis is sharded on `runs`; everything else
(images, the holdout set, the round counter) is replicated. Runs never exchange data, so
sharding them changes where each run is computed, not what; a partitioned program's float
order can differ from the single-device one's in the last bit.
"""

from __future__ import annotations

import pickle

import jax
import numpy as np
from jax.experimental import multihost_utils
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

  def one(leaf):  # host arrays (chunks that met on the host) are every process's already
    return leaf if isinstance(leaf, np.ndarray) else multihost_utils.process_allgather(leaf, True)

  return jax.tree.map(one, tree)


def owns(device) -> bool:
  """Whether this process runs the chunk placed on `device` (None: every process, a mesh's)."""
  return device is None or device.process_index == jax.process_index()


def exchange(mine: dict):
  """{key: host value} of every process merged, on every process; each process gives the
  values it alone has (its chunks'), keys distinct across processes. Two collectives: the
  sizes, then the pickled values (NumPy's bytes, so exact), padded to a power of two so that
  a study of rounds compiles JAX's gather for a few sizes only."""
  if jax.process_count() == 1:
    return dict(mine)
  data = np.frombuffer(pickle.dumps(mine, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
  sizes = multihost_utils.process_allgather(np.asarray([data.size], np.int64))
  padded = np.zeros(1 << int(max(int(sizes.max()), 1) - 1).bit_length(), np.uint8)
  padded[: data.size] = data
  gathered = multihost_utils.process_allgather(padded)
  merged = {}
  for row, size in zip(gathered, sizes.reshape(-1), strict=True):
    merged.update(pickle.loads(row[: int(size)].tobytes()))
  return merged


def shared(value):
  """Process 0's (picklable) `value` on every process."""
  if jax.process_count() == 1:
    return value
  return exchange({0: value} if jax.process_index() == 0 else {})[0]
