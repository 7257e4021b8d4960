"""The only impure module: files, logging, checkpoints, signals and timing around the rounds.

Per round: one compiled call, one device-to-host transfer of the metrics, a NaN check,
`metrics.jsonl` appended (by a thread of its own), and every `checkpoint_every` rounds (0: each
round whose previous checkpoint's write has finished) the file fsynced and then an orbax
checkpoint (async). Rerunning the same command in the same workdir
resumes from the newest checkpoint that restores.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import flax
import jax
import numpy as np

from swapjax import backend, checkpoint, network_check, peers, registry, report, study
from swapjax import mesh as meshlib
from swapjax.config import Config, program_configs, row_axes, run_table, validate
from swapjax.health import (  # noqa: F401 - StudyStopped and the statuses: the runner's API
  EXIT_DIVERGED,
  EXIT_INTERRUPTED,
  StopFlag,
  StudyStopped,
  best_train_acc,
  check_health,
)
from swapjax.programs import compile_programs, runs_per_call, timing_report
from swapjax.progress import ETA_ROUNDS, eta, progress_line, round_acc
from swapjax.report import references
from swapjax.rows import Layout
from swapjax.state import StudyState
from swapjax.tensorboard import EventWriter, require_writer
from swapjax.version import __version__
from swapjax.workdir import MetricsAppender, Workdir, atomic_write_bytes, atomic_write_text


@dataclasses.dataclass
class RunOptions:
  workdir: str
  data_dir: str | None = None
  tfds_data_dir: str | None = None
  restart: bool = False
  progress: bool = True
  stop_after: int = 0  # testing aid: stop (as if signalled) after this many rounds
  pipeline: bool = True  # round r+1 dispatched before round r is written (False: in turn)
  # A checkpoint after every this many rounds (0: after each round whose previous checkpoint's
  # write has finished, orbax's continuous checkpointing), and always after the last round, an
  # early stop and a stop (a signal, stop_after); a rerun after kill -9 repeats the rounds since
  # the newest checkpoint, with the same results.
  checkpoint_every: int = 1
  checkpoint_min_interval: int = 0  # continuous: at least this many seconds apart


def _meta(config: Config, experiment: str, data_source: str, num_runs: int) -> dict[str, Any]:
  """config.json: the config, and what the report needs of the experiment (its protocol and
  reference numbers, so an old workdir's report does not change with the experiment's file)."""
  module = registry.registry().get(experiment)
  return {
    "experiment": experiment,
    "protocol": (module.__doc__ or "").strip() if module else "",
    references.META_KEY: references.module_reference(module),
    "config": config.to_json(),
    "data_source": data_source,
    "num_runs": num_runs,
    "swapjax": __version__,
    "jax": jax.__version__,
    "flax": flax.__version__,
    "backend": jax.default_backend(),
    "device": str(jax.devices()[0].device_kind),
    "device_count": jax.device_count(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def write_outputs(wd: Workdir, programs, states, timing: dict[str, Any]) -> None:
  """membership.npz (per program, keys prefixed `p<i>_` when there are several), timing.json,
  then the report."""
  arrays = {}
  packed = checkpoint.pack(programs, states)
  joined = [packed] if isinstance(packed, StudyState) else list(packed.values())
  for i, state in enumerate(joined):
    idx, move_count = (
      np.asarray(a) for a in meshlib.to_host((state.idx_RxMxN, state.move_count_RxP))
    )
    prefix = f"p{i}_" if len(joined) > 1 else ""
    arrays[f"{prefix}move_count"] = move_count
    if idx.shape[1] == 2:
      arrays.update({f"{prefix}a_idx": idx[:, 0], f"{prefix}b_idx": idx[:, 1]})
    else:
      arrays[f"{prefix}train_idx"] = idx[:, 0]
  if jax.process_index():
    return
  tmp = wd.path / ".membership.npz.tmp.npz"
  np.savez_compressed(tmp, **arrays)
  atomic_write_bytes(wd.path / "membership.npz", tmp.read_bytes())
  tmp.unlink()
  atomic_write_text(wd.path / "timing.json", json.dumps(timing, indent=2) + "\n")
  report.write(wd.path)


def _placement(config: Config, recorded: dict[str, Any]) -> tuple[tuple, str]:
  """Where the programs run: (meshes, devices, split, sizes) for study.build_programs and a
  line saying which. `recorded` (`_recorded`): the runs per call of each program and the
  placement in the workdir's config.json, "legacy" where an older config.json has none
  (placed as it was: on several processes, a mesh)."""
  sizes = recorded["runs_per_call"] if isinstance(recorded["runs_per_call"], list) else None
  no_meshes = [None] * len(program_configs(config))
  split = backend.split_devices(config)
  if split:
    count = min(len(split), *(len(run_table(p)) for p in program_configs(config)))
    note = f"each program's runs in equal chunks on {count} CPU devices (cpu_devices)"
    return (no_meshes, split[:count], count, sizes), note
  devices = jax.local_devices()
  one_process = jax.process_count() == 1 and config.runs.mesh_data == 1
  if one_process and config.runs.runs_per_device:
    chunks = min(len(run_table(p)) // config.runs.runs_per_device for p in program_configs(config))
    count = meshlib.choose_runs_axis(chunks, len(devices), config.runs.mesh_runs, 1)
    if count > len(devices):
      raise meshlib.MeshError(f"mesh_runs={count} needs more than the {len(devices)} devices")
    width = config.runs.runs_per_device
    note = f"{width} run(s) per call on each of {count} device(s), chunks round-robin"
    return (no_meshes, devices[:count], 1, sizes), note
  if one_process and not config.runs.mesh_runs and recorded["runs_per_call"] != "legacy":
    if len(devices) == 1:
      return (no_meshes, None, 1, sizes), "one device"
    note = f"runs in chunks (runs_per_call in config.json), round-robin on {len(devices)} devices"
    return (no_meshes, devices, 1, sizes), note
  asked = config.runs.mesh_runs or config.runs.mesh_data > 1
  if jax.process_count() > 1 and not asked and recorded["placement"] != "legacy":
    devices = jax.devices()
    note = (
      f"runs in chunks (runs_per_call in config.json), each on one of {len(devices)} "
      f"device(s) in {jax.process_count()} process(es)"
    )
    return (no_meshes, devices, 1, sizes), note
  per_device = config.runs.runs_per_device or 1
  made = [
    meshlib.make_mesh(len(run_table(p)) // per_device, config.runs.mesh_runs, config.runs.mesh_data)
    for p in program_configs(config)
  ]
  return ([m for m, _ in made], None, 1, None), made[0][1]


def _recorded(wd: Workdir, options: RunOptions) -> dict[str, Any]:
  """{key: the value the workdir's config.json recorded, "legacy" for a config.json written
  before the key was recorded} for the keys that fix how a resumed study runs; {key: None} for
  a new study. Process 0 reads it; every process gets its values."""
  old = None
  if not (jax.process_index() or options.restart) and wd.path.is_dir():
    old = wd.read_config()
  keys = ("runs_per_call", "row_axes", "placement")
  return meshlib.shared({k: None if old is None else old.get(k, "legacy") for k in keys})


def run(config: Config, experiment: str, options: RunOptions) -> Path:
  """Runs (or resumes) the study in `options.workdir`; returns the report path."""
  wd = Workdir(options.workdir)
  began = time.perf_counter()
  # Everything that can fail on bad input happens before anything is written.
  backend.check(config)
  if config.engine.tensorboard:
    require_writer()
  datasets = study.load_datasets(config, options.data_dir, options.tfds_data_dir)
  ds = next(iter(datasets.values()))
  if not (config.data.pool_size and config.data.holdout_size):
    config = study.resolve_sizes(config, ds)
    validate(config, sizes_known=True)
  for program in program_configs(config):  # a run that cannot fit: one line, nothing written
    ds = datasets[program.data.dataset]
    classes = network_check.num_classes(program.data.dataset, ds.train_labels)
    network_check.check_network(program, ds.image_shape, ds.train_labels.shape[1:], classes)
    study.fit_batch(program, ds.image_shape, ds.train_labels.shape[1:])
  if jax.process_index() == 0 and not options.restart and wd.path.is_dir():
    wd.check_config(config.to_json(), experiment)
  recorded = _recorded(wd, options)  # placement and rows as the workdir's first rounds had them
  placement, mesh_note = _placement(config, recorded)
  axes = recorded["row_axes"]
  axes = row_axes(config) if axes is None else None if axes == "legacy" else tuple(axes)
  if jax.process_index() == 0:  # process 0 alone writes the workdir's files
    wd.prepare()
    wd.lock()
  try:
    phases = {"data and checks": time.perf_counter() - began}
    placed = (placement, mesh_note, axes)
    return _run_locked(config, experiment, options, wd, datasets, placed, phases)
  finally:
    if jax.process_index() == 0:
      wd.unlock()


def _dispatch(config, programs, states, rnd: int, which=None) -> dict[int, tuple]:
  """Round `rnd` of the programs (and chunks) `which` (all by default) from `states`, all
  dispatched and none awaited, so chunks on different devices run at the same time:
  {index: (state after the round, metrics)}, both still on the device."""
  due = study.test_due(config, rnd)
  which = range(len(programs)) if which is None else which
  mine = (i for i in which if meshlib.owns(programs[i].device))  # others run on their process
  return {i: study.step_round(programs[i], states[i], due) for i in mine}


def _fetch(programs, stepped, program_s, stop) -> tuple[dict, bool]:
  """({chunk: (host metrics, which runs still train)} of every chunk, whether any process
  was signalled to stop). Each process fetches its own chunks, adding each program's seconds
  until its results to `program_s`; several processes then exchange theirs, so every process
  decides the same."""
  fetched = {}
  done_at = time.perf_counter()
  for i, (state, metrics) in stepped.items():
    built = programs[i]
    # The round's one device-to-host transfer: its metrics and which runs still train.
    get = meshlib.to_host if built.device is None else jax.device_get
    fetched[i] = get((metrics, state.active_R))
    # On one device the calls run in order: the time until this one's results is its own.
    previous_done, done_at = done_at, time.perf_counter()
    program_s[built.program] = program_s.get(built.program, 0.0) + done_at - previous_done
  if jax.process_count() == 1:
    return fetched, bool(stop.signal)
  mine = {i: v for i, v in fetched.items() if programs[i].device is not None}
  every = meshlib.exchange({**mine, ("stop", jax.process_index()): bool(stop.signal)})
  signalled = any(v for k, v in every.items() if isinstance(k, tuple))
  return {i: every.get(i, fetched.get(i)) for i in range(len(programs))}, signalled


def _collect(config, programs, stepped, states, rnd, table, best_acc, ckpt, wd, program_s, stop):
  """Round `rnd`'s results on the host, program by program, each checked for health: sets
  `states` to the states after the round (runs that diverged or collapsed frozen) and adds
  each program's seconds until its results to `program_s`. Returns [(program, host
  metrics)], whether any run still trains, the chunks whose state the check changed, and
  whether any process was signalled to stop."""
  results, any_active, changed = [], False, []
  fetched, signalled = _fetch(programs, stepped, program_s, stop)
  for i, built in enumerate(programs):
    metrics, active = fetched[i]
    active = np.asarray(active)
    state = stepped[i][0] if i in stepped else None  # None: another process's chunk
    after = check_health(config, built, state, active, metrics, rnd, table, best_acc, ckpt, wd)
    if state is not None:
      states[i] = after
      if after is not state:
        changed.append(i)
    any_active |= bool(active.any())
    results.append((built, metrics))
  return results, any_active, changed, signalled


def _restore(config, wd, programs, states, resuming, notes, options: RunOptions):
  ckpt = checkpoint.Checkpointer(
    wd.checkpoint_dir,
    keep=config.engine.checkpoint_keep,
    every=options.checkpoint_every,
    min_interval=options.checkpoint_min_interval,
  )
  start = 0
  if resuming and ckpt.steps():
    abstract = checkpoint.abstract_like(checkpoint.pack(programs, states))
    start, restored = ckpt.restore_latest(abstract, notes)
    if restored is not None:
      states = checkpoint.unpack(programs, restored, states)
      print(f"swapjax: resuming after round {start} from {wd.checkpoint_dir}", flush=True)
  return ckpt, start, states


def _say_batches(programs) -> None:
  """One line per program whose batch is larger than its training set, or sliced."""
  for program in {p.program: p.config for p in programs}.values():
    name = program.variant or "the study"
    if program.optim.batch_size > program.num_train:
      print(
        f"swapjax: {name}: batch_size={program.optim.batch_size} > {program.num_train} training "
        f"samples: one partial batch of {program.num_train} per epoch (as Keras)",
        flush=True,
      )
    if program.optim.micro_batches > 1:
      print(
        f"swapjax: {name}: each batch in {program.optim.micro_batches} slices, gradients "
        "accumulated (micro_batches; the same update up to float order)",
        flush=True,
      )


@dataclasses.dataclass
class _Clock:
  """The seconds a study's rounds took, for the progress line and timing.json."""

  # From the previous round's results to this round's (a process's first round: from its
  # dispatch): the study's seconds per round, pipelined or in turn, the host's work included.
  round_s: list[float] = dataclasses.field(default_factory=list)
  # From the iteration's start until the round's results: the wait for the device (pipelined,
  # near 0 where the host's work is the longer part of a round).
  wait_s: list[float] = dataclasses.field(default_factory=list)
  program_s: list[dict[int, float]] = dataclasses.field(default_factory=list)  # per program
  wall_s: list[float] = dataclasses.field(default_factory=list)  # the whole iteration
  # The last rounds' [(program, host metrics)], as many as the ETA reads (`progress.eta`).
  recent: collections.deque = dataclasses.field(
    default_factory=lambda: collections.deque(maxlen=ETA_ROUNDS)
  )
  back: float | None = None  # time.perf_counter() when the last round's results came back
  said: float | None = None  # time.perf_counter() when the last progress line was printed


