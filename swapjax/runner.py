"""The only impure module: files, logging, checkpoints, signals and timing around the rounds.

Per round: one compiled call, one device-to-host transfer of the metrics, a NaN check,
`metrics.jsonl` appended and fsynced, then the round's orbax checkpoint (async). Rerunning the
same command in the same workdir resumes from the newest checkpoint that restores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from swapjax import backend, checkpoint, network_check, report, study
from swapjax import mesh as meshlib
from swapjax.config import Config, program_configs, run_table, validate
from swapjax.layers import chance_accuracy
from swapjax.state import StudyState
from swapjax.tensorboard import EventWriter, require_writer
from swapjax.version import __version__
from swapjax.workdir import Workdir, atomic_write_bytes, atomic_write_text

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped cleanly at a round boundary; rerun to resume
EXIT_DIVERGED = 3


class StudyStopped(Exception):  # noqa: N818 - a control-flow outcome, not an error
  """Raised to end a study early with an exit status and a message."""

  def __init__(self, code: int, message: str):
    super().__init__(message)
    self.code = code


@dataclasses.dataclass
class RunOptions:
  workdir: str
  data_dir: str | None = None
  tfds_data_dir: str | None = None
  restart: bool = False
  progress: bool = True
  stop_after: int = 0  # testing aid: stop (as if signalled) after this many rounds


class _StopFlag:
  """SIGTERM/SIGINT: finish the round in flight, checkpoint, exit."""

  def __init__(self):
    self.signal = None

  def __enter__(self):
    self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signal is not None:  # second signal: stop now
      raise KeyboardInterrupt
    self.signal = signal.Signals(signum).name
    print(
      f"swapjax: {self.signal} received; finishing the round in flight, then saving",
      file=sys.stderr,
      flush=True,
    )

  def __exit__(self, *exc):
    for s, handler in self._old.items():
      signal.signal(s, handler)


def _protocol(experiment: str) -> str:
  from swapjax import registry

  module = registry.registry().get(experiment)
  return (module.__doc__ or "").strip() if module else ""


def _meta(config: Config, experiment: str, data_source: str, num_runs: int) -> dict[str, Any]:
  return {
    "experiment": experiment,
    "protocol": _protocol(experiment),
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


def _swap_progress(config: Config, rnd: int, metrics, round_s: float, eta_s: str) -> str:
  acc = lambda k: float(np.nanmean(metrics[k]))
  return (
    f"round {rnd}/{config.rounds}  AtoB test {acc('AtoB/test_acc'):.3f} "
    f"(unseen {acc('AtoB/test_unseen_acc'):.3f})  BtoA test {acc('BtoA/test_acc'):.3f} "
    f"(unseen {acc('BtoA/test_unseen_acc'):.3f})  moved {int(np.sum(metrics['swap/moved']))}  "
    f"{round_s:.2f} s/round  {eta_s}"
  )


def _single_progress(config: Config, rnd: int, metrics, round_s: float, eta_s: str) -> str:
  fit = int((metrics["fit_epoch"] > 0).sum())
  test = metrics["test/acc"]

  def mean(key, digits=3):  # "-" where nothing is measured (no validation split, no test)
    values = np.asarray(metrics[key], np.float64)
    return f"{np.nanmean(values):.{digits}f}" if np.isfinite(values).any() else "-"

  return (
    f"epoch {rnd}/{config.rounds}  train acc {mean('train/acc')} "
    f"loss {mean('train/loss', 4)}  val acc {mean('val/acc')}"
    f"  test acc {mean('test/acc')}  fit {fit}/{len(test)}  {round_s:.2f} s/epoch  "
    f"{eta_s}"
  )


PROGRESS = {"swap": _swap_progress, "epochs": _single_progress}  # per config.STUDY_KINDS


def _progress(config: Config, rnd: int, metrics_list, round_s: float, eta_s: str) -> str:
  """One line for the whole study (every program's runs)."""
  metrics = {
    k: np.concatenate([np.asarray(m[k], np.float64).reshape(-1) for m in metrics_list])
    for k in metrics_list[0]
  }
  return PROGRESS[config.study](config, rnd, metrics, round_s, eta_s)


def write_outputs(wd: Workdir, programs, states, timing: dict[str, Any]) -> None:
  """membership.npz (per program, keys prefixed `p<i>_` when there are several), timing.json,
  then the report."""
  arrays = {}
  packed = _pack(programs, states)
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


def _meshes(config: Config):
  """One mesh per program (its run count decides the `runs` axis), or single devices for
  chunks of `runs_per_device` or for a CPU split into `cpu_devices` (one process, no `data`
  axis); and a line saying which."""
  split = backend.split_devices(config)
  if split:
    count = min(len(split), *(len(run_table(p)) for p in program_configs(config)))
    note = f"each program's runs in equal chunks on {count} CPU devices (cpu_devices)"
    return [None] * len(program_configs(config)), note, split[:count]
  if config.runs_per_device and jax.process_count() == 1 and config.mesh_data == 1:
    devices = jax.local_devices()
    chunks = min(len(run_table(p)) // config.runs_per_device for p in program_configs(config))
    count = meshlib.choose_runs_axis(chunks, len(devices), config.mesh_runs, 1)
    if count > len(devices):
      raise meshlib.MeshError(f"mesh_runs={count} needs more than the {len(devices)} devices")
    note = (
      f"{config.runs_per_device} run(s) per call on each of {count} device(s), chunks round-robin"
    )
    return [None] * len(program_configs(config)), note, devices[:count]
  per_device = config.runs_per_device or 1
  made = [
    meshlib.make_mesh(len(run_table(p)) // per_device, config.mesh_runs, config.mesh_data)
    for p in program_configs(config)
  ]
  return [m for m, _ in made], made[0][1], None


def run(config: Config, experiment: str, options: RunOptions) -> Path:
  """Runs (or resumes) the study in `options.workdir`; returns the report path."""
  wd = Workdir(options.workdir)
  # Everything that can fail on bad input happens before anything is written.
  backend.check(config)
  if config.tensorboard:
    require_writer()
  datasets = study.load_datasets(config, options.data_dir, options.tfds_data_dir)
  ds = next(iter(datasets.values()))
  if not (config.pool_size and config.holdout_size):
    config = study.resolve_sizes(config, ds)
    validate(config)
  for program in program_configs(config):  # a run that cannot fit: one line, nothing written
    ds = datasets[program.dataset]
    classes = network_check.num_classes(program.dataset, ds.train_labels)
    network_check.check_network(program, ds.image_shape, ds.train_labels.shape[1:], classes)
    study.fit_batch(program, ds.image_shape, ds.train_labels.shape[1:])
  meshes, mesh_note, devices = _meshes(config)
  if jax.process_index() == 0 and not options.restart and wd.path.is_dir():
    wd.check_config(config.to_json(), experiment)
  if jax.process_index() == 0:  # process 0 alone writes the workdir's files
    wd.prepare()
    wd.lock()
  try:
    return _run_locked(config, experiment, options, wd, datasets, (meshes, devices), mesh_note)
  finally:
    if jax.process_index() == 0:
      wd.unlock()


def _join_runs(*leaves):
  """One leaf of several chunks joined on the run axis (scalars, like the round, are shared)."""
  if not np.ndim(leaves[0]):
    return leaves[0]
  return (np.concatenate if isinstance(leaves[0], np.ndarray) else jnp.concatenate)(leaves)


def _pack(programs, states):
  """The checkpointed tree: each program's state with its chunks joined on the run axis (so a
  checkpoint does not depend on the chunking or the device count); the state itself for one
  program, `{program_<i>: state}` for several."""
  joined = []
  for i in sorted({p.program for p in programs}):
    chunks = [(p, s) for p, s in zip(programs, states, strict=True) if p.program == i]
    parts = [s for _, s in chunks]
    if len(parts) > 1 and any(p.device is not None for p, _ in chunks):
      parts = jax.device_get(parts)  # chunks on different devices meet on the host
    joined.append(parts[0] if len(parts) == 1 else jax.tree.map(_join_runs, *parts))
  return joined[0] if len(joined) == 1 else {f"program_{i}": s for i, s in enumerate(joined)}


def _unpack(programs, tree, like):
  """The chunk states of a packed tree, placed like the freshly initialised `like` states."""
  joined = [tree] if isinstance(tree, StudyState) else list(tree.values())
  out, offset = [], dict.fromkeys(range(len(joined)), 0)
  for built, fresh in zip(programs, like, strict=True):
    size, start = len(built.runs_table), offset[built.program]
    offset[built.program] += size
    part = jax.tree.map(
      lambda a, start=start, size=size: a if not np.ndim(a) else a[start : start + size],
      joined[built.program],
    )
    out.append(jax.tree.map(lambda a, ref: jax.device_put(a, ref.sharding), part, fresh))
  return out


def _compile(programs, states):
  """AOT-compiles each program's round once per device (its chunks on one device share it);
  returns the programs with compiled rounds and the compile seconds per program.

  One program at a time: XLA:CPU compiles one program on several cores already (on 2 cores the
  binary-addition study's 7 programs took 22.1 / 23.5 s one at a time, 27.6 / 26.1 s two at a
  time in threads). Chunks on other single devices (a split CPU, `runs_per_device`) compile
  the program for their device: JAX's public API loads an executable only on the device it was
  compiled for, and the persistent compilation cache keeps each device's code for later runs."""
  results, peak = {}, {}
  start = time.perf_counter()
  for built, state in zip(programs, states, strict=True):
    key = (built.program, getattr(built.device, "id", None))
    if built.driver != "scan" or key in results:
      continue
    t0 = time.perf_counter()
    done = built.round_fn.lower(state, built.pool, built.runs, np.asarray(False)).compile()
    results[key] = (done, time.perf_counter() - t0)
  if len(results) > 1:
    print(f"swapjax: {len(results)} compilations took {time.perf_counter() - start:.1f} s")
  built_of = {(p.program, getattr(p.device, "id", None)): p for p in programs}
  per_program = {}
  for key, (done, took) in results.items():
    built = built_of[key]
    per_program[built.program] = per_program.get(built.program, 0.0) + took
    peak[built.program] = _xla_peak_bytes(done)
    groups = sorted({g for p in programs if p.program == built.program for g in p.groups})
    per_run, _ = built.memory_estimate
    print(
      f"swapjax: compiled the round of {len(built.runs_table)} runs x "
      f"{built.config.members} members ({', '.join(groups)}) in {took:.1f} s"
      + (f" for {built.device}" if built.device else "")
      + f"; memory: ~{report.format_bytes(per_run)} per run (estimate), XLA's figure per "
      + f"call {report.format_bytes(peak[built.program])}",
      flush=True,
    )
  compiled = []
  for built in programs:
    key = (built.program, getattr(built.device, "id", None))
    if key in results:
      built = dataclasses.replace(built, round_fn=results[key][0])
    compiled.append(built)
  return compiled, per_program, peak


def _xla_peak_bytes(compiled) -> int | None:
  """XLA's figure for a compiled program's device memory: arguments + outputs + temporaries -
  donated (aliased) buffers. (`peak_memory_in_bytes` on XLA:CPU counts the arguments only.)"""
  try:
    stats = compiled.memory_analysis()
  except Exception:  # noqa: BLE001 - not every backend reports it
    return None
  if stats is None:
    return None
  parts = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
  return int(sum(getattr(stats, p, 0) for p in parts) - getattr(stats, "alias_size_in_bytes", 0))


TRAIN_ACC = ("train/acc", "/train_acc")  # metric names ending so: a training accuracy


def _train_acc(metrics) -> np.ndarray:
  """Each run's lowest training accuracy over its members this round (R,)."""
  keys = [k for k in metrics if k.endswith(TRAIN_ACC)]
  return np.min([np.asarray(metrics[k], np.float64) for k in keys], axis=0)


def _round_acc(results):
  """(training accuracy, still training) of every run this round, over all programs."""
  acc = np.concatenate([_train_acc(m) for _, m in results])
  active = [m["active"] if "active" in m else np.ones(len(b.runs_table), bool) for b, m in results]
  return acc, np.concatenate(active)


def _eta(config: Config, round_times, rnd: int, acc_history) -> str:
  """`ETA <= budget`: the rounds left at the recent median pace, an upper bound when runs stop
  early; with early stopping, also an estimate: each training run's accuracy extrapolated
  linearly (over the last 5 rounds) to `fit_target`, the slowest run deciding."""
  per_round = statistics.median(round_times[-5:])
  left = config.rounds - rnd - 1
  if not config.early_stop:
    return f"ETA {per_round * left:.0f} s"
  text = f"ETA <= {per_round * left:.0f} s"
  if len(acc_history) < 3 or not left:
    return text
  recent = acc_history[-5:]
  acc, active = np.stack([a for a, _ in recent]), recent[-1][1].astype(bool)
  slope = (acc[-1] - acc[0]) / (len(recent) - 1)
  need = np.where(active, (config.fit_target - acc[-1]) / np.where(slope > 0, slope, np.nan), 0)
  if not active.any() or not np.isfinite(need).all():
    return text
  # A run at the target this round is still marked active (the round's input): 0 rounds left.
  rounds = min(left, max(0, int(np.ceil(need.max()))))
  return f"{text} (fit in ~{per_round * rounds:.0f} s at the current pace)"


def _best_train_acc(rows) -> dict[int, float]:
  """{run: highest training accuracy so far} from metrics rows (the lowest over members)."""
  best: dict[int, float] = {}
  for row in rows:
    values = [v for k, v in row.items() if k.endswith(TRAIN_ACC) and v is not None]
    if values:
      best[row["run"]] = max(best.get(row["run"], 0.0), min(values))
  return best


def collapse_bounds(config: Config) -> tuple[float, float] | None:
  """(from, to): a run collapsed when its training accuracy falls to `to` (1.5 x chance) after
  it was above `from` (0.5 and 3 x chance): report 003's collapse at 4,000 epochs, 10 classes
  (0.15 after 0.5). None where the task cannot tell a collapse from a poor fit: regression, and
  chance of 1/3 or more (iris' 3 classes, sigmoid bits), where 3 x chance is not reachable."""
  chance = chance_accuracy(config)
  if chance is None or 3 * chance >= 1.0:
    return None
  return max(0.5, 3 * chance), round(1.5 * chance, 12)


def _unhealthy(built, metrics, best_acc: dict[int, float]) -> dict[int, str]:
  """{local run: why} for runs whose loss is not finite, or whose training accuracy fell back
  to chance (`collapse_bounds`); `best_acc` (by study-wide run id) is updated."""
  why = {int(r): "NaN/Inf loss" for r in study.nonfinite_runs(built, metrics)}
  acc = _train_acc(metrics)
  bounds = collapse_bounds(built.config)
  for r, run_id in enumerate(built.run_ids):
    best = best_acc.get(run_id, 0.0)
    fell = bounds and best > bounds[0] and np.isfinite(acc[r]) and acc[r] <= bounds[1]
    if fell and r not in why:
      why[r] = f"collapse (training accuracy {acc[r]:.3f} after {best:.3f})"
    if np.isfinite(acc[r]):
      best_acc[run_id] = max(best, float(acc[r]))
  return why


def _check_health(config: Config, built, state, active, metrics, rnd, table, best_acc, ckpt, wd):
  """Stops the study (on_nan=stop) or freezes the runs (`active` on the host) that diverged or
  collapsed."""
  why = _unhealthy(built, metrics, best_acc)
  bad = [r for r in why if active[r]]
  if not bad:
    return state
  described = ", ".join(
    f"run {built.run_ids[r]} ({', '.join(f'{k}={v}' for k, v in table[built.run_ids[r]].items())})"
    f": {why[r]}"
    for r in bad[:5]
  )
  if config.on_nan == "stop":
    ckpt.close()
    raise StudyStopped(
      EXIT_DIVERGED,
      f"round {rnd + 1}: {described}; stopped, the last good checkpoint is round {rnd} in "
      f"{wd.checkpoint_dir} (--set on_nan=freeze continues the other runs)",
    )
  print(f"swapjax: froze {described} at round {rnd + 1}", flush=True)
  return state._replace(active_R=state.active_R.at[np.asarray(bad)].set(False))


def _step_all(config, programs, states, rnd, table, best_acc, ckpt, wd, program_s):
  """Round `rnd` of every program (and chunk), interleaved: all are dispatched before any
  result is awaited, so chunks on different devices run at the same time. Returns
  [(program, host metrics)] and whether any run still trains; `states` is updated and each
  program's seconds until its results are added to `program_s`."""
  stepped = [
    study.step_round(built, states[i], study.test_due(config, rnd))
    for i, built in enumerate(programs)
  ]
  results, any_active = [], False
  done_at = time.perf_counter()
  for i, (built, (state, metrics)) in enumerate(zip(programs, stepped, strict=True)):
    # The round's one device-to-host transfer: its metrics and which runs still train.
    metrics, active = meshlib.to_host((metrics, state.active_R))
    # On one device the calls run in order: the time until this one's results is its own.
    previous_done, done_at = done_at, time.perf_counter()
    program_s[built.program] = program_s.get(built.program, 0.0) + done_at - previous_done
    active = np.asarray(active)
    states[i] = _check_health(config, built, state, active, metrics, rnd, table, best_acc, ckpt, wd)
    any_active |= bool(active.any())
    results.append((built, metrics))
  return results, any_active


def _timing(meta, programs, compile_s, peak_bytes, times, finished_early) -> dict[str, Any]:
  round_times, program_times = times
  steady = round_times[1:] if len(round_times) > 1 else round_times
  steady_programs = program_times[1:] if len(program_times) > 1 else program_times

  def program_median(i):
    values = [t[i] for t in steady_programs if i in t]
    return statistics.median(values) if values else None

  of = lambda i: [p for p in programs if p.program == i]  # noqa: E731
  return {
    "backend": jax.default_backend(),
    "device": meta["device"],
    "device_count": jax.device_count(),
    "jax": jax.__version__,
    "compile_s": sum(compile_s.values()),
    "programs": [
      {
        "program": i,
        "variant": of(i)[0].config.variant,
        "train_fraction": of(i)[0].config.train_fraction[0],
        "groups": sorted({g for p in of(i) for g in p.groups}),
        "runs": sum(len(p.runs_table) for p in of(i)),
        "runs_per_call": len(of(i)[0].runs_table),
        "calls_per_round": len(of(i)),
        "rnn_impl": backend.rnn_impl(of(i)[0].config),
        "compile_s": compile_s.get(i, 0.0),
        "memory_estimate_bytes_per_run": of(i)[0].memory_estimate[0],
        "memory_estimate_bytes_per_program": of(i)[0].memory_estimate[1],
        "xla_peak_bytes_per_call": peak_bytes.get(i),
        # Seconds until the program's results each round (its own time on one device).
        "round_s_median": program_median(i),
      }
      for i in sorted({p.program for p in programs})
    ],
    "schedule": "interleaved: every program runs round r before any runs round r + 1",
    "rounds_timed": len(round_times),
    "round_s": round_times,
    "conv_impl": programs[0].conv_impl,
    "rnn_impl": _rnn_impls(programs),
    "driver": programs[0].driver,
    "round_s_median": statistics.median(steady) if steady else float("nan"),
    "round_s_min": min(steady) if steady else float("nan"),
    "round_s_max": max(steady) if steady else float("nan"),
    "finished_early": finished_early,
  }


def _rnn_impls(programs) -> str | None:
  """The recurrences' formulation: one name, or the most common one and the groups of the
  others (`native; fused for units128`); None without recurrent layers."""
  by_impl = {}
  for p in programs:
    impl = backend.rnn_impl(p.config)
    if impl:
      by_impl.setdefault(impl, set()).update(p.groups)
  if not by_impl:
    return None
  common = max(by_impl, key=lambda impl: len(by_impl[impl]))
  others = [f"{impl} for {', '.join(sorted(g))}" for impl, g in by_impl.items() if impl != common]
  return "; ".join([common, *others])


def _restore(config, wd, programs, states, resuming, notes):
  ckpt = checkpoint.Checkpointer(wd.checkpoint_dir, keep=config.checkpoint_keep)
  start = 0
  if resuming and ckpt.steps():
    abstract = checkpoint.abstract_like(_pack(programs, states))
    start, restored = ckpt.restore_latest(abstract, notes)
    if restored is not None:
      states = _unpack(programs, restored, states)
      print(f"swapjax: resuming after round {start} from {wd.checkpoint_dir}", flush=True)
  return ckpt, start, states


def _run_locked(
  config: Config,
  experiment: str,
  options: RunOptions,
  wd: Workdir,
  datasets,
  placement,
  mesh_note: str,
) -> Path:
  notes: list[str] = []
  writer = jax.process_index() == 0
  if options.restart and writer:
    moved_to = wd.move_aside()
    if moved_to:
      print(f"swapjax: --restart moved the previous study to {moved_to}", flush=True)
  resuming = wd.check_config(config.to_json(), experiment) if writer else True
  source = "; ".join(f"{ds.name} from {ds.source}" for ds in datasets.values())
  print(f"swapjax: data {source}", flush=True)
  print(f"swapjax: {mesh_note}", flush=True)
  programs = study.build_programs(config, datasets, *placement)
  for program in {p.program: p.config for p in programs}.values():
    name = program.variant or "the study"
    if program.batch_size > program.num_train:
      print(
        f"swapjax: {name}: batch_size={program.batch_size} > {program.num_train} training "
        f"samples: one partial batch of {program.num_train} per epoch (as Keras)",
        flush=True,
      )
    if program.micro_batches > 1:
      print(
        f"swapjax: {name}: each batch in {program.micro_batches} slices, gradients accumulated "
        "(micro_batches; the same update up to float order)",
        flush=True,
      )
  table = run_table(config)
  meta = _meta(config, experiment, source, len(table))
  round_key = study.round_key(config)
  states = study.init_states(programs)
  ckpt, start, states = _restore(config, wd, programs, states, resuming, notes)
  rows = wd.truncate_metrics(start, round_key) if writer else []
  events = EventWriter(wd.path, enabled=writer and config.tensorboard, purge_step=start + 1)
  previous = {r["run"]: r for r in rows if r.get(round_key) == start}
  meta["notes"] = list(notes)
  if not resuming and writer:
    wd.write_config(meta)
  compile_s: dict[int, float] = {}
  peak_bytes: dict[int, int | None] = {}
  if start < config.rounds:
    programs, compile_s, peak_bytes = _compile(programs, states)

  round_times: list[float] = []
  finished_early = False
  best_acc = _best_train_acc(rows)  # for collapse detection across a resume
  acc_history: list = []  # (training accuracy, active) per round, for the early-stop ETA
  program_times: list[dict[int, float]] = []  # seconds of each program, per round
  wall_times: list[float] = []  # seconds of each round's whole iteration
  with _StopFlag() as stop, events:
    for rnd in range(start, config.rounds):
      t0 = time.perf_counter()
      program_s: dict[int, float] = {}
      results, any_active = _step_all(
        config, programs, states, rnd, table, best_acc, ckpt, wd, program_s
      )
      round_s = time.perf_counter() - t0
      round_times.append(round_s)
      program_times.append(program_s)
      rows = sorted(
        (
          row
          for built, metrics in results
          for row in study.metric_rows(built, metrics, rnd, previous, round_s)
        ),
        key=lambda row: row["run"],
      )
      previous = {r["run"]: r for r in rows}
      if writer:
        wd.append_metrics(rows)
        events.write(rows, round_key)
      ckpt.save(rnd + 1, _pack(programs, states))
      acc_history.append(_round_acc(results))
      # The ETA and the progress line go by the whole round's wall time: rows, TensorBoard
      # and the checkpoint included (they dominate studies of tiny models).
      wall_times.append(time.perf_counter() - t0)
      if options.progress and writer:
        eta = _eta(config, wall_times, rnd, acc_history)
        line = _progress(config, rnd + 1, [m for _, m in results], wall_times[-1], eta)
        print(f"swapjax: {line}", flush=True)
      if config.early_stop and not any_active:
        finished_early = True
        print(f"swapjax: every run has fit by epoch {rnd + 1}; stopping early", flush=True)
        break
      if stop.signal or (options.stop_after and rnd + 1 - start >= options.stop_after):
        ckpt.close()
        raise StudyStopped(
          EXIT_INTERRUPTED,
          f"stopped after round {rnd + 1} ({stop.signal or 'stop_after'}); "
          f"checkpoint saved; rerun the same command to resume",
        )
  ckpt.close()
  timing = _timing(
    meta, programs, compile_s, peak_bytes, (round_times, program_times), finished_early
  )
  write_outputs(wd, programs, states, timing)
  return wd.path / "report.md"
