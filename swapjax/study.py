"""Building a study from its config: device pool, per-run condition arrays, initial state, and
the host-side rows written to `metrics.jsonl`.

Runs that share a seed share their initial networks, their A/B split and their shuffles, so
conditions are compared on paired runs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from swapjax import backend, memory, prefixes, rounds, train
from swapjax import data as datalib
from swapjax import mesh as meshlib
from swapjax.config import (
  TRACED_AXES,
  Config,
  ConfigError,
  group_names,
  program_configs,
  run_table,
)
from swapjax.layers import config_layers
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


# ------------------------------------------------------------------ data
def _input_variant(images: np.ndarray, kind: str, rng: np.random.Generator, stats):
  """Zhang et al.'s input corruptions, applied to a uint8 image set."""
  if kind == "none" or not len(images):
    return images
  flat = images.reshape(len(images), -1)
  if kind == "shuffled_pixels":
    return flat[:, stats["fixed_perm"]].reshape(images.shape)
  if kind == "random_pixels":
    return np.take_along_axis(
      flat, rng.permuted(np.tile(np.arange(flat.shape[1]), (len(flat), 1)), axis=1), axis=1
    ).reshape(images.shape)
  # gaussian: the data's mean and standard deviation, rounded and clipped to uint8.
  noise = rng.normal(stats["mean"], stats["std"], images.shape)
  return np.clip(np.rint(noise), 0, 255).astype(np.uint8)


def run_targets(
  config: Config, seed: int, corruption: float, pool_labels: np.ndarray, all_labels: np.ndarray
) -> np.ndarray:
  """The report's random labels (a permutation of all training labels, first P), given to a
  random `corruption` fraction of the pool; the rest keep their true labels."""
  rng = np.random.default_rng([config.seed, seed, 1])
  random_labels = all_labels[rng.permutation(len(all_labels))][: len(pool_labels)]
  n_corrupt = int(round(corruption * len(pool_labels)))
  corrupt = rng.permutation(len(pool_labels))[:n_corrupt]
  labels = pool_labels.copy()
  labels[corrupt] = random_labels[corrupt]
  return labels


def build_pool(config: Config, ds: datalib.Dataset, table) -> Pool:
  p, t = config.train_pool, config.holdout_size
  if config.test_from_train:
    t = config.test_from_train
  if len(ds.train_images) < p:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.train_images)} training images, pool_size={p} asked for"
    )
  if len(ds.test_images) < t:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.test_images)} test images, holdout_size={t} asked for"
    )
  images, labels = ds.train_images[:p], ds.train_labels[:p]
  holdout, holdout_labels = ds.test_images[:t], ds.test_labels[:t]
  if ds.holdout_images is not None:
    extra = ds.holdout_images[: config.holdout_size]
    extra_labels = ds.holdout_labels[: config.holdout_size]
  else:
    extra = np.zeros((0, *images.shape[1:]), np.uint8)
    extra_labels = np.zeros(0, np.int32)
  stats = {}  # of the pool's images, computed once if a run corrupts its inputs
  variants, variant_of = [(images, holdout, extra)], {}
  labels_rows = []
  for run in table:
    key = (run["input_corruption"], run["seed"])
    if run["input_corruption"] != "none" and key not in variant_of:
      rng = np.random.default_rng([config.seed, run["seed"], 2])
      stats = stats or {"mean": float(images.mean()), "std": float(images.std())}
      stats["fixed_perm"] = rng.permutation(images[0].size)
      variants.append(
        (
          _input_variant(images, key[0], rng, stats),
          _input_variant(holdout, key[0], rng, stats),
          _input_variant(extra, key[0], rng, stats),
        )
      )
      variant_of[key] = len(variants) - 1
    row = run_targets(config, run["seed"], run["label_corruption"], labels, ds.train_labels)
    if run["target_noise"]:  # regression targets with Gaussian noise, drawn per seed
      rng = np.random.default_rng([config.seed, run["seed"], 3])
      row = row + (run["target_noise"] * rng.normal(size=row.shape)).astype(row.dtype)
    labels_rows.append(row)
  variant_R = [variant_of.get((r["input_corruption"], r["seed"]), 0) for r in table]
  return Pool(
    jnp.asarray(np.stack([v[0] for v in variants])),
    jnp.asarray(np.stack(labels_rows)),
    jnp.asarray(variant_R, jnp.int32),
    jnp.asarray(np.stack([v[1] for v in variants])),
    jnp.asarray(holdout_labels),
    jnp.asarray(np.stack([v[2] for v in variants])),
    jnp.asarray(extra_labels),
  )


