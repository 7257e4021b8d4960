"""Workdirs written by earlier code keep working: they resume, report and load.

`tests/old_workdirs/<name>/stopped/` are studies stopped after their first round by the code of
commit e952fde, and `swap_tiny_two_processes` by commit 8ad1fe4 on two processes, whose mesh it
resumes on (tools/record_old_workdirs.py says how they were made). Resumed with the same
command under today's code, each must end identical, row for row and membership for membership,
to the uninterrupted run recorded then (`expected.jsonl`). Like the golden files this is
bitwise, so it holds for the jax version the fixtures were recorded with (tests/golden/
versions.json); reading old workdirs (report, load) is checked on every version.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from distributed_job import Job

FIXTURES = Path(__file__).resolve().parent / "old_workdirs"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if (p / "stopped").is_dir())
RECORDED = json.loads((Path(__file__).resolve().parent / "golden" / "versions.json").read_text())
REPO = Path(__file__).resolve().parents[1]


def _copy(name: str, tmp_path: Path) -> Path:
  workdir = tmp_path / name
  shutil.copytree(FIXTURES / name / "stopped", workdir)
  return workdir


def _rows(workdir: Path) -> list[dict]:
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in r.items() if k != "time/round_s"} for r in rows]


def _main(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, "-m", "swapjax.main", *args, f"--workdir={workdir}"],
    capture_output=True,
    text=True,
    env=env,
    cwd=REPO,
    timeout=600,
  )


def _resume(args: list[str], workdir: Path, processes: Path, logs: Path) -> str:
  """Reruns the fixture's command (on as many localhost processes as it was recorded with);
  what process 0 said."""
  if not processes.exists():
    done = _main(args, workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr
  count = int(processes.read_text())
  job = Job(workdir, count, logs, study=args)
  try:
    assert job.wait() == [0] * count, [job.err(i)[-2000:] for i in range(count)]
  finally:
    job.kill()
  return job.out(0) + job.err(0)


def test_fixtures_are_present():
  assert {"swap_tiny", "swap_shared", "iris", "binary_addition", "memorize"} <= set(NAMES)
  assert (FIXTURES / "swap_tiny_two_processes" / "processes.txt").read_text().strip() == "2"


@pytest.mark.parametrize("name", NAMES)
def test_old_workdir_resumes_to_the_uninterrupted_rows(tmp_path, name):
  if jax.__version__ != RECORDED["jax"]:
    pytest.skip(f"fixtures are bitwise for jax {RECORDED['jax']}, this is {jax.__version__}")
  workdir = _copy(name, tmp_path)
  stopped_rows = _rows(workdir)
  args = json.loads((FIXTURES / name / "args.json").read_text())
  said = _resume(args, workdir, FIXTURES / name / "processes.txt", tmp_path / "logs")
  assert "resuming after round 1" in said
  rows = _rows(workdir)
  assert rows[: len(stopped_rows)] == stopped_rows  # the saved rows are kept as they were
  expected = [json.loads(x) for x in (FIXTURES / name / "expected.jsonl").read_text().splitlines()]
  assert len(rows) == len(expected)
  for got, want in zip(rows, expected, strict=True):
    changed = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not changed, f"run {want.get('run')}: {changed}"
  with (
    np.load(workdir / "membership.npz") as got,
    np.load(FIXTURES / name / "expected_membership.npz") as want,
  ):
    assert sorted(got.files) == sorted(want.files)
    for key in want.files:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_old_workdir_reports_and_loads(tmp_path, name):
  import swapjax

  workdir = _copy(name, tmp_path)
  done = subprocess.run(
    [sys.executable, "-m", "swapjax.report", str(workdir)],
    capture_output=True,
    text=True,
    cwd=REPO,
    timeout=300,
  )
  assert done.returncode == 0, done.stderr[-2000:]
  assert (workdir / "report.md").read_text().startswith("#")
  assert list((workdir / "plots").glob("*.png"))
  study = swapjax.load(workdir)
  assert study.rows() == [
    json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()
  ]
  args = json.loads((FIXTURES / name / "args.json").read_text())
  assert f"--experiment={study.experiment}" in args
