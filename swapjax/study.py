"""Building a study from its config: its compiled programs (initial state and round) over
chunks of runs, with their device data from swapjax.pool (whose loaders study re-exports); the
rows of `metrics.jsonl` are swapjax.rows'.

Runs that share a seed share their initial networks, their A/B split and their shuffles, so
conditions are compared on paired runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from swapjax import backend, memory, rounds, train
from swapjax import data as datalib
from swapjax import mesh as meshlib
from swapjax.config import Config, ConfigError, group_names, program_configs, run_table
from swapjax.pool import build_pool, build_runs, eval_forests
from swapjax.pool import load_data as load_data
from swapjax.pool import load_datasets as load_datasets
from swapjax.pool import resolve_sizes as resolve_sizes
from swapjax.pool import run_targets as run_targets
from swapjax.state import Pool, RunArrays, StudyState


@dataclasses.dataclass(frozen=True)
class Study:
  """A built study: config, run table, device arrays and the compiled-per-round function."""

  config: Config
  runs_table: list[dict[str, Any]]
  pool: Pool
  runs: RunArrays
  round_fn: Any
  init_state: Any  # jitted `init_state(runs) -> StudyState`
  init_state_fn: Any  # the same, not jitted (tests compile it with other options)
  driver: str
  conv_impl: str
  data_source: str
  run_ids: tuple[int, ...] = ()  # each run's index in the whole study (several programs)
  groups: tuple[str, ...] = ()  # each run's group name
  program: int = 0  # which static variant (chunks of one program share its compiled code)
  device: Any = None  # the device this chunk runs on (`runs_per_device`), None: the mesh's
  memory_estimate: tuple[int, int] = (0, 0)  # bytes per run, per program (swapjax.memory)


# ------------------------------------------------------------------ build
def build(config: Config, ds: datalib.Dataset, mesh=None) -> Study:
  """Builds the study as one compiled program over all its runs; with a `mesh`, runs are
  sharded on its `runs` axis (see mesh.py)."""
  whole = build_whole(config, ds, mesh)
  return chunks(whole, len(whole.runs_table), mesh)[0]


def fingerprint(traced, args) -> str:
  """What decides a traced round's executable: its jaxpr's text (every operation with its
  shapes, dtypes, literals and inner jaxprs), its constants' values, its arguments' tree and
  their shardings. Two rounds with one fingerprint compute the same function of their
  arguments: groups that differ only in per-run numbers (iris' learning rates) or in data of
  one shape (logic_gates' gates) compile once."""
  digest = hashlib.sha256(str(traced.jaxpr).encode())
  for const in traced.jaxpr.consts:
    if jax.dtypes.issubdtype(getattr(const, "dtype", None), jax.dtypes.prng_key):
      const = jax.random.key_data(const)
    array = np.asarray(const)
    digest.update(f"{array.dtype}{array.shape}".encode() + array.tobytes())
  digest.update(str(jax.tree.structure(args)).encode())
  digest.update(str([getattr(x, "sharding", None) for x in jax.tree.leaves(args)]).encode())
  return digest.hexdigest()


def compiled_once(jitted, args, device, compiled: dict, owner=None):
  """(`jitted`'s executable for `args` on `device`, the `owner` it was first compiled for):
  lowered and compiled only where `compiled` (by fingerprint and device) has no executable of
  the same computation yet."""
  traced = jitted.trace(*args)
  same = (fingerprint(traced, args), getattr(device, "id", None))
  if same not in compiled:
    compiled[same] = (traced.lower().compile(), owner)
  return compiled[same]


def init_states(programs) -> list:
  """Each program chunk's initial state, one chunk after another. Concurrently on a split CPU
  they could deadlock: the orthogonal initialiser's QR (jaxlib's LAPACK kernel) waits for its
  batch's tasks on the intra-op thread pool, and with two chunks each holding one of its two
  threads the tasks never run (seen: binary_addition hung at start, both pool threads parked
  in ParallelBatchMap). A mesh over a split CPU's devices initialises on one device for the
  same reason (its partitions would run at once: `--set mesh_runs=2` hung the same way). A
  chunk another process runs is given as its shapes (`jax.ShapeDtypeStruct`). Programs whose
  initialisers trace to one computation (`fingerprint`) share one executable."""
  compiled: dict = {}
  return [
    jax.block_until_ready(_initialise(p, compiled))
    if meshlib.owns(p.device)
    else jax.eval_shape(p.init_state_fn, p.runs)  # another process's chunk: its shapes
    for p in programs
  ]


def _initialise(built: Study, compiled: dict):
  """`built`'s initial state, its initialiser compiled once per computation (`compiled`: by
  fingerprint and device); a wrapped initialiser (a mesh over a split CPU) runs as it is."""
  if not hasattr(built.init_state, "trace"):
    return built.init_state(built.runs)
  executable, _ = compiled_once(built.init_state, (built.runs,), built.device, compiled)
  return executable(built.runs)


def make_init_state(config: Config, model, optimizer, image_shape):
  """Returns `init_state(runs) -> StudyState`: each run's networks from its seed's `k_init`,
  its halves from `k_split` (a random split of the pool, or the first N positions for a
  single-model study that does not split per seed), nothing seen, every run active."""
  members, halves = config.members, config.kind.halves
  n, p = config.half_size, config.train_pool

  def init_state(runs: RunArrays) -> StudyState:
    k_init, k_split, _ = rounds.run_purpose_keys(rounds.run_keys(config.runs.seed, runs.seed_R))
    params, opt_state = jax.vmap(
      lambda k: train.init_members(model, optimizer, k, members, image_shape)
    )(k_init)
    r = runs.seed_R.shape[0]
    if halves == 2 or config.data.split_per_seed:
      perm = jax.vmap(lambda k: jax.random.permutation(k, p))(k_split)
      idx = perm[:, : halves * n].reshape(-1, halves, n).astype(jnp.int32)
    else:
      idx = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (r, 1, n))
    return StudyState(
      params,
      opt_state,
      idx,
      jnp.zeros((r, members, p), bool),
      jnp.zeros((r, p), jnp.int32),
      jnp.ones(r, bool),
      jnp.full(r, -1, jnp.int32),
      jnp.zeros((), jnp.int32),
    )

  return init_state


def compile_on_mesh(init_state, round_fn, driver: str, mesh, pool: Pool, runs: RunArrays, size):
  """(init_fn, round_fn) jitted for chunks of `size` runs sharded on the mesh's `runs` axis
  (the round only with the scan driver; the host driver's epoch dispatches its own steps)."""
  init_options = backend.init_compiler_options()
  first_pool, first_runs = _take_runs(pool, runs, slice(0, size))
  state_sh = meshlib.run_shardings(mesh, jax.eval_shape(init_state, first_runs), size)
  pool_sh = meshlib.run_shardings(mesh, first_pool, size)
  runs_sh = meshlib.run_shardings(mesh, first_runs, size)
  metrics_sh = NamedSharding(mesh, PartitionSpec("runs"))
  init_fn = jax.jit(
    init_state,
    in_shardings=(runs_sh,),
    out_shardings=state_sh,
    compiler_options=init_options,
  )
  if _split_host(mesh):  # the partitions' QRs at once could deadlock (init_states)
    init_fn = _init_then_place(jax.jit(init_state, compiler_options=init_options), state_sh)
  if driver == "scan":
    round_fn = jax.jit(
      round_fn,
      in_shardings=(state_sh, pool_sh, runs_sh, NamedSharding(mesh, PartitionSpec())),
      out_shardings=(state_sh, metrics_sh),
    )
  return init_fn, round_fn


def build_whole(config: Config, ds: datalib.Dataset, mesh=None, chunk: int = 0) -> Study:
  """The study's functions, compiled for chunks of `chunk` runs (all if 0), with the pool and
  run arrays of every run, not yet placed on the mesh (`chunks` splits and places them)."""
  table = run_table(config)
  kernels = backend.kernels(config)
  driver = backend.default_driver() if config.engine.driver == "auto" else config.engine.driver
  model = kernels.model(config)
  optimizer = train.make_optimizer(config)
  train_epoch = train.make_train_epoch(config, model, optimizer, driver, mesh, kernels.train_epoch)
  eval_model = kernels.eval_model(config)
  pool = build_pool(config, ds, table)
  forests = eval_forests(config, pool)
  evaluate = train.make_evaluate(config, eval_model, config.engine.eval_population, forests)
  evaluate = jax.jit(evaluate, static_argnames="part")
  runs = build_runs(config, table)
  init_state = make_init_state(config, model, optimizer, ds.image_shape)
  round_fn = rounds.ROUND_MAKERS[config.study.kind](config, train_epoch, evaluate)
  if mesh is None:
    init_fn = jax.jit(init_state, compiler_options=backend.init_compiler_options())
    if driver == "scan":  # the state is not donated: a pipelined round reads it still
      round_fn = jax.jit(round_fn)
  else:
    size = chunk or len(table)
    init_fn, round_fn = compile_on_mesh(init_state, round_fn, driver, mesh, pool, runs, size)
  return Study(
    config,
    table,
    pool,
    runs,
    round_fn,
    init_fn,
    init_state,
    driver,
    kernels.conv_impl,
    ds.source,
    tuple(range(len(table))),
    tuple(group_names(config, table)),
  )


def _split_host(mesh) -> bool:
  """Whether `mesh` spans several CPU devices of this one process (a split host)."""
  devices = list(mesh.devices.flat)
  return len(devices) > 1 and jax.process_count() == 1 and devices[0].platform == "cpu"


def _init_then_place(init_fn, shardings):
  """`init_fn` on the first device of the host, its state then placed on the mesh."""

  def init(runs):
    first = jax.local_devices()[0]
    return jax.device_put(init_fn(jax.device_put(runs, first)), shardings)

  return init


def _take_runs(pool: Pool, runs: RunArrays, which: slice):
  """The per-run rows `which` of the pool (labels, image variant) and of the run arrays; the
  images themselves are shared."""
  pool = pool._replace(labels_RxP=pool.labels_RxP[which], variant_R=pool.variant_R[which])
  return pool, jax.tree.map(lambda a: a[which], runs)


def chunk_devices(count: int, devices) -> list:
  """The device of each of `count` chunks: round-robin on one process's devices; on the
  devices of several processes, in consecutive blocks over as many devices as divide the
  chunks evenly (so each process's share of a program is one run range)."""
  if jax.process_count() == 1:
    return [devices[k % len(devices)] for k in range(count)]
  used = memory.largest_divisor(count, len(devices))
  return [devices[k // (count // used)] for k in range(count)]


def chunks(whole: Study, size: int, mesh=None, devices=None) -> list[Study]:
  """`whole` split into consecutive chunks of `size` runs, each with its own pool rows and
  run arrays and the same compiled functions; placed on `mesh`, or on `devices`
  (`chunk_devices`); a chunk on another process's device keeps its arrays on the host."""
  out = []
  starts = range(0, len(whole.runs_table), size)
  placed = chunk_devices(len(starts), devices) if devices else [None] * len(starts)
  for start, device in zip(starts, placed, strict=True):
    which = slice(start, start + size)
    pool, runs = _take_runs(whole.pool, whole.runs, which)
    if mesh is not None:
      pool = meshlib.put(pool, meshlib.run_shardings(mesh, pool, size))
      runs = meshlib.put(runs, meshlib.run_shardings(mesh, runs, size))
    elif device is not None and meshlib.owns(device):
      pool, runs = jax.device_put((pool, runs), device)
    out.append(
      dataclasses.replace(
        whole,
        runs_table=whole.runs_table[which],
        pool=pool,
        runs=runs,
        run_ids=whole.run_ids[which],
        groups=whole.groups[which],
        device=device,
      )
    )
  return out


def chunk_size(
  config: Config, num_runs: int, mesh, estimate: tuple[int, int], spread: int = 1, flops=0.0
) -> int:
  """Runs per compiled call: `runs_per_device` (on each device of the `runs` axis of a mesh)
  if set; on a mesh, each device's share of the runs, as many as fit; `spread` > 1: chunks go
  to that many single CPU devices (`cpu_devices`), so at most an equal share of the runs per
  chunk, the host's memory shared between them; else `runs_per_call`, which no device count
  changes."""
  devices = mesh.shape["runs"] if mesh is not None else 1
  if config.runs.runs_per_device:
    return config.runs.runs_per_device * devices
  if spread > 1:
    share = -(-num_runs // spread)
    fit = memory.runs_per_chunk(num_runs, *estimate, memory.device_budget() // spread)
    return memory.largest_divisor(num_runs, min(share, fit))
  if mesh is not None:
    per_device = memory.runs_per_chunk(num_runs // devices, *estimate, memory.device_budget())
    return per_device * devices
  return runs_per_call(num_runs, estimate, flops)


def runs_per_call(num_runs: int, estimate: tuple[int, int], flops: float, kind=None) -> int:
  """The default chunk of a program's runs, from the device kind and the program alone: as
  many as fit one device's memory and, on an accelerator, no more than make a training step
  of about `memory.CALL_FLOPS` (`flops`: one run's); the largest divisor of the runs within
  that. A program of another width is another XLA program whose float order can differ (and
  near ties then flip swaps), so the width never follows the number of devices: chunks go
  round-robin to the devices there are, and 1 or 8 devices compute the same numbers."""
  kind = kind or jax.devices()[0].platform
  cap = num_runs
  if kind in memory.CALL_FLOPS and flops > 0:
    cap = max(1, int(memory.CALL_FLOPS[kind] // flops))
  fit = memory.runs_per_chunk(num_runs, *estimate, memory.device_budget())
  return memory.largest_divisor(num_runs, min(fit, cap))


def fit_batch(config: Config, input_shape, target_shape=()) -> Config:
  """The program's config with `micro_batches` set when one run's batch does not fit the
  device (memory.micro_batches_to_fit) and neither is forced; else unchanged."""
  if config.optim.micro_batches or config.runs.runs_per_device:
    return config
  per_run, per_program = memory.program_bytes(config, input_shape, target_shape)
  budget = memory.device_budget()
  if per_run + per_program <= budget:
    return config
  slices = memory.micro_batches_to_fit(config, input_shape, budget, target_shape)
  if not slices:
    raise ConfigError(
      f"{config.variant or 'the study'}: one run needs ~{per_run / 2**30:.1f} GiB even one "
      f"sample at a time, more than the {budget / 2**30:.1f} GiB budget of the device"
    )
  return config.replace(micro_batches=slices)


def build_programs(
  config: Config, ds, meshes=None, devices=None, split: int = 1, sizes=None
) -> list[Study]:
  """The study's compiled programs: one per value of the static run axes
  (`config.program_configs`), split into chunks of runs (`chunk_size`); each knows its runs'
  study-wide indices and group names. `ds`: the dataset, or {name: dataset} when variants
  train on different data sets (`load_datasets`). `meshes`: one mesh (or None) per program
  config; `devices`: chunks go round-robin onto these single devices instead (no mesh), `split`
  of them a split CPU (`cpu_devices`); `sizes`: each program's runs per call, as recorded."""
  datasets = ds if isinstance(ds, dict) else {ds.name: ds}
  table = run_table(config)
  names = group_names(config, table)
  programs = []
  for i, program_config in enumerate(program_configs(config)):
    ds = datasets.get(program_config.data.dataset) or next(iter(datasets.values()))
    mesh = meshes[i] if meshes else None
    key = (program_config.variant, program_config.data.train_fraction[0])
    ids = tuple(
      j for j, r in enumerate(table) if (r.get("variant", ""), r["train_fraction"]) == key
    )
    target_shape = ds.train_labels.shape[1:]
    program_config = fit_batch(program_config, ds.image_shape, target_shape)
    estimate = memory.program_bytes(program_config, ds.image_shape, target_shape)
    if sizes:  # recorded in the workdir's config.json when the study started
      size = sizes[i]
    else:
      flops = memory.step_flops(program_config, ds.image_shape)
      size = chunk_size(config, len(ids), mesh, estimate, split, flops)
    whole = dataclasses.replace(
      build_whole(program_config, ds, mesh, size),
      run_ids=ids,
      groups=tuple(names[j] for j in ids),
      program=i,
      memory_estimate=estimate,
    )
    programs += chunks(whole, size, mesh, devices)
  return programs


def step_round(study: Study, state: StudyState, test_due: bool = False):
  return study.round_fn(state, study.pool, study.runs, np.asarray(test_due))


def test_due(config: Config, round_index: int) -> bool:
  """Whether a round evaluates the test set (single-model studies; the swap study evaluates
  every round): every `test_every` rounds, the first and the last."""
  epoch = round_index + 1
  return epoch == 1 or epoch % config.study.test_every == 0 or epoch == config.study.rounds


# ------------------------------------------------------------------ round results
def round_key(config: Config) -> str:
  return config.kind.round_key


def nonfinite_runs(study: Study, metrics: dict[str, np.ndarray]):
  """Runs whose training loss is NaN or Inf (the caller decides which still train)."""
  keys = [
    k for k in metrics if k.endswith("epoch_loss") or k.endswith("train_loss") or k == "train/loss"
  ]
  bad = np.zeros(len(study.runs_table), bool)
  for k in keys:
    bad |= ~np.isfinite(np.asarray(metrics[k], np.float64))
  return np.flatnonzero(bad)
