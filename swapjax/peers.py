"""A multi-process job's processes watch each other, so that a lost one ends the job quickly.

With `--distributed`, `python -m swapjax.main` runs the study in a child process and watches
the job from outside it. Every second it writes a heartbeat file,
`<workdir>/.processes/<process>.json`, and reads the other processes' files. When one stops
beating for `--heartbeat_timeout` seconds (a preempted VM, an out-of-memory kill, a node that
reboots), every other process stops its study and exits with status 75 and one line naming the
lost process and the last committed checkpoint: rerunning the same command on every process
resumes from that checkpoint. The study's own process cannot do this alone: when JAX's
distributed runtime loses a process, it aborts the others from C++ (SIGABRT, no Python
handler runs), and a collective waiting on a vanished host can wait for a long time.

A process that hangs without dying (a stuck file system, a deadlock) keeps beating, and the
others wait for it in their next collective. With `--stall_timeout=S` each watcher also
expects its study to finish a round (or its start-up) every S seconds; one that does not is
stopped, marked failed, and every process exits 75 as for a lost one.

Exit statuses of a `--distributed` process: 0 done; 75 (EX_TEMPFAIL) stopped with its
checkpoints committed (SIGTERM, a lost process, a distributed runtime that did not start):
rerun the same command; 2 bad input; 3 diverged runs; 1 anything else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

EXIT_RERUN = 75  # as health.EXIT_INTERRUPTED: stopped with nothing lost; rerun to resume
EXIT_PEER_FAILED = 70  # the study's process, to its watcher: a collective failed
BEAT_S = 1.0
CHILD_ENV = "SWAPJAX_PEERS_DIR"  # set in the study's process: where it reports to its watcher
FOLDER = ".processes"
# A heartbeat's states: running its study; stopping (its study failed, it looks for the lost
# process); left (stopped with nothing lost); done; failed (its own study died: the lost one).
RUNNING, STOPPING, LEFT, DONE, FAILED = "running", "stopping", "left", "done", "failed"
LOOKING_S = 5.0  # a stopping process names a peer silent this long (its study died with it)


# ----------------------------------------------------------------- the study's process


def supervised() -> bool:
  """True in a study's process that a watcher started."""
  return bool(os.environ.get(CHILD_ENV))


def report_identity(process: int, count: int) -> None:
  """Tells the watcher which process of how many this is (known once JAX's runtime started)."""
  if supervised():
    path = Path(os.environ[CHILD_ENV]) / "identity.json"
    _write_json(path, {"process": process, "count": count})


def report_progress() -> None:
  """Tells the watcher that the study moved on (a round done): the stall watch's clock."""
  if supervised():
    with contextlib.suppress(OSError):
      (Path(os.environ[CHILD_ENV]) / "progress").touch()


def fail_to_watcher(error: BaseException) -> None:
  """A study that failed in a collective: the traceback goes to the watcher, which prints it
  only if no process was lost. Exits at once: JAX's shutdown would wait for a lost peer."""
  text = "".join(traceback.format_exception(error))
  (Path(os.environ[CHILD_ENV]) / "traceback.txt").write_text(text)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(EXIT_PEER_FAILED)


# ----------------------------------------------------------------- heartbeat files


def _write_json(path: Path, payload: dict) -> None:
  tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  tmp.write_text(json.dumps(payload))
  os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


@dataclasses.dataclass
class Peer:
  """What this process knows of another: its heartbeat in this attempt and when (by this
  process's clock) it last changed; until it changes, the time the watch began."""

  first: dict | None  # the file as the watch first read it: maybe an earlier attempt's
  changed_at: float
  beat: dict | None = None  # None until the file differs from `first`

  def read(self, beat: dict | None, now: float) -> None:
    if beat is not None and beat != self.first and beat != self.beat:
      self.beat, self.changed_at = beat, now


def lost_peer(peers: dict[int, Peer], now: float, timeout: float) -> int | None:
  """The first process whose study failed, or whose heartbeat has been silent for `timeout`
  seconds while it ran (or since the watch began: every process of the job has passed JAX's
  start-up barrier by then, so each beats within a second or two). One stopping, finished or
  left is not lost."""
  for index, peer in sorted(peers.items()):
    state = RUNNING if peer.beat is None else peer.beat.get("state")
    if state == FAILED or (state == RUNNING and now - peer.changed_at >= timeout):
      return index
  return None


