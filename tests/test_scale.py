"""Scale-out: 8 simulated CPU devices and 2 processes give the single-device metrics."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUDY = [
  "--experiment=tiny",
  "--set",
  "rounds=2",
  "--set",
  "num_seeds=2",
  "--set",
  "conditions=none,one,schedule,big",
  "--set",
  "swap_schedules=none=0:0;one=0:1;schedule=20:5,2:2,0:1;big=0:8",
]


def _env(devices: int):
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _rows(workdir: Path):
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("time/round_s")
  return rows


def _run(workdir, devices, *extra):
  result = subprocess.run(
    [sys.executable, "-m", "swapjax.main", *STUDY, f"--workdir={workdir}", *extra],
    env=_env(devices),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  return result


def _close(a, b, tol=1e-5):
  assert len(a) == len(b)
  for ra, rb in zip(a, b, strict=True):
    assert ra.keys() == rb.keys()
    for k, va in ra.items():
      vb = rb[k]
      if isinstance(va, float) and isinstance(vb, float):
        assert abs(va - vb) <= tol * max(1.0, abs(va)), (k, va, vb)
      else:
        assert va == vb, (k, va, vb)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("single")
  _run(workdir, 1)
  return _rows(workdir)


def test_eight_simulated_devices_match_one(single, tmp_path):
  result = _run(tmp_path / "w", 8)
  assert "8 device(s) on 'runs'" in result.stdout
  _close(_rows(tmp_path / "w"), single)


def test_runs_and_data_axes(single, tmp_path):
  result = _run(tmp_path / "w", 8, "--set", "mesh_runs=4", "--set", "mesh_data=2")
  assert "4 device(s) on 'runs'" in result.stdout and "2 on 'data'" in result.stdout
  _close(_rows(tmp_path / "w"), single, tol=1e-4)


def test_two_processes_match_one(single, tmp_path):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        "-m",
        "swapjax.main",
        *STUDY,
        f"--workdir={tmp_path / 'w'}",
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        f"--process_id={i}",
      ],
      env=_env(1),
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-2000:]
  assert "2 process(es)" in outs[0][0]
  _close(_rows(tmp_path / "w"), single)
