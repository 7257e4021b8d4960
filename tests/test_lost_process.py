"""A multi-process job that loses a process (kill -9) ends quickly and clearly, and its rerun
resumes exactly: two and four processes on localhost, one killed at start-up, mid-round and
while a checkpoint is being written."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
from distributed_job import BOUND_S, Job, finish, lose_one, membership, rows, study_pid, until

from swapjax import peers


def _checkpoint_being_written(workdir: Path):
  folder = workdir / "checkpoints"
  return folder.is_dir() and any("orbax-checkpoint-tmp" in p.name for p in folder.iterdir())


MOMENTS = {
  # The victim has joined JAX's runtime and builds or compiles its programs.
  "start-up": lambda job, wd, victim: "swapjax: data" in job.out(victim),
  "mid-round": lambda job, wd, victim: "round 1/2" in job.out(0),
  "checkpoint write": lambda job, wd, victim: _checkpoint_being_written(wd),
}


def _lose(tmp_path, workdir: Path, count: int, victim: int, moment: str) -> None:
  """Starts the study (a first run or a rerun), kills process `victim` at `moment`, and checks
  what the others did: status 75 within the bound, one line naming the lost process."""
  at = MOMENTS[moment]
  logs = tmp_path / moment.replace(" ", "-")
  outcome = lose_one(workdir, count, victim, lambda job: at(job, workdir, victim), logs)
  for i, (code, seconds, last) in outcome.items():
    assert code == peers.EXIT_RERUN, (moment, i, code, last)
    assert seconds < BOUND_S, (moment, i, seconds)
    assert last.startswith("swapjax: error: "), (moment, last)
    assert f"process {victim} of {count}" in last and "was lost" in last, (moment, last)
    assert "the last committed checkpoint is " in last and "rerun the same command" in last
  print(f"{moment}: survivors' exits {sorted(s for _, s, _ in outcome.values())} s after the kill")


def _finish_like_uninterrupted(tmp_path, workdir: Path, count: int, uninterrupted) -> None:
  """The rerun of the same command ends with the uninterrupted run's rows and memberships."""
  finish(workdir, count, tmp_path / "rerun")
  reference_rows, reference_membership = uninterrupted(count)
  assert rows(workdir) == reference_rows
  got = membership(workdir)
  assert got.keys() == reference_membership.keys()
  for key, value in reference_membership.items():
    np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_two_processes_survive_a_lost_one_at_each_moment(tmp_path, uninterrupted):
  """One workdir, three kills in turn: the first run loses process 1 at start-up, its rerun
  loses process 0 while a checkpoint is written, the next rerun loses process 1 mid-round;
  each time the survivor exits 75, and the last rerun ends as the uninterrupted run."""
  workdir = tmp_path / "w"
  for moment, victim in (("start-up", 1), ("checkpoint write", 0), ("mid-round", 1)):
    _lose(tmp_path, workdir, 2, victim, moment)
  _finish_like_uninterrupted(tmp_path, workdir, 2, uninterrupted)


def test_four_processes_survive_a_lost_one(tmp_path, uninterrupted):
  _lose(tmp_path, tmp_path / "w", 4, 2, "start-up")
  _finish_like_uninterrupted(tmp_path, tmp_path / "w", 4, uninterrupted)


def test_a_frozen_process_ends_the_job(tmp_path):
  """A process frozen whole (SIGSTOP to its study once it joined, as a suspended VM) keeps its
  watcher beating, but JAX's runtime misses its heartbeats and aborts the other's study: every
  process exits 75 (none exits 1), and the frozen study does not outlive its watcher."""
  # JAX's runtime misses the frozen process' beats for --heartbeat_timeout (5 s here).
  job = Job(tmp_path / "w", 2, tmp_path / "logs", ("--heartbeat_timeout=5",))
  try:
    until(lambda: "swapjax: data" in job.out(1))
    frozen = study_pid(job.procs[1])
    os.kill(frozen, signal.SIGSTOP)
    stopped_at = time.monotonic()
    codes = job.wait(timeout=BOUND_S + 60)
    seconds = time.monotonic() - stopped_at
  finally:
    job.kill()
  lines = [job.err(i).strip().splitlines()[-1] for i in range(2)]
  assert codes == [peers.EXIT_RERUN] * 2, lines
  assert seconds < 2 * BOUND_S, seconds
  assert (
    "this process, 0 of 2, was stopped (JAX's distributed runtime aborted its study" in lines[0]
  )
  assert "process 0 of 2" in lines[1] and "was lost" in lines[1], lines[1]
  for line in lines:
    assert line.startswith("swapjax: error: ") and "rerun the same command" in line, line
  assert not Path(f"/proc/{frozen}").exists()