def build_runs(config: Config, table) -> RunArrays:
  tables = config.schedules()
  # Every condition of the study, not only this table's: chunks of runs share one shape.
  width = max(len(tables[name]) for name in {*config.conditions, *(r["condition"] for r in table)})
  thr = np.full((len(table), width), np.iinfo(np.int32).max, np.int32)
  ks = np.zeros((len(table), width), np.int32)
  for i, run in enumerate(table):
    for j, (t, k) in enumerate(tables[run["condition"]]):
      thr[i, j], ks[i, j] = t, k
  return RunArrays(
    jnp.asarray([r["seed"] for r in table], jnp.int32),
    jnp.asarray([r["warmup"] for r in table], jnp.int32),
    {axis: jnp.asarray([r[axis] for r in table], jnp.float32) for axis in TRACED_AXES},
    jnp.asarray(thr),
    jnp.asarray(ks),
  )


# ------------------------------------------------------------------ build
def build(config: Config, ds: datalib.Dataset, mesh=None) -> Study:
  """Builds the study as one compiled program over all its runs; with a `mesh`, runs are
  sharded on its `runs` axis (see mesh.py)."""
  whole = build_whole(config, ds, mesh)
  return chunks(whole, len(whole.runs_table), mesh)[0]


def init_states(programs) -> list:
  """Each program chunk's initial state, one chunk after another. Concurrently on a split CPU
  they could deadlock: the orthogonal initialiser's QR (jaxlib's LAPACK kernel) waits for its
  batch's tasks on the intra-op thread pool, and with two chunks each holding one of its two
  threads the tasks never run (seen: binary_addition hung at start, both pool threads parked
  in ParallelBatchMap). A mesh over a split CPU's devices initialises on one device for the
  same reason (its partitions would run at once: `--set mesh_runs=2` hung the same way)."""
  return [jax.block_until_ready(p.init_state(p.runs)) for p in programs]


def build_whole(config: Config, ds: datalib.Dataset, mesh=None, chunk: int = 0) -> Study:
  """The study's functions, compiled for chunks of `chunk` runs (all if 0), with the pool and
  run arrays of every run, not yet placed on the mesh (`chunks` splits and places them)."""
  table = run_table(config)
  size = chunk or len(table)
  kernels = backend.kernels(config)
  driver = backend.default_driver() if config.driver == "auto" else config.driver
  model = kernels.model(config)
  optimizer = train.make_optimizer(config)
  train_epoch = train.make_train_epoch(config, model, optimizer, driver, mesh, kernels.train_epoch)
  eval_model = kernels.eval_model(config)
  pool = build_pool(config, ds, table)
  forests = eval_forests(config, pool)
  evaluate = train.make_evaluate(config, eval_model, config.eval_population, forests)
  evaluate = jax.jit(evaluate, static_argnames="part")
  runs = build_runs(config, table)
  members, halves = config.members, config.kind.halves
  n, p = config.half_size, config.train_pool

  def init_state(runs: RunArrays) -> StudyState:
    k_init, k_split, _ = rounds.run_purpose_keys(rounds.run_keys(config.seed, runs.seed_R))
    params, opt_state = jax.vmap(
      lambda k: train.init_members(model, optimizer, k, members, ds.image_shape)
    )(k_init)
    r = runs.seed_R.shape[0]
    if halves == 2 or config.split_per_seed:
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

  round_fn = rounds.ROUND_MAKERS[config.study](config, train_epoch, evaluate)
  init_options = backend.init_compiler_options()
  if mesh is None:
    init_fn = jax.jit(init_state, compiler_options=init_options)
    if driver == "scan":
      round_fn = jax.jit(round_fn, donate_argnums=(0,))
  else:
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
        donate_argnums=(0,),
      )
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


def eval_forests(config: Config, pool: Pool) -> dict:
  """{part: prefixes.Forest} of the evaluation sets whose distinct prefixes a causal sequence
  network evaluates once each (`eval_shared_prefixes`), where that halves the work or better."""
  if not (config.eval_shared_prefixes and prefixes.causal(config_layers(config))):
    return {}
  forests = {}
  parts = {
    "pool": pool.images_VxPxHxWxC,
    "test": pool.holdout_images_VxTxHxWxC,
    "holdout": pool.extra_images_VxExHxWxC,
  }
  for part, sequences in parts.items():
    if sequences.ndim == 4 and sequences.shape[1]:  # (V, N, T, F)
      forest = prefixes.build(np.asarray(sequences))
      if prefixes.worth_it(forest):
        forests[part] = forest
  return forests


