"""A distributed study on localhost, its processes' output in files: the lost-process tests'
and tools/lost_process_trials.py's launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 10  # --heartbeat_timeout in these tests
BOUND_S = TIMEOUT_S + 15  # a survivor's exit after the kill, at most (a loaded 2-core machine)
# The tiny swap study with four conditions and two seeds: 8 runs, the scale-out tests' study.
SWAP_SETTINGS = [
  "--set",
  "num_seeds=2",
  "--set",
  "conditions=none,one,schedule,big",
  "--set",
  "swap_schedules=none=0:0;one=0:1;schedule=20:5,2:2,0:1;big=0:8",
]
# The study of the scale-out tests (2 rounds: a swap after round 1, a checkpoint written while
# round 2 trains).
SCALE_STUDY = ["--experiment=tiny", "--set", "rounds=2", *SWAP_SETTINGS]
STUDY = [*SCALE_STUDY, f"--heartbeat_timeout={TIMEOUT_S}", "--startup_timeout=60"]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Job:
  """`count` processes of one distributed study, each with its output in files."""

  def __init__(
    self,
    workdir: Path,
    count: int,
    logs: Path,
    extra: tuple[str, ...] = (),
    first_path=None,
    study=tuple(STUDY),
  ):
    """`first_path`: a folder put before the repository on PYTHONPATH (a test's sitecustomize);
    `study`: the command's arguments before the workdir and the distributed flags."""
    path = os.pathsep.join(str(p) for p in (first_path, REPO) if p)
    env = dict(os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    port, self.logs, self.count = free_port(), logs, count
    logs.mkdir(parents=True, exist_ok=True)
    self.procs = []
    for i in range(count):
      command = [
        sys.executable,
        "-m",
        "swapjax.main",
        *study,
        f"--workdir={workdir}",
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={count}",
        f"--process_id={i}",
        *extra,
      ]
      out, err = (open(logs / f"{i}.{k}", "w") for k in ("out", "err"))  # noqa: SIM115
      self.procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=err))

  def out(self, i: int) -> str:
    return (self.logs / f"{i}.out").read_text()

  def err(self, i: int) -> str:
    return (self.logs / f"{i}.err").read_text()

  def wait(self, timeout: float = 600) -> list[int]:
    return [p.wait(timeout=timeout) for p in self.procs]

  def kill(self) -> None:
    for p in self.procs:
      if p.poll() is None:
        p.kill()
        p.wait()


def study_pid(watcher: subprocess.Popen) -> int:
  """The pid of the study process a `--distributed` command's watcher started (Linux)."""
  children = Path(f"/proc/{watcher.pid}/task/{watcher.pid}/children").read_text().split()
  assert len(children) == 1, children
  return int(children[0])


def until(predicate, timeout: float = 300, every: float = 0.002):
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if found := predicate():
      return found
    time.sleep(every)
  raise AssertionError("the moment to kill never came")


def rows(workdir: Path):
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("time/round_s")
  return rows


def membership(workdir: Path):
  with np.load(workdir / "membership.npz") as f:
    return {k: f[k] for k in f.files}


def finish(workdir: Path, count: int, logs: Path, extra: tuple[str, ...] = ()) -> None:
  """Runs the study to its end on `count` processes (a first run or a rerun)."""
  job = Job(workdir, count, logs, extra)
  try:
    codes = job.wait()
  finally:
    job.kill()
  assert codes == [0] * count, [job.err(i)[-2000:] for i in range(count)]


def uninterrupted_runs(tmp_path_factory):
  """get(count) -> (rows, membership) of the study run without a kill on `count` processes,
  each count run once per pytest run (the `uninterrupted` fixture in conftest.py)."""
  found = {}

  def get(count: int):
    if count not in found:
      workdir = tmp_path_factory.mktemp(f"uninterrupted{count}")
      finish(workdir / "w", count, workdir / "logs")
      said = (workdir / "logs" / "0.out").read_text()
      assert f"in {count} process(es)" in said, said[-2000:]  # JAX's runtime joined them all
      found[count] = (rows(workdir / "w"), membership(workdir / "w"))
    return found[count]

  return get


def lose_one(workdir: Path, count: int, victim: int, moment, logs: Path, extra=()) -> dict:
  """Starts the study on `count` processes, kills process `victim` with SIGKILL once
  `moment(job)` is true, and waits for the others: {process: (exit status, seconds after the
  kill, last line of its stderr)}."""
  job = Job(workdir, count, logs, extra)
  outcome = {}
  try:
    until(lambda: moment(job))
    job.procs[victim].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    for i in (i for i in range(count) if i != victim):
      code = job.procs[i].wait(timeout=BOUND_S + 60)
      lines = job.err(i).strip().splitlines()
      outcome[i] = (code, time.monotonic() - killed_at, lines[-1] if lines else "")
  finally:
    job.kill()
  return outcome