def _run_locked(
  config: Config,
  experiment: str,
  options: RunOptions,
  wd: Workdir,
  datasets,
  placed,
  phases: dict[str, float],
) -> Path:
  """The study in the locked workdir; `phases` (seconds so far by phase) gains the rest, and
  a last line gives them all."""
  placement, mesh_note, axes = placed
  began, writer = time.perf_counter(), jax.process_index() == 0
  if options.restart and writer and (moved_to := wd.move_aside()):
    print(f"swapjax: --restart moved the previous study to {moved_to}", flush=True)
  resuming = wd.check_config(config.to_json(), experiment) if writer else True
  source = "; ".join(f"{ds.name} from {ds.source}" for ds in datasets.values())
  print(f"swapjax: data {source}\nswapjax: {mesh_note}", flush=True)
  programs = study.build_programs(config, datasets, *placement)
  _say_batches(programs)
  table = run_table(config)
  meta = _meta(config, experiment, source, len(table))
  notes: list[str] = []
  ckpt, start, states = _restore(
    config, wd, programs, study.init_states(programs), resuming, notes, options
  )
  with ckpt:  # closed on every way out, after the save in flight
    if resuming and writer:
      old = wd.set_rounds(config.study.rounds, start)  # refuses fewer rounds than completed
      if old is not None:
        print(f"swapjax: rounds {old} -> {config.study.rounds}: the study goes on", flush=True)
    rows = wd.truncate_metrics(start, study.round_key(config)) if writer else []
    events = EventWriter(
      wd.path, enabled=writer and config.engine.tensorboard, purge_step=start + 1
    )
    meta["notes"] = notes
    meta["runs_per_call"] = runs_per_call(programs)
    meta["placement"] = "mesh" if any(m is not None for m in placement[0]) else "chunks"
    meta["row_axes"] = list(axes) if axes is not None else None
    if not resuming and writer:
      wd.write_config(meta)
    compile_s, peak_bytes = {}, {}
    phases["build"], began = time.perf_counter() - began, time.perf_counter()
    if start < config.study.rounds:
      programs, compile_s, peak_bytes = compile_programs(programs, states)
      peers.report_progress()
    phases["compile"], began = time.perf_counter() - began, time.perf_counter()
    clock = _Clock()
    with StopFlag() as stop, events, _frozen_heap():
      finished_early = _rounds(
        config, options, wd, programs, states, (start, rows, axes), ckpt, events, clock, stop
      )
  phases["rounds"], began = time.perf_counter() - began, time.perf_counter()
  times = (clock.round_s, clock.program_s, clock.wall_s, clock.wait_s)
  timing = timing_report(meta, programs, compile_s, peak_bytes, times, finished_early)
  write_outputs(wd, programs, states, timing)
  phases["report"] = time.perf_counter() - began
  if writer and options.progress:
    said = ", ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items())
    print(f"swapjax: seconds in the study: {said}", flush=True)
  return wd.path / "report.md"


