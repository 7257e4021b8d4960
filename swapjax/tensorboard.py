"""TensorBoard event files of a study's metrics rows, written with tensorboardX (no TensorFlow).

`WORKDIR/tensorboard/run_<id>_<group>/` holds one run: a scalar series per metric (tag = the
metric's name, e.g. `AtoB/test_acc`; step = the row's round or epoch) and, once per process start,
the run's condition values as hparams (TensorBoard's HParams tab) and as a text table. A study of
more than MAX_RUN_SERIES runs writes `group_<i>_<group>/` instead: each group's mean over its
runs. View with `tensorboard --logdir WORKDIR/tensorboard`.

Resume: every process start writes new event files (tensorboardX names them by the second; a
suffix of nanoseconds and the process id keeps two starts in one second apart and in order). The
runner cuts `metrics.jsonl` back to the restored round and writes the later rounds again, so the
old event files may hold steps that are written anew. Pass `purge_step=<first round written>`:
each new file then starts with a SessionLog START at that step, and TensorBoard's loader drops the
older events from that step on (its purge of orphaned data, honoured by the Python loader
`EventAccumulator`, tested). A viewer that ignores it shows those steps twice; the newer value is
the one in `metrics.jsonl`.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from swapjax.config import ConfigError

ROUND_KEYS = ("round", "epoch")
# Metrics are slash-scoped (`AtoB/test_acc`, `time/round_s`), except these.
UNSCOPED_METRICS = ("fit_epoch",)


def is_metric(key: str) -> bool:
  return "/" in key or key in UNSCOPED_METRICS


def split_row(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
  """(condition values, metrics) of a metrics row; its round/epoch is in neither. Conditions
  are the other keys: `run`, `group` and the run-axis values (`condition`, `seed`, ...)."""
  conditions = {k: v for k, v in row.items() if not is_metric(k) and k not in ROUND_KEYS}
  metrics = {k: v for k, v in row.items() if is_metric(k)}
  return conditions, metrics


def scalar(value: Any) -> float | None:
  """The value as a float if it is a finite number (bools and None are not), else None."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return None
  value = float(value)
  return value if math.isfinite(value) else None


def finite_mean(values: list[Any]) -> float | None:
  """The mean of the values that are finite numbers (as `scalar` picks them), or None."""
  if set(map(type, values)) <= {float, int, type(None)}:  # the common case, at once
    array = np.asarray(values, np.float64)  # None becomes NaN
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else None
  picked = [x for v in values if (x := scalar(v)) is not None]
  return sum(picked) / len(picked) if picked else None


def run_dir_name(run: int, group: str) -> str:
  """`run_007_condition=schedule,warmup=0`: sorts by run; only filename-safe characters."""
  return f"run_{int(run):03d}_{re.sub(r'[^A-Za-z0-9._=,+-]', '_', str(group))}"


# Above this many runs a round, TensorBoard gets one series per group (the mean over its runs,
# `group_<i>_<name>/`) instead of one per run: thousands of event files cost seconds a round
# and no one reads thousands of curves; metrics.jsonl keeps every run.
MAX_RUN_SERIES = 256
# Event files are flushed at most this often while a study runs (a flush per file every round
# would cost more than a round of tiny networks) and when it ends.
FLUSH_S = 2.0


def group_means(rows: list[dict[str, Any]], round_key: str) -> list[dict[str, Any]]:
  """One row per group: its conditions shared by all its runs, each metric's mean over the
  runs where it is a finite number; `run` is the group's index (in order of appearance)."""
  groups: dict[str, list[dict[str, Any]]] = {}
  for row in rows:
    groups.setdefault(str(row.get("group", "all")), []).append(row)
  out = []
  for index, (group, members) in enumerate(groups.items()):
    conditions = {
      k: v
      for k, v in split_row(members[0])[0].items()
      if k not in ("run", "seed") and all(m.get(k) == v for m in members)
    }
    merged = {**conditions, "run": index, "group": group, "runs": len(members)}
    merged[round_key] = members[0][round_key]
    for key in split_row(members[0])[1]:
      mean = finite_mean([m.get(key) for m in members])
      if mean is not None:
        merged[key] = mean
    out.append(merged)
  return out


def require_writer() -> None:
  """Raises ConfigError (one line) where the event writer, tensorboardX, cannot be imported: a
  study stops before it compiles, not at its first write."""
  try:
    import tensorboardX  # noqa: F401
  except ImportError as e:
    raise ConfigError(
      f"tensorboard=true needs tensorboardX, a dependency of swapjax ({e}): "
      "python3 -m pip install -e . (or --set tensorboard=false)"
    ) from None