def test_the_stall_watch_counts_from_the_last_progress(tmp_path, monkeypatch):
  """--stall_timeout: a study that reported no progress (a round, its start-up) for longer is
  stalled; report_progress, called by the runner each round, resets the clock."""
  monkeypatch.setenv(peers.CHILD_ENV, str(tmp_path))
  watch = peers._Watch(None, tmp_path, tmp_path / "w", timeout=10, stall_timeout=5)
  assert watch.stalled_for() is None
  watch.began -= 60
  assert 59 < watch.stalled_for() < 61
  peers.report_progress()
  assert watch.stalled_for() is None
  assert peers._Watch(None, tmp_path, tmp_path / "w", 10).stalled_for() is None  # off: 0


def test_a_process_lost_before_it_joined_ends_the_others_at_the_startup_timeout(tmp_path):
  outcome = lose_one(
    tmp_path / "w", 2, 1, lambda job: True, tmp_path / "logs", ("--startup_timeout=5",)
  )
  code, seconds, last = outcome[0]
  assert code == peers.EXIT_RERUN, last
  assert seconds < 5 + 15, seconds
  assert last.startswith("swapjax: error: JAX's distributed runtime did not start"), last
  assert "last committed checkpoint is none yet" in last


def test_a_lost_process_is_the_silent_or_failed_one():
  def peer(state, changed_at):
    found = peers.Peer(first=None, changed_at=0.0)
    found.read({"token": "t", "state": state}, changed_at)
    return found

  assert peers.lost_peer({1: peer("running", 0.0)}, now=9.0, timeout=10) is None
  assert peers.lost_peer({1: peer("running", 0.0)}, now=10.0, timeout=10) == 1
  assert peers.lost_peer({1: peer("stopping", 0.0), 2: peer("left", 0.0)}, 99.0, 10) is None
  assert peers.lost_peer({1: peer("done", 0.0), 3: peer("failed", 98.0)}, 99.0, 10) == 3
  # A file left by an earlier attempt counts as silence from the moment the watch began.
  old = peers.Peer(first={"token": "old", "state": "failed"}, changed_at=5.0)
  old.read({"token": "old", "state": "failed"}, 9.0)
  assert old.beat is None
  assert peers.lost_peer({1: old}, now=14.0, timeout=10) is None
  assert peers.lost_peer({1: old}, now=15.0, timeout=10) == 1
  old.read({"token": "new", "state": "running"}, 15.0)
  assert peers.lost_peer({1: old}, now=16.0, timeout=10) is None


def test_the_last_committed_checkpoint_skips_unfinished_writes(tmp_path):
  assert peers.last_checkpoint(tmp_path).startswith("none yet")
  (tmp_path / "checkpoints" / "3").mkdir(parents=True)
  (tmp_path / "checkpoints" / "4.orbax-checkpoint-tmp-17").mkdir()
  assert peers.last_checkpoint(tmp_path) == f"round 3 ({tmp_path / 'checkpoints' / '3'})"


# Process 1's study hangs after its first round with every thread alive (its JAX runtime keeps
# beating, so nothing aborts it): the stall watch is what ends the job.
HANG_AFTER_ROUND_1 = """
import os, sys
if os.environ.get("SWAPJAX_PEERS_DIR") and "--process_id=1" in sys.argv:
  import time
  import swapjax.peers as peers
  reported, calls = peers.report_progress, []
  def report_progress():
    calls.append(1)
    if len(calls) == 2:  # after the compile, then after round 1
      time.sleep(3600)
    reported()
  peers.report_progress = report_progress
"""


def test_a_hung_study_is_stopped_by_the_stall_watch(tmp_path, uninterrupted):
  """A study hung with its threads alive (a deadlock, a collective that never returns) keeps
  JAX's heartbeats going; with --stall_timeout both processes exit 75 soon after the timeout,
  and the rerun ends as the uninterrupted run."""
  hook = tmp_path / "hook"
  hook.mkdir()
  (hook / "sitecustomize.py").write_text(HANG_AFTER_ROUND_1)
  stall = 20  # longer than the start-up to the first progress (its compile), even uncached
  job = Job(tmp_path / "w", 2, tmp_path / "logs", (f"--stall_timeout={stall}",), first_path=hook)
  try:
    until(lambda: "round 1/2" in job.out(0))  # process 0 prints the progress lines
    hung_at = time.monotonic()
    codes = job.wait(timeout=stall + BOUND_S + 60)
    seconds = time.monotonic() - hung_at
  finally:
    job.kill()
  lines = [job.err(i).strip().splitlines()[-1] for i in range(2)]
  assert codes == [peers.EXIT_RERUN] * 2, lines
  assert seconds < stall + BOUND_S, seconds
  assert "this process, 1 of 2, was stopped (its study made no progress for" in lines[1], lines
  assert "process 1 of 2" in lines[0], lines
  for line in lines:
    assert line.startswith("swapjax: error: ") and "rerun the same command" in line, line
  _finish_like_uninterrupted(tmp_path, tmp_path / "w", 2, uninterrupted)