@contextlib.contextmanager
def _frozen_heap():
  """The objects alive when the rounds begin (modules, data, programs: a large heap) kept out
  of Python's cyclic garbage collector until they end. The containers a round allocates would
  otherwise set off, every few dozen rounds of a study of tiny networks, a full collection
  that walks that whole heap again (tens of milliseconds each) and finds nothing to free."""
  gc.freeze()
  try:
    yield
  finally:
    gc.unfreeze()


# A round dispatched ahead cannot be called back: a stop (a signal, an early stop) waits for it
# to finish before the process exits. Rounds go ahead only after a round of this process came
# back within AHEAD_MAX_S: there the host's writes are a share of the round worth hiding; beside
# a longer round they are not, and a stop would wait a whole round more.
AHEAD_MAX_S = 10.0


# The progress line is printed at most this often (and for a process's first round and the
# last round it runs): a study of rounds of milliseconds prints a few lines a second, not
# hundreds, and skips the line's means and ETA in the rounds between.
PROGRESS_EVERY_S = 0.5


def _line_due(said: float | None, now: float) -> bool:
  """Whether a round's progress line is printed: the process's first, then PROGRESS_EVERY_S
  or more after the last one printed (`said`)."""
  return said is None or now - said >= PROGRESS_EVERY_S


