"""The workdir contract: lock, config.json, metrics.jsonl, atomic writes.

Every file is written to a temporary name, flushed, fsynced and renamed, so a kill leaves
either the old or the new file, never half of one. `metrics.jsonl` is appended every round and
fsynced before each checkpoint is started (by a thread of its own while rounds run, see
`MetricsAppender`); on resume it is cut back to the restored round, so
metrics and checkpoints never disagree.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import queue
import shutil
import threading
from pathlib import Path
from typing import Any

import orjson

MIN_FREE_BYTES = 64 << 20


# Model specs renamed since (the experiment `mnist_cnn` of seeds/002 took the name).
RENAMED_MODELS = {"mnist_cnn": "cnn_004", "mnist_cnn_dropout": "cnn_004_dropout"}


def upgrade_config(config_json: dict[str, Any]) -> dict[str, Any]:
  """A stored config as this version writes it: keys added since take their defaults (which
  is what the older version ran), renamed model specs and study kinds their new names."""
  from swapjax.config import STUDY_ALIASES, Config

  upgraded = {**Config().to_json(), **config_json}
  upgraded["model"] = RENAMED_MODELS.get(upgraded["model"], upgraded["model"])
  upgraded["study"] = STUDY_ALIASES.get(upgraded["study"], upgraded["study"])
  return upgraded


def selected_variants(config_json: dict[str, Any]) -> dict[str, Any]:
  """The stored config as its runs see it: variants that `groups` leaves out are no part of the
  study (an experiment may define new ones and its workdirs still resume)."""
  from swapjax.config.text import variant_entries

  groups, text = config_json.get("groups"), config_json.get("variants")
  if not groups or not text:
    return config_json
  kept = [entry for name, entry in variant_entries(text) if name in groups]
  return {**config_json, "variants": ";".join(kept)}


# Keys a resume may change: the study goes on to the new number of rounds (a round's randomness
# depends on its number alone, so rounds 1..n are those of the longer study).
RESUMABLE_CHANGES = ("rounds",)


class WorkdirError(RuntimeError):
  """A workdir that cannot be used; the message is one line meant for the user."""


def atomic_write_bytes(path: Path, payload: bytes) -> None:
  tmp = path.with_name(f".{path.name}.tmp")
  try:
    with open(tmp, "wb") as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    tmp.unlink(missing_ok=True)
    raise WorkdirError(f"cannot write {path}: {e.strerror or e}") from None


def atomic_write_text(path: Path, text: str) -> None:
  atomic_write_bytes(path, text.encode())


class Workdir:
  """One study's output folder."""

  def __init__(self, path: str):
    self.path = Path(path).expanduser()
    self._lock_file = None

  config_path = property(lambda self: self.path / "config.json")
  metrics_path = property(lambda self: self.path / "metrics.jsonl")
  checkpoint_dir = property(lambda self: self.path / "checkpoints")

  def prepare(self) -> None:
    """Creates the folder and checks that it is writable with room to spare."""
    try:
      self.path.mkdir(parents=True, exist_ok=True)
      probe = self.path / ".write-probe"
      with open(probe, "wb") as f:
        f.write(b"0" * 4096)
        f.flush()
        os.fsync(f.fileno())
      probe.unlink()
    except OSError as e:
      reason = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
      raise WorkdirError(f"--workdir={self.path}: not writable ({reason})") from None
    free = shutil.disk_usage(self.path).free
    if free < MIN_FREE_BYTES:
      raise WorkdirError(
        f"--workdir={self.path}: only {free >> 20} MiB free; "
        f"at least {MIN_FREE_BYTES >> 20} MiB needed for checkpoints"
      )

  def lock(self) -> None:
    """Takes an exclusive lock; the OS drops it when the holder dies, so a dead run never
    blocks its own resume."""
    handle = open(self.path / ".lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      handle.seek(0)
      holder = handle.read().strip() or "another process"
      handle.close()
      raise WorkdirError(
        f"--workdir={self.path} is in use by {holder}; wait for it to finish "
        "or choose another --workdir"
      ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"swapjax pid {os.getpid()}")
    handle.flush()
    self._lock_file = handle

  def unlock(self) -> None:
    if self._lock_file is not None:
      self._lock_file.close()
      self._lock_file = None

  # ---------------------------------------------------------------- config
  def read_config(self) -> dict[str, Any] | None:
    if not self.config_path.exists():
      return None
    try:
      return json.loads(self.config_path.read_text())
    except (OSError, ValueError) as e:
      raise WorkdirError(f"{self.config_path}: unreadable ({e}); move the workdir aside") from None

  def check_config(self, config_json: dict[str, Any], experiment: str) -> bool:
    """True if the workdir holds this study already (resume); raises if it holds another.
    A study with another number of rounds is this study (`RESUMABLE_CHANGES`)."""
    old = self.read_config()
    if old is None:
      # An empty checkpoints/ is a study stopped before its config.json: nothing to keep.
      saved = self.checkpoint_dir.is_dir() and any(self.checkpoint_dir.iterdir())
      if self.metrics_path.exists() or saved:
        raise WorkdirError(
          f"--workdir={self.path} holds metrics or checkpoints but no "
          "config.json; use an empty workdir or --restart"
        )
      return False
    old_config = selected_variants(upgrade_config(old.get("config", {})))
    config_json = selected_variants(config_json)
    diff = sorted(
      k
      for k in set(old_config) | set(config_json)
      if old_config.get(k) != config_json.get(k) and k not in RESUMABLE_CHANGES
    )
    if diff:
      shown = "; ".join(f"{k}: {old_config.get(k)!r} -> {config_json.get(k)!r}" for k in diff)
      raise WorkdirError(
        f"--workdir={self.path} holds a different study ({shown}); rerun with "
        "--restart to move its files aside and start over, or choose another "
        "--workdir"
      )
    return True

  def move_aside(self) -> Path | None:
    """--restart: moves the previous study's files into `previous-<time>/` (deletes nothing)."""
    keep = ("previous-", ".lock", ".processes")  # .processes: the job's heartbeats (peers.py)
    names = [p for p in self.path.iterdir() if not p.name.startswith(keep)]
    if not names:
      return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = self.path / f"previous-{stamp}"
    target.mkdir()
    for p in names:
      p.rename(target / p.name)
    return target

  def set_rounds(self, rounds: int, completed: int) -> int | None:
    """Records a resumed study's new number of rounds in config.json; returns the old one
    (None if unchanged). Raises if the workdir holds more completed rounds than that."""
    stored = self.read_config() or {}
    old = stored.get("config", {}).get("rounds")
    if old is None or old == rounds:
      return None
    if completed > rounds:
      raise WorkdirError(
        f"--workdir={self.path} holds {completed} completed rounds; rounds={rounds} is fewer "
        f"(rounds={old} keeps the study as it is, or --restart starts over)"
      )
    self.write_config({**stored, "config": {**stored["config"], "rounds": rounds}})
    return old

  def write_config(self, payload: dict[str, Any]) -> None:
    atomic_write_text(self.config_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")

  # ---------------------------------------------------------------- metrics
  def read_metrics(self) -> list[dict[str, Any]]:
    return self._read_rows()[0]

  def _read_rows(self) -> tuple[list[dict[str, Any]], list[int]]:
    """metrics.jsonl's rows up to the first line that does not parse (a line cut by a kill: it
    and anything after it are dropped on resume), and where each row's line ends (the offset
    after its newline; one more than the file's size for a last line without one)."""
    if not self.metrics_path.exists():
      return [], []
    rows, ends, end = [], [], 0
    with open(self.metrics_path, "rb") as f:  # line by line: the file's bytes are never all held
      for line in f:
        try:
          rows.append(orjson.loads(line))
        except ValueError:
          try:  # json's own words orjson refuses (NaN, Infinity)
            rows.append(json.loads(line))
          except ValueError:
            break
        end += len(line)
        ends.append(end if line.endswith(b"\n") else end + 1)
    return rows, ends

  def truncate_metrics(self, completed_rounds: int, round_key: str) -> list[dict[str, Any]]:
    """Keeps the rows of rounds 1..completed_rounds; returns them. The kept lines stay as they
    were written: the file is cut after the last of them (no write at all when nothing goes),
    or rewritten where a later round's row came before a kept one."""
    if not self.metrics_path.exists():
      return []
    rows, ends = self._read_rows()
    kept = [i for i, r in enumerate(rows) if r.get(round_key, 0) <= completed_rounds]
    if kept != list(range(len(kept))):
      text = "".join(json.dumps(rows[i]) + "\n" for i in kept)
      atomic_write_text(self.metrics_path, text)
      return [rows[i] for i in kept]
    cut = ends[len(kept) - 1] if kept else 0
    try:
      size = self.metrics_path.stat().st_size
      if cut != size:
        with open(self.metrics_path, "r+b") as f:
          f.truncate(min(cut, size))
          if cut > size:  # the last kept row's line lost only its newline
            f.seek(0, os.SEEK_END)
            f.write(b"\n")
          f.flush()
          os.fsync(f.fileno())
    except OSError as e:
      raise WorkdirError(f"cannot cut {self.metrics_path}: {e.strerror or e}") from None
    return rows[: len(kept)]

  def append_metrics_text(self, text: str | bytes | memoryview, sync: bool = True) -> None:
    """Appends JSON lines (text, or its UTF-8 bytes) to metrics.jsonl; `sync`: and syncs the
    file to disk (the runner syncs before each checkpoint: a resume keeps the rows up to its
    checkpoint's round)."""
    try:
      with open(self.metrics_path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)
        f.flush()
        if sync:
          os.fsync(f.fileno())
    except OSError as e:
      raise WorkdirError(f"cannot append to {self.metrics_path}: {e.strerror or e}") from None


class MetricsAppender:
  """Appends a study's rounds to metrics.jsonl from a thread of its own: the writes and syncs
  (system calls that let the round loop's thread go on) leave the loop, which waits for them
  only before a checkpoint (`wait`), so that the rows of a checkpointed round are on disk
  first. At most `depth` rounds wait to be written; `append` blocks beyond. A failed write is
  raised in the loop at every later `append` and `wait` and when the block ends (unless the
  block is failing already), and nothing is written after it. Disabled (a process that
  writes no rows), it does nothing."""

  def __init__(self, wd: Workdir, enabled: bool = True, depth: int = 2):
    self._wd, self._error = wd, None
    self._queue: queue.Queue = queue.Queue(maxsize=depth)
    self._thread = None
    if enabled:
      self._thread = threading.Thread(target=self._write, name="swapjax-metrics", daemon=True)
      self._thread.start()

  def _write(self) -> None:
    while (item := self._queue.get()) is not None:
      try:
        if self._error is None:
          text, sync = item
          # Synced also whenever the queue is empty: the sync before a checkpoint then finds
          # little left to write (the loop waits for that one).
          self._wd.append_metrics_text(text, sync=sync or self._queue.empty())
      except BaseException as e:  # raised in the loop's thread
        self._error = e
      finally:
        self._queue.task_done()
    self._queue.task_done()

  def append(self, text: str | bytes | memoryview, sync: bool) -> None:
    """Queues `text` (or its UTF-8 bytes) to be appended (`sync`: and synced to disk)."""
    if self._thread is not None:
      self._raise()
      self._queue.put((text, sync))

  def wait(self) -> None:
    """Returns once everything appended so far is written (and synced where asked)."""
    if self._thread is not None:
      self._queue.join()
      self._raise()

  def _raise(self) -> None:
    if self._error is not None:
      raise self._error

  def __enter__(self) -> MetricsAppender:
    return self

  def __exit__(self, kind, error, traceback) -> None:
    """Writes what is queued and ends the thread; a failed write is raised unless the block
    is already failing."""
    if self._thread is not None:
      self._queue.put(None)
      self._thread.join()
      self._thread = None
      if error is None:
        self._raise()
