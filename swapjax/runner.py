"""The only impure module: files, logging, checkpoints, signals and timing around the rounds.

Per round: one compiled call, one device-to-host transfer of the metrics, a NaN check,
`metrics.jsonl` appended and fsynced, then the round's orbax checkpoint (async). Rerunning the
same command in the same workdir resumes from the newest checkpoint that restores.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import flax
import jax
import numpy as np

import swapjax
from swapjax import checkpoint, report, study
from swapjax import mesh as meshlib
from swapjax.config import Config, run_table
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
    "swapjax": swapjax.__version__,
    "jax": jax.__version__,
    "flax": flax.__version__,
    "backend": jax.default_backend(),
    "device": str(jax.devices()[0].device_kind),
    "device_count": jax.device_count(),
  }


def _progress(config: Config, rnd: int, metrics, moved, round_s: float, eta_s: float) -> str:
  if config.study == "swap":
    acc = lambda k: float(np.nanmean(metrics[k]))
    return (
      f"round {rnd}/{config.rounds}  AtoB test {acc('AtoB/test_acc'):.3f} "
      f"(unseen {acc('AtoB/test_unseen_acc'):.3f})  BtoA test {acc('BtoA/test_acc'):.3f} "
      f"(unseen {acc('BtoA/test_unseen_acc'):.3f})  moved {int(np.sum(moved))}  "
      f"{round_s:.2f} s/round  ETA {eta_s:.0f} s"
    )
  fit = int((metrics["fit_epoch"] > 0).sum())
  test = metrics["test/acc"]
  test_text = f"{np.nanmean(test):.3f}" if np.isfinite(test).any() else "-"
  return (
    f"epoch {rnd}/{config.rounds}  train acc {np.mean(metrics['train/acc']):.3f} "
    f"loss {np.mean(metrics['train/loss']):.4f}  val acc {np.mean(metrics['val/acc']):.3f}"
    f"  test acc {test_text}  fit {fit}/{len(test)}  {round_s:.2f} s/epoch  "
    f"ETA {eta_s:.0f} s"
  )


def write_outputs(wd: Workdir, idx, move_count, timing: dict[str, Any]) -> None:
  idx = np.asarray(idx)
  arrays = {"move_count": np.asarray(move_count)}
  if idx.shape[1] == 2:
    arrays.update(a_idx=idx[:, 0], b_idx=idx[:, 1])
  else:
    arrays.update(train_idx=idx[:, 0])
  tmp = wd.path / ".membership.npz.tmp.npz"
  np.savez_compressed(tmp, **arrays)
  atomic_write_bytes(wd.path / "membership.npz", tmp.read_bytes())
  tmp.unlink()
  atomic_write_text(wd.path / "timing.json", json.dumps(timing, indent=2) + "\n")
  report.write(wd.path)


def run(config: Config, experiment: str, options: RunOptions) -> Path:
  """Runs (or resumes) the study in `options.workdir`; returns the report path."""
  wd = Workdir(options.workdir)
  # Everything that can fail on bad input happens before anything is written.
  ds = study.load_data(config, options.data_dir, options.tfds_data_dir)
  mesh, mesh_note = meshlib.make_mesh(len(run_table(config)), config.mesh_runs, config.mesh_data)
  if jax.process_index() == 0 and not options.restart and wd.path.is_dir():
    wd.check_config(config.to_json(), experiment)
  if jax.process_index() == 0:  # process 0 alone writes the workdir's files
    wd.prepare()
    wd.lock()
  try:
    return _run_locked(config, experiment, options, wd, ds, mesh, mesh_note)
  finally:
    if jax.process_index() == 0:
      wd.unlock()


def _run_locked(
  config: Config, experiment: str, options: RunOptions, wd: Workdir, ds, mesh, mesh_note: str
) -> Path:
  notes: list[str] = []
  writer = jax.process_index() == 0
  if options.restart and writer:
    moved_to = wd.move_aside()
    if moved_to:
      print(f"swapjax: --restart moved the previous study to {moved_to}", flush=True)
  resuming = wd.check_config(config.to_json(), experiment) if writer else True
  print(f"swapjax: data {ds.name} from {ds.source}", flush=True)
  print(f"swapjax: {mesh_note}", flush=True)
  built = study.build(config, ds, mesh)
  meta = _meta(config, experiment, ds.source, len(built.runs_table))
  round_key = "round" if config.study == "swap" else "epoch"

  state = built.init_state(built.runs)
  ckpt = checkpoint.Checkpointer(wd.checkpoint_dir, keep=config.checkpoint_keep)
  start = 0
  if resuming and ckpt.steps():
    start, restored = ckpt.restore_latest(checkpoint.abstract_like(state), notes)
    if restored is not None:
      state = restored
      print(f"swapjax: resuming after round {start} from {wd.checkpoint_dir}", flush=True)
  rows = wd.truncate_metrics(start, round_key) if writer else []
  previous = {r["run"]: r for r in rows if r.get(round_key) == start}
  meta["notes"] = list(notes)
  if not resuming and writer:
    wd.write_config(meta)

  round_times: list[float] = []
  compile_s = 0.0
  if built.driver == "scan" and start < config.rounds:
    t0 = time.perf_counter()
    args = (
      (state, built.pool, built.runs)
      if config.study == "swap"
      else (state, built.pool, built.runs, np.asarray(False))
    )
    compiled = built.round_fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    built = dataclasses.replace(built, round_fn=compiled)
    print(
      f"swapjax: compiled the round for {len(built.runs_table)} runs x "
      f"{config.members} members in {compile_s:.1f} s",
      flush=True,
    )

  finished_early = False
  with _StopFlag() as stop:
    for rnd in range(start, config.rounds):
      t0 = time.perf_counter()
      state, metrics = study.step_round(built, state, study.test_due(config, rnd))
      # The round's one device-to-host transfer: its metrics and which runs still train.
      metrics, active = meshlib.to_host((metrics, state.active_R))
      round_s = time.perf_counter() - t0
      round_times.append(round_s)
      active = np.asarray(active)
      bad = study.nonfinite_runs(built, metrics, np.ones_like(active))
      if len(bad):
        described = ", ".join(
          f"run {r} ({', '.join(f'{k}={v}' for k, v in built.runs_table[r].items())})"
          for r in bad[:5]
        )
        if config.on_nan == "stop":
          ckpt.close()
          raise StudyStopped(
            EXIT_DIVERGED,
            f"NaN/Inf loss in round {rnd + 1}: {described}; stopped, the last "
            f"good checkpoint is round {rnd} in {wd.checkpoint_dir} "
            "(--set on_nan=freeze continues the other runs)",
          )
        state = state._replace(active_R=state.active_R.at[bad].set(False))
        print(f"swapjax: froze diverged {described} at round {rnd + 1}", flush=True)
      new_rows = study.metric_rows(built, metrics, rnd, previous, round_s)
      previous = {r["run"]: r for r in new_rows}
      if writer:
        wd.append_metrics(new_rows)
      ckpt.save(rnd + 1, state)
      if options.progress and writer:
        eta = statistics.median(round_times[-5:]) * (config.rounds - rnd - 1)
        print(
          "swapjax: "
          + _progress(config, rnd + 1, metrics, metrics.get("swap/moved", 0), round_s, eta),
          flush=True,
        )
      if config.study == "memorize" and config.early_stop and not active.any():
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
  steady = round_times[1:] if len(round_times) > 1 else round_times
  timing = {
    "backend": jax.default_backend(),
    "device": meta["device"],
    "device_count": jax.device_count(),
    "jax": jax.__version__,
    "compile_s": compile_s,
    "rounds_timed": len(round_times),
    "round_s": round_times,
    "conv_impl": built.conv_impl,
    "driver": built.driver,
    "round_s_median": statistics.median(steady) if steady else float("nan"),
    "round_s_min": min(steady) if steady else float("nan"),
    "round_s_max": max(steady) if steady else float("nan"),
    "finished_early": finished_early,
  }
  idx, move_count = meshlib.to_host((state.idx_RxHxN, state.move_count_RxP))
  if writer:
    write_outputs(wd, idx, move_count, timing)
  return wd.path / "report.md"