class EventFile:
  """One series' event file, written in the calling thread: tensorboardX's `EventsWriter` (the
  file its `SummaryWriter` writes, named alike) fed with the same events. `SummaryWriter` hands
  each event to a writer thread through a multiprocessing queue of 10: for a round of tiny
  networks that hand-over costs more than the round. `purge_step`: the file starts as
  `SummaryWriter(purge_step=...)` starts it (see the module)."""

  def __init__(self, path: Path, suffix: str, purge_step: int | None = None):
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    path.mkdir(parents=True, exist_ok=True)
    self._events = EventsWriter(str(path / "events"), suffix)
    if purge_step is not None:
      self._add(Event(step=purge_step, file_version="brain.Event:2"))
      self._add(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

  def add_summary(self, summary, step: int = 0) -> None:
    from tensorboardX.proto.event_pb2 import Event

    self._add(Event(summary=summary, step=int(step)))

  def _add(self, event) -> None:
    event.wall_time = time.time()
    self._events.write_event(event)

  def flush(self) -> None:
    self._events.flush()

  def close(self) -> None:
    self._events.close()


class EventWriter:
  """Writes metrics rows as TensorBoard scalars under `WORKDIR/tensorboard/` (see the module)."""

  def __init__(self, workdir: Path | str, enabled: bool = True, purge_step: int | None = None):
    self.logdir = Path(workdir) / "tensorboard"
    self.enabled = enabled
    self.purge_step = purge_step
    self.per_group = False  # set on the first round with more than MAX_RUN_SERIES runs
    self._writers: dict[int, EventFile] = {}
    self._suffix = f".{time.time_ns()}.{os.getpid()}"  # sorts in start order
    self._flushed = -math.inf  # time.monotonic() of the last flush
    self._tags: dict[str, str] = {}

  def _writer(self, row: dict[str, Any]) -> EventFile:
    run = int(row["run"])
    if run not in self._writers:
      from tensorboardX.summary import hparams, text

      conditions, _ = split_row(row)
      name = run_dir_name(run, conditions.get("group", "all"))
      path = self.logdir / (name.replace("run_", "group_", 1) if self.per_group else name)
      writer = EventFile(path, self._suffix, self.purge_step)
      _, session_start, _ = hparams({k: _hparam(v) for k, v in conditions.items()}, {})
      writer.add_summary(session_start)
      table = "\n".join(
        ["| key | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in conditions.items())]
      )
      writer.add_summary(text("conditions", table), step=self.purge_step or 0)
      self._writers[run] = writer
    return self._writers[run]

  def write(self, rows: list[dict[str, Any]], round_key: str) -> None:
    """Adds each row's numeric metrics at step `row[round_key]`; flushes the files at most
    every FLUSH_S seconds (TensorBoard stays current while the study runs) and on close."""
    if self.enabled:
      self._add(group_means(rows, round_key) if self._grouped(len(rows)) else rows, round_key)

  def write_round(self, rows) -> None:
    """`write` for a round's `swapjax.rows.RoundRows`: group means from its columns."""
    if self.enabled:
      self._add(rows.group_means() if self._grouped(len(rows)) else rows.dicts(), rows.round_key)

  def _grouped(self, runs: int) -> bool:
    """Whether rounds go to TensorBoard as group means: from the first round of more than
    MAX_RUN_SERIES runs on."""
    self.per_group = self.per_group or runs > MAX_RUN_SERIES
    return self.per_group

  def _add(self, rows: list[dict[str, Any]], round_key: str) -> None:
    """A row's scalars as one event (one `Summary` of several values): TensorBoard reads each
    value as its own series; an event per value would cost a round of tiny networks more."""
    from tensorboardX.proto.summary_pb2 import Summary

    for row in rows:
      writer = self._writer(row)
      values = [
        Summary.Value(tag=self._tag(tag), simple_value=number)
        for tag, value in split_row(row)[1].items()
        if (number := scalar(value)) is not None
      ]
      if values:
        writer.add_summary(Summary(value=values), int(row[round_key]))
    if time.monotonic() - self._flushed >= FLUSH_S:
      for writer in self._writers.values():
        writer.flush()
      self._flushed = time.monotonic()

  def _tag(self, key: str) -> str:
    """`key` as tensorboardX's `scalar` names its series (characters a tag cannot hold: `_`)."""
    if key not in self._tags:
      from tensorboardX.summary import scalar as scalar_summary

      self._tags[key] = scalar_summary(key, 0.0).value[0].tag
    return self._tags[key]

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
    self._writers.clear()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _hparam(value: Any):
  """hparams take str, bool and numbers; anything else (a list) as its text."""
  return value if isinstance(value, (str, bool, int, float)) or value is None else str(value)