def _may_go_ahead(wait_s: list[float], stop) -> bool:
  """Whether the next round may be dispatched before this one is written: no signal yet, and
  the last round's results of this process came back within AHEAD_MAX_S of its iteration's
  start (`wait_s`; not before the first). The processes of a multi-process job always go
  ahead: they must dispatch alike (a program over several hosts waits for all of them), and
  their clocks and signals differ."""
  if jax.process_count() > 1:
    return True
  return not stop.signal and bool(wait_s) and wait_s[-1] <= AHEAD_MAX_S


def _rounds(config, options, wd, programs, states, resumed, ckpt, events, clock, stop) -> bool:
  """The study's rounds from `resumed = (start, rows so far, the rows' run axes)`; True if
  every run fit early."""
  start, rows, axes = resumed
  writer, round_key, table = jax.process_index() == 0, study.round_key(config), run_table(config)
  best_acc = best_train_acc(rows, len(table))  # for collapse detection across a resume
  previous = {r["run"]: r for r in rows if r.get(round_key) == start}
  layout = Layout(programs, axes, round_key)
  # Pipelined: round r+1 goes to the device before round r's results are read and written
  # (the host driver dispatches every step itself, so it runs its rounds one after another).
  pipeline = options.pipeline and all(p.driver == "scan" for p in programs)
  with MetricsAppender(wd, enabled=writer) as appender:
    flight: dict[int, tuple] = {}
    for rnd in range(start, config.study.rounds):
      t0 = time.perf_counter()
      program_s: dict[int, float] = {}
      stepped = flight or _dispatch(config, programs, states, rnd)
      ahead = pipeline and rnd + 1 < config.study.rounds and _may_go_ahead(clock.wait_s, stop)
      # From the states before the health check: the arrays are immutable, those stay valid.
      after = [stepped[i][0] if i in stepped else s for i, s in enumerate(states)]
      flight = _dispatch(config, programs, after, rnd + 1) if ahead else {}
      results, any_active, changed, signalled = _collect(
        config, programs, stepped, states, rnd, table, best_acc, ckpt, wd, program_s, stop
      )
      if ahead and changed:  # a run frozen by the health check: its chunk's round again
        flight |= _dispatch(config, programs, states, rnd + 1, changed)
      back = time.perf_counter()
      clock.wait_s.append(back - t0)
      clock.round_s.append(back - (clock.back or t0))
      clock.back = back
      clock.program_s.append(program_s)
      rows = layout.rows(results, rnd, previous, clock.round_s[-1])
      previous = rows  # a stopped run's next row repeats its metrics
      fit_all = config.study.early_stop and not any_active
      stopping = signalled or (options.stop_after and rnd + 1 - start >= options.stop_after)
      # Asked every round, on every process alike (continuous: process 0 decides).
      saving = ckpt.due(rnd + 1, config.study.rounds) or fit_all or stopping
      if writer:  # metrics.jsonl is written by the appender's thread
        appender.append(rows.encoded(), sync=saving)
        events.write_round(rows)
      if saving:
        appender.wait()  # the rows on disk before the checkpoint that keeps them
        ckpt.save(rnd + 1, checkpoint.pack(programs, states))
      peers.report_progress()  # the stall watch of a --distributed job (swapjax/peers.py)
      clock.recent.append(results)
      # The ETA and the progress line go by the whole round's wall time: rows, TensorBoard
      # and the checkpoint included (they dominate studies of tiny models).
      now = time.perf_counter()
      clock.wall_s.append(now - t0)
      last = rnd + 1 == config.study.rounds or fit_all or stopping
      if options.progress and writer and (last or _line_due(clock.said, now)):
        history = [round_acc(r) for r in clock.recent]
        eta_s = eta(config, clock.wall_s, rnd, history)
        line = progress_line(config, rnd + 1, [m for _, m in results], clock.wall_s[-1], eta_s)
        print(f"swapjax: {line}", flush=True)
        clock.said = now
      if fit_all:
        print(f"swapjax: every run has fit by epoch {rnd + 1}; stopping early", flush=True)
        return True
      if stopping:
        why = stop.signal or ("another process's signal" if signalled else "stop_after")
        raise StudyStopped(
          EXIT_INTERRUPTED,
          f"stopped after round {rnd + 1} ({why}); "
          f"checkpoint saved; rerun the same command to resume",
        )
  return False