def last_checkpoint(workdir: Path) -> str:
  """The newest committed checkpoint, as the lost-process line says it. orbax writes a step in
  a temporary folder and renames it only once every process finished its part, so a folder
  named by its step alone is committed."""
  folder = workdir / "checkpoints"
  steps = (
    sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.is_dir() else []
  )
  if not steps:
    return "none yet (the rerun starts from round 0)"
  return f"round {steps[-1]} ({folder / str(steps[-1])})"


def say_rerun(reason: str, workdir: Path) -> int:
  """Prints `reason` as swapjax's one error line, with the last committed checkpoint and what
  to do; returns the status that means "rerun the same command"."""
  print(
    f"swapjax: error: {reason}; the last committed checkpoint is {last_checkpoint(workdir)}; "
    f"rerun the same command on every process to resume (exit status {EXIT_RERUN})",
    file=sys.stderr,
    flush=True,
  )
  return EXIT_RERUN


class Heartbeats:
  """This process's heartbeat file and its reading of the others' in `<workdir>/.processes/`."""

  def __init__(self, workdir: Path, process: int, count: int):
    self.folder = workdir / FOLDER
    self.process, self.count = process, count
    self.created = [p for p in (workdir, self.folder) if not p.exists()]
    self.folder.mkdir(parents=True, exist_ok=True)
    self._beat = {
      "token": uuid.uuid4().hex,
      "beat": 0,
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "state": RUNNING,
    }
    began = time.monotonic()
    self.peers = {
      i: Peer(_read_json(self._path(i)), changed_at=began) for i in range(count) if i != process
    }

  def _path(self, index: int) -> Path:
    return self.folder / f"{index}.json"

  def beat(self, state: str = RUNNING, reason: str = "") -> None:
    self._beat.update(beat=self._beat["beat"] + 1, state=state, time=time.time(), reason=reason)
    _write_json(self._path(self.process), self._beat)

  def read(self, now: float) -> None:
    for index, peer in self.peers.items():
      peer.read(_read_json(self._path(index)), now)

  def describe(self, index: int, now: float) -> str:
    beat = self.peers[index].beat or {}
    where = f" (host {beat.get('host')}, pid {beat.get('pid')})" if beat else ""
    if beat.get("state") == FAILED:
      return f"process {index} of {self.count}{where} was lost ({beat.get('reason')})"
    silent = now - self.peers[index].changed_at
    return f"process {index} of {self.count}{where} was lost (no heartbeat for {silent:.0f} s)"

  def remove_if_unused(self) -> None:
    """After bad input (exit 2): what this watcher created goes again, so nothing is left."""
    with contextlib.suppress(OSError):
      self._path(self.process).unlink()
    for path in reversed(self.created):
      with contextlib.suppress(OSError):
        path.rmdir()  # only if empty


# ----------------------------------------------------------------- the watcher


def _die_with_parent() -> None:
  """In the study's process before exec: a watcher killed with SIGKILL takes its study along
  (Linux; elsewhere the study runs on until a collective fails)."""
  with contextlib.suppress(Exception):
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class _Watch:
  child: subprocess.Popen
  talk: Path  # the study's process reports here (identity, traceback)
  workdir: Path
  timeout: float
  stall_timeout: float = 0.0  # 0: no stall watch
  hearts: Heartbeats | None = None
  began: float = dataclasses.field(default_factory=time.time)

  def identity(self) -> Heartbeats | None:
    """The heartbeat files, once the study's process knows which process it is."""
    if self.hearts is None and (found := _read_json(self.talk / "identity.json")):
      self.hearts = Heartbeats(self.workdir, found["process"], found["count"])
    return self.hearts

  def lost(self, timeout: float) -> tuple[int, float] | None:
    if self.identity() is None:
      return None
    now = time.monotonic()
    self.hearts.read(now)
    index = lost_peer(self.hearts.peers, now, timeout)
    return None if index is None else (index, now)

  def stalled_for(self) -> float | None:
    """Seconds since the study last moved on, if that is more than --stall_timeout."""
    if not self.stall_timeout:
      return None
    try:
      moved = max(self.began, (self.talk / "progress").stat().st_mtime)
    except OSError:
      moved = self.began
    idle = time.time() - moved
    return idle if idle > self.stall_timeout else None

  def say_failed(self, what: str, reason: str) -> int:
    """This process ends the job: its heartbeat says FAILED with `reason` (so the others name
    it), and one line says `what` happened to it and how to rerun."""
    if self.identity() is None:
      return say_rerun(f"this process {what} ({reason})", self.workdir)
    self.hearts.beat(FAILED, reason)
    who = f"this process, {self.hearts.process} of {self.hearts.count},"
    return say_rerun(f"{who} {what} ({reason})", self.workdir)

  def say_lost(self, found: tuple[int, float]) -> int:
    index, now = found
    self.hearts.beat(LEFT)
    return say_rerun(self.hearts.describe(index, now), self.workdir)


