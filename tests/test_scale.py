"""Scale-out: 8 simulated CPU devices and 2 processes give the single-device metrics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from distributed_job import SCALE_STUDY, Job

from swapjax import mesh as meshlib
from swapjax import registry
from swapjax.cpu import process as cpu_process

REPO = Path(__file__).resolve().parents[1]
STUDY = SCALE_STUDY


BITWISE_ON_JAX_0_10 = pytest.mark.xfail(
  not jax.__version__.startswith("0.10."),
  reason="measured on jax 0.12.0.1 (Python 3.12): 1 and 8 simulated CPU devices differ in the "
  "last digits of losses even with runs_per_device=1 and single-threaded Eigen; bitwise on "
  "jax 0.10 (CI's) only, cause not yet found",
  strict=False,
)


def _env(devices: int | None):
  """The subprocess' environment; `devices`: simulated CPU devices forced in XLA_FLAGS, or
  None for none forced (the study's own `cpu_devices` decides)."""
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  if devices is not None:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _rows(workdir: Path):
  rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("time/round_s")
  return rows


def _run(workdir, devices, *extra, study=STUDY, env=None, timeout=600, check=True):
  result = subprocess.run(
    [sys.executable, "-m", "swapjax.main", *study, f"--workdir={workdir}", *extra],
    env={**_env(devices), **(env or {})},
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=timeout,
  )
  assert result.returncode == 0 or not check, result.stderr[-2000:]
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


def _membership(workdir: Path):
  with np.load(workdir / "membership.npz") as f:
    return {k: f[k] for k in f.files}


def _same_membership(workdir: Path, reference: dict):
  """Who trained on what: every index and move count equal, not just the metrics."""
  got = _membership(workdir)
  assert got.keys() == reference.keys()
  for key, value in reference.items():
    np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.fixture(scope="module")
def single_dir(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("single")
  _run(workdir, 1)
  return workdir


@pytest.fixture(scope="module")
def single(single_dir):
  return _rows(single_dir)


@pytest.fixture(scope="module")
def single_membership(single_dir):
  return _membership(single_dir)


@BITWISE_ON_JAX_0_10
def test_eight_simulated_devices_equal_one_bitwise(single_dir, single, single_membership, tmp_path):
  """Guards results that depend on the device count: with no flags the chunks of runs keep
  the width one device gives them (recorded in config.json), so every metric and membership
  on 8 devices equals the single device's bit for bit."""
  result = _run(tmp_path / "w", 8)
  assert "round-robin on 8 devices" in result.stdout
  assert _rows(tmp_path / "w") == single
  _same_membership(tmp_path / "w", single_membership)
  recorded = [json.loads((d / "config.json").read_text()) for d in (single_dir, tmp_path / "w")]
  assert recorded[0]["runs_per_call"] == recorded[1]["runs_per_call"] == [8]


@BITWISE_ON_JAX_0_10
def test_a_resume_keeps_the_recorded_chunks(single, tmp_path):
  """A study started on one device and resumed on eight runs the recorded chunks there."""
  workdir = tmp_path / "w"
  assert _run(workdir, 1, "--stop_after=1", check=False).returncode == 75
  assert json.loads((workdir / "config.json").read_text())["runs_per_call"] == [8]
  _run(workdir, 8)
  assert _rows(workdir) == single


def test_runs_per_call_follows_the_device_kind_not_the_count():
  """The default chunk: every run that fits on a CPU; on an accelerator no more than make a
  call's step about memory.CALL_FLOPS; always a divisor of the runs."""
  from swapjax import memory, study

  small = (1 << 20, 0)  # 1 MiB per run: memory never limits here
  assert study.runs_per_call(60, small, 5e9, kind="cpu") == 60
  gpu = study.runs_per_call(60, small, 5e9, kind="gpu")
  assert gpu == max(d for d in range(1, 61) if 60 % d == 0 and d * 5e9 <= memory.CALL_FLOPS["gpu"])
  assert 1 < gpu < 60 and 60 % gpu == 0
  assert study.runs_per_call(60, small, 1e3, kind="tpu") == 60  # tiny networks: one call
  assert study.runs_per_call(7, small, 1e13, kind="gpu") == 1
  budget = memory.device_budget()
  assert study.runs_per_call(60, (budget // 4, 0), 1.0, kind="cpu") == 4
  assert study.runs_per_call(60, (budget // 7, 0), 1.0, kind="cpu") == 6  # 7 fit: divisor 6


def test_runs_and_data_axes(single, single_membership, tmp_path):
  result = _run(tmp_path / "w", 8, "--set", "mesh_runs=4", "--set", "mesh_data=2")
  assert "4 device(s) on 'runs'" in result.stdout and "2 on 'data'" in result.stdout
  _close(_rows(tmp_path / "w"), single, tol=1e-4)
  _same_membership(tmp_path / "w", single_membership)


ONE_RUN_CHUNKS = ("--set", "runs_per_device=1")


@pytest.fixture(scope="module")
def one_run_chunks(tmp_path_factory):
  """The study in one-run chunks on one device: its workdir."""
  workdir = tmp_path_factory.mktemp("one_run_chunks")
  _run(workdir, 1, *ONE_RUN_CHUNKS)
  return workdir


@BITWISE_ON_JAX_0_10
def test_runs_per_device_is_bitwise_neutral(one_run_chunks, tmp_path):
  """Guards results that depend on the device count: with `runs_per_device=1` every device
  runs the same one-run program, so 1 and 8 devices give every metric and membership
  bitwise equal (without it, XLA compiles another program per device count and near ties
  can flip)."""
  result = _run(tmp_path / "eight", 8, *ONE_RUN_CHUNKS)
  assert "on each of 8 device(s)" in result.stdout
  one, eight = _rows(one_run_chunks), _rows(tmp_path / "eight")
  assert len(one) == len(eight) == 2 * 8
  assert one == eight
  _same_membership(tmp_path / "eight", _membership(one_run_chunks))


@pytest.mark.parametrize(
  ("num_runs", "mesh_runs", "mesh_data", "needle"),
  [
    (8, 0, 3, "mesh_data=3 does not divide the 1 devices"),
    (8, 3, 1, "mesh_runs=3 does not divide the 8 runs"),
    (8, 2, 1, "mesh 2x1 needs more than the 1 devices"),
  ],
)
def test_mesh_errors_are_one_line(num_runs, mesh_runs, mesh_data, needle):
  """Guards the refusals of a mesh that does not fit the devices or the runs."""
  with pytest.raises(meshlib.MeshError) as e:
    meshlib.make_mesh(num_runs, mesh_runs, mesh_data)
  assert str(e.value) == needle


def test_mesh_error_on_the_command_line_is_exit_2(tmp_path):
  """8 devices, 8 runs, mesh_runs=3: one line on stderr, exit 2, nothing written."""
  result = subprocess.run(
    [sys.executable, "-m", "swapjax.main", *STUDY, f"--workdir={tmp_path / 'w'}"]
    + ["--set", "mesh_runs=3"],
    env=_env(8),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 2, result.stderr[-2000:]
  assert "mesh_runs=3 does not divide the 8 runs" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


@BITWISE_ON_JAX_0_10
def test_two_processes_match_one_bitwise(single, single_membership, uninterrupted):
  """The study on two processes (JAX's distributed runtime on localhost), no flags: the
  chunks keep the width one process gives them, so every row and membership equals the
  single process' bit for bit."""
  rows, membership = uninterrupted(2)
  assert rows == single
  assert membership.keys() == single_membership.keys()
  for key, value in single_membership.items():
    np.testing.assert_array_equal(membership[key], value, err_msg=key)


@BITWISE_ON_JAX_0_10
def test_chunks_split_over_two_processes_resume_bitwise(one_run_chunks, tmp_path):
  """One-run chunks (`runs_per_device=1`), four on each of two processes, each process
  running its own and the two exchanging metrics and states: stopped after round 1 (both
  exit 75, a checkpoint of both processes' chunks) and rerun, the study equals one process'
  bit for bit, memberships included."""
  chunked = ONE_RUN_CHUNKS
  workdir = tmp_path / "two"
  stopped = Job(workdir, 2, tmp_path / "logs", (*chunked, "--stop_after=1"))
  try:
    assert stopped.wait() == [75, 75], [stopped.err(i)[-2000:] for i in range(2)]
  finally:
    stopped.kill()
  assert "compiled the round of 1 runs" in stopped.out(1)  # process 1 ran chunks of its own
  assert json.loads((workdir / "config.json").read_text())["placement"] == "chunks"
  rerun = Job(workdir, 2, tmp_path / "rerun", chunked)
  try:
    assert rerun.wait() == [0, 0], [rerun.err(i)[-2000:] for i in range(2)]
  finally:
    rerun.kill()
  assert "resuming after round 1" in rerun.out(0)
  assert _rows(workdir) == _rows(one_run_chunks)
  _same_membership(workdir, _membership(one_run_chunks))


def test_the_command_line_sets_swapjax_xla_flags_for_a_cnn(single_dir):
  """A CNN study's process runs with swapjax's XLA:CPU flags beside the ones it was given."""
  flags = json.loads((single_dir / "config.json").read_text())["xla_flags"].split()
  assert flags == ["--xla_force_host_platform_device_count=1", *cpu_process.CPU_XLA_FLAGS]


def test_xla_flags_are_added_unless_named(monkeypatch):
  flag = "--xla_cpu_enable_concurrency_optimized_scheduler"
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert cpu_process.set_xla_flags() == list(cpu_process.CPU_XLA_FLAGS)
  assert os.environ["XLA_FLAGS"] == f"{flag}=false"
  assert cpu_process.set_xla_flags() == []  # named now: unchanged
  monkeypatch.setenv("XLA_FLAGS", f"--xla_force_host_platform_device_count=2 {flag}=true")
  assert cpu_process.set_xla_flags() == []  # the user's choice wins
  assert os.environ["XLA_FLAGS"].endswith(f"{flag}=true")
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  assert cpu_process.set_xla_flags() == [f"{flag}=false"]
  assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {flag}=false"
  assert (
    cpu_process.study_xla_flags(registry.get_config("memorize_mnist")) == cpu_process.CPU_XLA_FLAGS
  )
  assert cpu_process.study_xla_flags(registry.get_config("binary_addition")) == ()


def test_cpu_devices_split_gives_the_single_device_metrics(tmp_path):
  """`cpu_devices=2` (the host split into two XLA devices, runs in equal chunks on them at
  once) computes what one device computes: every metric to float tolerance, per run."""
  study = [
    "--experiment=binary_addition",
    *("--set", "groups=base,recurrent_dropout", "--set", "num_seeds=4", "--set", "rounds=2"),
    *("--set", "pool_size=200", "--set", "holdout_size=100"),
  ]
  cache = {"SWAPJAX_COMPILATION_CACHE": str(tmp_path / "cache")}  # fresh: compiled here
  out = {
    devices: _run(
      tmp_path / str(devices), None, "--set", f"cpu_devices={devices}", study=study, env=cache
    ).stdout
    for devices in (1, 2)
  }
  assert "equal chunks on 2 CPU devices (cpu_devices)" in out[2]
  # No convolutions: the command line leaves XLA's flags as they were (none here).
  assert json.loads((tmp_path / "1" / "config.json").read_text())["xla_flags"] == ""
  assert "CPU devices" not in out[1]
  # Each program is compiled for each of the two devices (a fresh cache).
  compiled = [x for x in out[2].splitlines() if "compiled the round of 2 runs x 1 members" in x]
  for group in ("base", "recurrent_dropout"):
    for device in ("cpu:0", "cpu:1"):
      assert any(f"({group}) in" in x and f"for {device};" in x for x in compiled), (group, device)
  assert "swapjax: 4 compilations took" in out[2]
  timing = json.loads((tmp_path / "2" / "timing.json").read_text())
  assert [p["runs_per_call"] for p in timing["programs"]] == [2, 2]
  one, two = _rows(tmp_path / "1"), _rows(tmp_path / "2")
  assert len(one) == 2 * 8
  _close(two, one)


def test_a_mesh_over_the_split_host_starts(tmp_path):
  """The host split into 2 devices with the runs on a mesh (`mesh_runs=2`: one partitioned
  program instead of chunks) hung at start: both partitions' orthogonal initialisers ran their
  QR at once (study.init_states). Now it starts, and computes what one device computes."""
  study = [
    "--experiment=binary_addition",
    *("--set", "groups=units128", "--set", "num_seeds=4", "--set", "rounds=1"),
    *("--set", "pool_size=200", "--set", "holdout_size=100"),
  ]
  one = _run(tmp_path / "one", None, "--set", "cpu_devices=1", study=study)
  mesh = _run(tmp_path / "mesh", None, "--set", "mesh_runs=2", study=study, timeout=120)
  assert "mesh: 2 device(s) on 'runs'" in mesh.stdout and "device(s) on 'runs'" not in one.stdout
  _close(_rows(tmp_path / "mesh"), _rows(tmp_path / "one"))
