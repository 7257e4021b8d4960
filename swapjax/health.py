"""How a study stops: diverged or collapsed runs (stopped or frozen), signals, exit statuses."""

from __future__ import annotations

import signal
import sys

import numpy as np

from swapjax import study
from swapjax.checkpoint import CheckpointError
from swapjax.config import Config
from swapjax.layers import collapse_bounds
from swapjax.progress import TRAIN_ACC, train_acc

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: stopped cleanly at a round boundary; rerun to resume


EXIT_DIVERGED = 3


class StudyStopped(Exception):  # noqa: N818 - a control-flow outcome, not an error
  """Raised to end a study early with an exit status and a message."""

  def __init__(self, code: int, message: str):
    super().__init__(message)
    self.code = code


class StopFlag:
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


def best_train_acc(rows, num_runs: int) -> np.ndarray:
  """Each run's highest training accuracy so far (the lowest over members), 0 where none, by
  study-wide run id, from metrics rows."""
  best = [0.0] * num_runs
  names = [k for k in set().union(*rows) if k.endswith(TRAIN_ACC)]  # the rows' accuracies
  for row in rows:
    values = [v for k in names if (v := row.get(k)) is not None]
    if values:
      run = row["run"]
      best[run] = max(best[run], min(values))
  return np.array(best, np.float64)


def unhealthy(built, metrics, best_acc: np.ndarray) -> dict[int, str]:
  """{local run: why} for runs whose loss is not finite, or whose training accuracy fell back
  to chance (`collapse_bounds`); `best_acc` (`best_train_acc`, by study-wide run id) is
  updated."""
  why = {int(r): "NaN/Inf loss" for r in study.nonfinite_runs(built, metrics)}
  acc = train_acc(metrics)
  ids = np.asarray(built.run_ids)
  best = best_acc[ids]
  finite = np.isfinite(acc)
  if bounds := collapse_bounds(built.config):
    for r in np.flatnonzero((best > bounds[0]) & finite & (acc <= bounds[1])).tolist():
      if r not in why:
        why[r] = f"collapse (training accuracy {acc[r]:.3f} after {best[r]:.3f})"
  best_acc[ids[finite]] = np.maximum(best, acc)[finite]
  return why


def check_health(config: Config, built, state, active, metrics, rnd, table, best_acc, ckpt, wd):
  """Stops the study (on_nan=stop) or freezes the runs (`active` on the host) that diverged or
  collapsed; `state` None: the chunk runs on another process (every process decides alike)."""
  why = unhealthy(built, metrics, best_acc)
  bad = [r for r in why if active[r]]
  if not bad:
    return state
  described = ", ".join(
    f"run {built.run_ids[r]} ({', '.join(f'{k}={v}' for k, v in table[built.run_ids[r]].items())})"
    f": {why[r]}"
    for r in bad[:5]
  )
  if config.study.on_nan == "stop":
    failed = None
    try:
      ckpt.wait()  # the save in flight decides which checkpoint is the last good one
    except CheckpointError as e:  # said beside the divergence, which stays the message
      failed = e
    stopped = StudyStopped(
      EXIT_DIVERGED,
      f"round {rnd + 1}: {described}; stopped, the last good checkpoint is round "
      f"{max(ckpt.steps(), default=0)} in "
      f"{wd.checkpoint_dir} (--set on_nan=freeze continues the other runs)",
    )
    if failed is not None:
      stopped.add_note(f"swapjax: {failed}")
    raise stopped
  print(f"swapjax: froze {described} at round {rnd + 1}", flush=True)
  if state is None:  # a chunk another process runs: that process freezes it
    return None
  return state._replace(active_R=state.active_R.at[np.asarray(bad)].set(False))