def _forward_signals(child: subprocess.Popen) -> None:
  """SIGTERM and SIGINT reach the study once, through its watcher (the study runs in a process
  group of its own, so a scheduler's signal to the job's process group does not reach it twice)."""

  def forward(signum, frame):
    del frame
    with contextlib.suppress(ProcessLookupError):
      child.send_signal(signum)

  for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, forward)


def supervise(argv: list[str], workdir: str, timeout: float, stall_timeout: float = 0.0) -> int:
  """Runs `python -m swapjax.main argv...` as the study's process and watches the job; returns
  this process's exit status."""
  talk = Path(tempfile.mkdtemp(prefix="swapjax-peers-"))
  child = subprocess.Popen(
    [sys.executable, "-m", "swapjax.main", *argv],
    env={**os.environ, CHILD_ENV: str(talk)},
    preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads here yet
    start_new_session=True,
  )
  _forward_signals(child)
  watch = _Watch(child, talk, Path(workdir).expanduser(), timeout, stall_timeout)
  try:
    return _watch(watch)
  finally:
    if child.poll() is None:  # the watcher itself failed: its study goes with it
      child.kill()
      child.wait()
    for name in ("identity.json", "traceback.txt", "progress"):
      with contextlib.suppress(OSError):
        (talk / name).unlink()
    with contextlib.suppress(OSError):
      talk.rmdir()


def _watch(watch: _Watch) -> int:
  while (code := watch.child.poll()) is None:
    if watch.identity() is not None:
      watch.hearts.beat()
    if found := watch.lost(watch.timeout):
      watch.child.kill()
      watch.child.wait()
      return watch.say_lost(found)
    if idle := watch.stalled_for():
      watch.child.kill()
      watch.child.wait()
      return watch.say_failed(
        "was stopped", f"its study made no progress for {idle:.0f} s (--stall_timeout)"
      )
    time.sleep(BEAT_S)
  return _after_exit(watch, code)


def _after_exit(watch: _Watch, code: int) -> int:
  """The study's process ended with `code`. Passed on as it is, except: killed by a signal
  (an out-of-memory kill), this process is the lost one; failed in a collective, a
  checkpoint's barrier or by JAX's runtime aborting it, it looks for the process that was
  lost, which the others' heartbeats tell within a few seconds."""
  hearts = watch.identity()
  if hearts is None:
    if code == -signal.SIGABRT:  # JAX's start-up gave up waiting for a peer
      joined = "not every process joined within --startup_timeout"
      return say_rerun(f"JAX's distributed runtime did not start ({joined})", watch.workdir)
    return _ended(watch, code)
  if code in (0, 2, 3, EXIT_RERUN):
    if code == 2:
      hearts.remove_if_unused()
    else:
      hearts.beat(DONE if code == 0 else LEFT)
    return _ended(watch, code)
  if code < 0 and code != -signal.SIGABRT:
    return watch.say_failed("was lost", f"its study was killed with {signal.Signals(-code).name}")
  deadline = time.monotonic() + watch.timeout + BEAT_S
  while time.monotonic() < deadline:
    hearts.beat(STOPPING)
    if found := watch.lost(min(watch.timeout, LOOKING_S)):
      return watch.say_lost(found)
    time.sleep(BEAT_S)
  if code == -signal.SIGABRT and not (watch.talk / "traceback.txt").exists():
    # JAX's runtime found a process silent that still beats here: one frozen whole (a
    # suspended VM, SIGSTOP), or a network between them lost. The checkpoints are intact.
    return watch.say_failed(
      "was stopped", "JAX's distributed runtime aborted its study, and no process was found lost"
    )
  hearts.beat(FAILED, f"its study ended with status {code}")
  return _ended(watch, code)


def _ended(watch: _Watch, code: int) -> int:
  """The study's own status, its traceback (if it left one) or its signal said in one line."""
  saved = watch.talk / "traceback.txt"
  if saved.exists():
    print(saved.read_text(), file=sys.stderr, end="", flush=True)
    return 1
  if code < 0:
    name = signal.Signals(-code).name
    print(f"swapjax: error: the study's process ended with {name}", file=sys.stderr, flush=True)
    return 1
  return code