def _take_runs(pool: Pool, runs: RunArrays, which: slice):
  """The per-run rows `which` of the pool (labels, image variant) and of the run arrays; the
  images themselves are shared."""
  pool = pool._replace(labels_RxP=pool.labels_RxP[which], variant_R=pool.variant_R[which])
  return pool, jax.tree.map(lambda a: a[which], runs)


def chunks(whole: Study, size: int, mesh=None, devices=None) -> list[Study]:
  """`whole` split into consecutive chunks of `size` runs, each with its own pool rows and
  run arrays and the same compiled functions; placed on `mesh`, or chunk k on device
  `devices[k % len(devices)]`."""
  out = []
  for k, start in enumerate(range(0, len(whole.runs_table), size)):
    which = slice(start, start + size)
    pool, runs = _take_runs(whole.pool, whole.runs, which)
    device = devices[k % len(devices)] if devices else None
    if mesh is not None:
      pool = meshlib.put(pool, meshlib.run_shardings(mesh, pool, size))
      runs = meshlib.put(runs, meshlib.run_shardings(mesh, runs, size))
    elif device is not None:
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
  config: Config, num_runs: int, mesh, estimate: tuple[int, int], spread: int = 1
) -> int:
  """Runs per compiled call: `runs_per_device` (on each device of the `runs` axis of a mesh)
  if set, else as many as the memory estimate (bytes per run, per program) lets fit on a
  device (swapjax.memory): all of them for small networks. `spread` > 1: chunks go to that
  many single CPU devices (`cpu_devices`), so at most an equal share of the runs per chunk
  (the largest divisor of the runs not above it), the host's memory shared between them."""
  devices = mesh.shape["runs"] if mesh is not None else 1
  if config.runs_per_device:
    return config.runs_per_device * devices
  if spread > 1:
    share = -(-num_runs // spread)
    fit = memory.runs_per_chunk(num_runs, *estimate, memory.device_budget() // spread)
    return max(d for d in range(1, share + 1) if num_runs % d == 0 and d <= fit)
  per_device = memory.runs_per_chunk(num_runs // devices, *estimate, memory.device_budget())
  return per_device * devices


def fit_batch(config: Config, input_shape, target_shape=()) -> Config:
  """The program's config with `micro_batches` set when one run's batch does not fit the
  device (memory.micro_batches_to_fit) and neither is forced; else unchanged."""
  if config.micro_batches or config.runs_per_device:
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
  return dataclasses.replace(config, micro_batches=slices)


def build_programs(config: Config, ds, meshes=None, devices=None) -> list[Study]:
  """The study's compiled programs: one per value of the static run axes
  (`config.program_configs`), split into chunks of runs (`chunk_size`); each knows its runs'
  study-wide indices and group names. `ds`: the dataset, or {name: dataset} when variants
  train on different data sets (`load_datasets`). `meshes`: one mesh (or None) per program
  config; `devices`: chunks go round-robin onto these single devices instead (no mesh)."""
  datasets = ds if isinstance(ds, dict) else {ds.name: ds}
  table = run_table(config)
  names = group_names(config, table)
  programs = []
  for i, program_config in enumerate(program_configs(config)):
    ds = datasets.get(program_config.dataset) or next(iter(datasets.values()))
    mesh = meshes[i] if meshes else None
    key = (program_config.variant, program_config.train_fraction[0])
    ids = tuple(
      j for j, r in enumerate(table) if (r.get("variant", ""), r["train_fraction"]) == key
    )
    target_shape = ds.train_labels.shape[1:]
    program_config = fit_batch(program_config, ds.image_shape, target_shape)
    estimate = memory.program_bytes(program_config, ds.image_shape, target_shape)
    size = chunk_size(config, len(ids), mesh, estimate, len(devices) if devices else 1)
    whole = dataclasses.replace(
      build_whole(program_config, ds, mesh, size),
      run_ids=ids,
      groups=tuple(names[j] for j in ids),
      program=i,
      memory_estimate=estimate,
    )
    programs += chunks(whole, size, mesh, devices)
  return programs


def load_data(config: Config, data_dir: str | None, tfds_data_dir: str | None):
  """The dataset; with `test_from_train`, its test set is the training images after the pool
  and its own test images become the holdout set."""
  ds = datalib.load(
    config.dataset,
    config.source,
    data_dir,
    tfds_data_dir,
    num_train=config.data_size,
    num_test=config.holdout_size,
    seed=config.seed,
  )
  if not config.test_from_train:
    return ds
  t = config.test_from_train
  p = config.pool_size or len(ds.train_images) - t
  if len(ds.train_images) < p + t or p <= 0:
    raise datalib.DataError(
      f"{ds.source}: {len(ds.train_images)} training images, pool_size={p} + "
      f"test_from_train={t} asked for"
    )
  return dataclasses.replace(
    ds,
    train_images=ds.train_images[:p],
    train_labels=ds.train_labels[:p],
    test_images=ds.train_images[p : p + t],
    test_labels=ds.train_labels[p : p + t],
    holdout_images=ds.test_images,
    holdout_labels=ds.test_labels,
  )


def load_datasets(config: Config, data_dir: str | None, tfds_data_dir: str | None):
  """{name: dataset} of every data set the study's variants train on (the config's first)."""
  names = dict.fromkeys([config.dataset] + [v.dataset for v in program_configs(config)])
  return {
    name: load_data(dataclasses.replace(config, dataset=name, variants=""), data_dir, tfds_data_dir)
    for name in names
  }


def resolve_sizes(config: Config, ds: datalib.Dataset) -> Config:
  """`pool_size=0`: every training image the data has (after a `test_from_train` split);
  `holdout_size=0`: every test image (every holdout image with `test_from_train`)."""
  held = ds.holdout_images if ds.holdout_images is not None else ds.test_images
  return dataclasses.replace(
    config,
    pool_size=config.pool_size or len(ds.train_images),
    holdout_size=config.holdout_size or len(held),
  )


def step_round(study: Study, state: StudyState, test_due: bool = False):
  return study.round_fn(state, study.pool, study.runs, np.asarray(test_due))


def test_due(config: Config, round_index: int) -> bool:
  """Whether a round evaluates the test set (single-model studies; the swap study evaluates
  every round): every `test_every` rounds, the first and the last."""
  epoch = round_index + 1
  return epoch == 1 or epoch % config.test_every == 0 or epoch == config.rounds


# ------------------------------------------------------------------ rows
def _clean(value):
  value = value.item() if hasattr(value, "item") else value
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _clean_column(values) -> list:
  """A metric's per-run values as `_clean` makes each one (Python scalars, None for NaN and
  Inf), converted at once: thousands of runs a round spent most of the row time per value."""
  array = np.asarray(values)
  if array.ndim != 1:
    return [_clean(v) for v in values]
  column = array.tolist()
  if array.dtype.kind == "f" and not np.isfinite(array).all():
    bad = (~np.isfinite(array)).tolist()
    column = [None if b else v for v, b in zip(column, bad, strict=True)]
  return column


def metric_rows(
  study: Study,
  metrics: dict[str, np.ndarray],
  round_index: int,
  previous: dict[int, dict] | None,
  round_s: float,
) -> list[dict[str, Any]]:
  """One JSON-able row per run for this round: the round (`round`, or `epoch` for a
  single-model study), the run's study-wide index, its group and run-axis values, then its
  metrics. A run that stopped (`active` false) repeats its last row's metrics."""
  rows = []
  columns = {k: _clean_column(v) for k, v in metrics.items() if k != "active"}
  for r, run in enumerate(study.runs_table):
    run_id = study.run_ids[r]
    row = {round_key(study.config): round_index + 1, "run": run_id, "group": study.groups[r]}
    row.update(run)
    row.update(field.split("=", 1) for field in study.config.row_fields)
    values = {k: column[r] for k, column in columns.items()}
    if "fit_epoch" in values:
      values["fit_epoch"] = values["fit_epoch"] if values["fit_epoch"] > 0 else None
    prev = (previous or {}).get(run_id)
    if "active" in metrics and prev is not None and not bool(metrics["active"][r]):
      values = {k: prev.get(k) for k in values}  # stopped: metrics stay frozen
    row.update(values)
    row["time/round_s"] = round(round_s, 4)
    rows.append(row)
  return rows


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
