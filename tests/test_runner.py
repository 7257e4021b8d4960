"""The workdir contract end to end: files, resume equality, refusals, CLI errors, kills."""

import collections
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_rows, tiny_swap_config

from swapjax import health, progress, runner, workdir

REPO = Path(__file__).resolve().parents[1]


def _rows(path):
  rows = [json.loads(line) for line in (Path(path) / "metrics.jsonl").read_text().splitlines()]
  for r in rows:
    r.pop("time/round_s")
  return rows


def _run(tmp, name, **changes):
  cfg = tiny_swap_config(**changes)
  return runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp / name), progress=False))


def test_contract_and_resume_equality(tmp_path):
  _run(tmp_path, "full", rounds=3)
  full = tmp_path / "full"
  for name in [
    "config.json",
    "metrics.jsonl",
    "membership.npz",
    "report.md",
    "timing.json",
    "plots/accuracy.png",
    "plots/loss.png",
    "plots/honest_accuracy.png",
  ]:
    assert (full / name).exists(), name
  assert sorted(p.name for p in (full / "checkpoints").iterdir()) == ["1", "2", "3"]
  rows = _rows(full)
  assert _run_round_keys(rows) == {(r, n): 1 for r in range(4) for n in (1, 2, 3)}
  for key in ["AtoB/test_unseen_acc", "BtoA/holdout_acc", "swap/k", "swap/moved", "condition"]:
    assert key in rows[0]
  # The run axes the study uses, not every axis the engine knows.
  assert json.loads((full / "config.json").read_text())["row_axes"] == [
    "condition",
    "warmup",
    "learning_rate",
    "seed",
  ]
  assert not {"leaky_slope", "target_noise", "augment_rotation", "dropout_rate"} & set(rows[0])
  membership = np.load(full / "membership.npz")
  assert membership["a_idx"].shape == (4, 32) and membership["move_count"].shape == (4, 64)
  report = (full / "report.md").read_text()
  assert "condition=schedule" in report and "±" in report
  assert "Protocol and deviations from the report" in report

  cfg = tiny_swap_config(rounds=3)
  opts = runner.RunOptions(workdir=str(tmp_path / "split"), progress=False, stop_after=1)
  with pytest.raises(runner.StudyStopped) as stopped:
    runner.run(cfg, "tiny", opts)
  assert stopped.value.code == runner.EXIT_INTERRUPTED and "resume" in str(stopped.value)
  # Simulate a crash after the metrics of round 2 were written but before its checkpoint.
  with open(tmp_path / "split" / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"round": 2, "run": 0, "junk": True}) + '\n{"round": 2, "ru')
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "split"), progress=False))
  assert _rows(tmp_path / "split") == rows
  a, b = np.load(full / "membership.npz"), np.load(tmp_path / "split" / "membership.npz")
  for key in a.files:
    np.testing.assert_array_equal(a[key], b[key])


def test_relative_workdir_checkpoints_and_resumes(tmp_path, monkeypatch):
  """The default --workdir is relative; orbax writes arrays only to absolute paths."""
  monkeypatch.chdir(tmp_path)
  cfg = tiny_swap_config(rounds=2, num_seeds=1)
  opts = runner.RunOptions(workdir="runs/tiny", progress=False, stop_after=1)
  with pytest.raises(runner.StudyStopped):
    runner.run(cfg, "tiny", opts)
  assert sorted(p.name for p in (tmp_path / "runs/tiny/checkpoints").iterdir()) == ["1"]
  runner.run(cfg, "tiny", runner.RunOptions(workdir="runs/tiny", progress=False))
  assert sorted(p.name for p in (tmp_path / "runs/tiny/checkpoints").iterdir()) == ["1", "2"]
  assert _run_round_keys(_rows(tmp_path / "runs/tiny")) == {
    (0, 1): 1,
    (1, 1): 1,
    (0, 2): 1,
    (1, 2): 1,
  }


def test_more_rounds_continue_the_study_as_one_longer_run(tmp_path, capsys):
  _run(tmp_path, "full", rounds=3, num_seeds=1)
  _run(tmp_path, "grown", rounds=2, num_seeds=1)
  _run(tmp_path, "grown", rounds=3, num_seeds=1)  # the same workdir, one round more
  assert "rounds 2 -> 3: the study goes on" in capsys.readouterr().out
  assert _rows(tmp_path / "grown") == _rows(tmp_path / "full")
  stored = json.loads((tmp_path / "grown" / "config.json").read_text())
  assert stored["config"]["rounds"] == 3  # and the next resume compares against 3
  with pytest.raises(workdir.WorkdirError, match=r"holds 3 completed rounds; rounds=2 is fewer"):
    _run(tmp_path, "grown", rounds=2, num_seeds=1)
  assert _rows(tmp_path / "grown") == _rows(tmp_path / "full")  # nothing dropped


def test_damaged_newest_checkpoint_falls_back(tmp_path):
  _run(tmp_path, "w", rounds=2, num_seeds=1)
  wd = tmp_path / "w"
  reference = _rows(wd)
  for p in (wd / "checkpoints" / "2").rglob("*"):
    if p.is_file() and p.stat().st_size > 100:
      p.write_bytes(p.read_bytes()[:50])  # truncate every data file of the newest checkpoint
  cfg = tiny_swap_config(rounds=2, num_seeds=1)
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(wd), progress=False))
  assert _rows(wd) == reference
  assert any((wd / "damaged-checkpoints").iterdir())  # set aside, not deleted
  assert sorted(p.name for p in (wd / "checkpoints").iterdir()) == ["1", "2"]


def test_changed_config_is_refused_and_restart_keeps_files(tmp_path):
  _run(tmp_path, "w", rounds=1, num_seeds=1)
  with pytest.raises(workdir.WorkdirError, match=r"num_seeds: 1 -> 2.*--restart"):
    _run(tmp_path, "w", rounds=1, num_seeds=2)
  cfg = tiny_swap_config(rounds=1, num_seeds=2)
  runner.run(
    cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "w"), restart=True, progress=False)
  )
  previous = [p for p in (tmp_path / "w").iterdir() if p.name.startswith("previous-")]
  assert len(previous) == 1 and (previous[0] / "metrics.jsonl").exists()


def test_a_study_stopped_before_its_config_json_starts_again(tmp_path):
  """Killed after checkpoints/ was made and before config.json: the rerun starts; a workdir
  holding a checkpoint and no config.json is still refused."""
  (tmp_path / "w" / "checkpoints").mkdir(parents=True)
  _run(tmp_path, "w", rounds=1, num_seeds=1)
  assert len(_rows(tmp_path / "w")) == 2
  (tmp_path / "v" / "checkpoints" / "1").mkdir(parents=True)
  with pytest.raises(workdir.WorkdirError, match="holds metrics or checkpoints but no config"):
    _run(tmp_path, "v", rounds=1, num_seeds=1)


def test_second_process_is_refused_by_the_lock(tmp_path):
  wd = workdir.Workdir(str(tmp_path / "w"))
  wd.prepare()
  wd.lock()
  with pytest.raises(workdir.WorkdirError, match="in use by swapjax pid"):
    _run(tmp_path, "w")
  wd.unlock()


def test_unwritable_workdir(tmp_path):
  (tmp_path / "file").write_text("x")
  with pytest.raises(workdir.WorkdirError, match="not writable"):
    _run(tmp_path, "file/sub")


def _cli(*args, timeout=300, **env_vars):
  env = dict(os.environ, PYTHONPATH=str(REPO), **env_vars)
  return subprocess.run(
    [sys.executable, "-m", "swapjax.main", *args],
    capture_output=True,
    text=True,
    cwd=REPO,
    env=env,
    timeout=timeout,
  )


@pytest.mark.parametrize(
  ("args", "needle"),
  [
    (["--experiment=nope"], "value should be one of"),
    (["--experiment=tiny", "--set", "rounds=x"], "expected an integer"),
    (["--experiment=tiny", "--set", "unknown=1"], "unknown config key"),
    (["--experiment=tiny", "--set", "conditions=none,zzz"], "not a swap schedule"),
    (["--experiment=swap_cifar10", "--data_dir=/nonexistent"], "no such directory"),
    (["--experiment=fashion_dropout", "--set", "dropout_rate=0,1.0"], "must be in [0, 1)"),
    (["--experiment=memorize_mnist", "--set", "dropout_rate=0.5"], "a condition on no axis"),
    (["--experiment=fashion_dropout", "--set", "train_fraction=1e-6"], "no training sample"),
    (["--experiment=tiny", "--set", "model=resnet"], "allowed values"),
    (["--experiment=cifar10_arch", "--set", "groups=vgg_like,nope"], "not a variant"),
    (["--experiment=binary_addition", "--set", "augment_flip=1"], "no images to augment"),
    (["--experiment=tiny", "--set", "layers=conv:8,gru:4"], "unknown layer 'gru:4'"),
  ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, needle):
  result = _cli(*args, f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2, result.stderr
  assert needle in result.stderr and "Traceback" not in result.stderr
  assert not (tmp_path / "w").exists()  # nothing written
  errors = [line for line in result.stderr.splitlines() if "error" in line]
  assert len(errors) == 1


def test_cli_list():
  result = _cli("--list")
  assert result.returncode == 0 and "memorize_mnist" in result.stdout


def _spawn_tiny(workdir, output, study=("--experiment=tiny",)):
  """A study (`tiny` by default) as a background process (to be killed or signalled)."""
  env = dict(os.environ, PYTHONPATH=str(REPO))
  command = [sys.executable, "-m", "swapjax.main", *study, f"--workdir={workdir}"]
  return subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output, text=True)


# fashion_dropout shrunk to synthetic data: two compiled programs (train fractions), two
# dropout rates sharing each, 4 runs, 4 epochs; one run per call, so each program runs as two
# chunks whose states are joined in the checkpoint.
SEVERAL_PROGRAMS = (
  "--experiment=fashion_dropout",
  *("--set", "runs_per_device=1"),
  *("--set", "source=synthetic", "--set", "pool_size=80", "--set", "test_from_train=16"),
  *("--set", "holdout_size=16", "--set", "rounds=4", "--set", "num_seeds=1"),
  *("--set", "batch_size=8", "--set", "eval_batch_size=16", "--set", "test_every=2"),
)


# cifar10_arch shrunk to synthetic data: two of its groups (a traced leaky slope; flips on the
# device from the run's keys), each its own program, 4 epochs.
CIFAR10_ARCH = (
  "--experiment=cifar10_arch",
  *("--set", "groups=vgg_like_leaky,dropout_gap_flip"),
  *("--set", "source=synthetic", "--set", "pool_size=64", "--set", "holdout_size=16"),
  *("--set", "rounds=4", "--set", "num_seeds=1", "--set", "batch_size=8"),
  *("--set", "eval_batch_size=16", "--set", "test_every=2"),
)


def _wait_for_rows(path, n, proc, limit=240):
  """Waits until `path` has `n` lines; fails loudly if the process ends first or time runs out."""
  start = time.time()
  while time.time() - start < limit:
    if path.exists() and len(path.read_text().splitlines()) >= n:
      return
    if proc.poll() is not None:
      pytest.fail(f"the study ended (exit {proc.returncode}) before {n} rows of {path}")
    time.sleep(0.02)
  proc.kill()
  pytest.fail(f"{path} did not reach {n} rows in {limit} s")


def _run_round_keys(rows):
  return collections.Counter((r["run"], r.get("round", r.get("epoch"))) for r in rows)


@pytest.mark.parametrize(
  "study, kills",
  [(("--experiment=tiny",), (1, 5)), (SEVERAL_PROGRAMS, (1, 5)), (CIFAR10_ARCH, (5,))],
  ids=["tiny", "programs", "cifar10_arch"],
)
def test_kill_9_and_rerun_matches_uninterrupted(tmp_path, study, kills):
  """Guards exact resume after kill -9 at any moment: the killed process really died by
  SIGKILL (exit -9) before finishing, a leftover `*.orbax-checkpoint-tmp` folder of an
  interrupted save does not break the rerun, and the resumed metrics.jsonl has each
  (run, round) exactly once and equals the uninterrupted run row for row."""
  reference = _cli(*study, f"--workdir={tmp_path / 'ref'}")
  assert reference.returncode == 0, reference.stderr
  target = tmp_path / "killed"
  for rows_before_kill in kills:  # kill inside round 1, then inside round 2 or 3
    proc = _spawn_tiny(target, subprocess.DEVNULL, study)
    _wait_for_rows(target / "metrics.jsonl", rows_before_kill, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
  assert not (target / "report.md").exists()  # killed before the end, not after
  # What a SIGKILL during an orbax save leaves behind: an uncommitted temporary step folder.
  leftover = target / "checkpoints" / "3.orbax-checkpoint-tmp-1764000000000000"
  leftover.mkdir(parents=True)
  (leftover / "partial").write_bytes(b"\0" * 64)
  final = _cli(*study, f"--workdir={target}")
  assert final.returncode == 0, final.stderr
  rows, reference_rows = _rows(target), _rows(tmp_path / "ref")
  assert set(_run_round_keys(rows).values()) == {1}
  assert _run_round_keys(rows) == _run_round_keys(reference_rows)
  assert rows == reference_rows
  a, b = np.load(tmp_path / "ref" / "membership.npz"), np.load(target / "membership.npz")
  assert a.files == b.files
  for key in a.files:
    np.testing.assert_array_equal(a[key], b[key])
  steps = sorted(int(p.name) for p in (target / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [2, 3, 4]  # the newest three, round 3 rewritten after the leftover


# The tiny study with its writes of round 2 held: once round 2's rows are in metrics.jsonl,
# the process notes how many rounds it has dispatched and sleeps before round 2's checkpoint.
# The note is written atomically, so that the marker never exists empty (the test kills the
# process as soon as it sees the marker).
HOLD_AFTER_ROWS_OF_ROUND_2 = """
import json, sys, time
from pathlib import Path
from swapjax import main, study, workdir
marker = Path(sys.argv.pop(1))
dispatched, step, append = [], study.step_round, workdir.Workdir.append_metrics_text
def counting(built, state, test_due=False):
  dispatched.append(1)
  return step(built, state, test_due)
def holding(self, text, **options):
  append(self, text, **options)
  text = text if isinstance(text, str) else bytes(text).decode()
  if text and json.loads(text.splitlines()[0]).get("round") == 2:
    workdir.atomic_write_text(marker, str(len(dispatched)))
    time.sleep(600)
study.step_round, workdir.Workdir.append_metrics_text = counting, holding
main.run()
"""


def test_kill_9_while_round_2_is_written_and_round_3_runs(tmp_path):
  """Guards the pipelined loop: while the host writes round 2 (its rows written, its
  checkpoint not yet), round 3 is already dispatched; kill -9 there, and the rerun resumes
  from round 1's checkpoint and equals the uninterrupted run row for row."""
  reference = _cli("--experiment=tiny", f"--workdir={tmp_path / 'ref'}")
  assert reference.returncode == 0, reference.stderr
  target, marker = tmp_path / "killed", tmp_path / "dispatched"
  env = dict(os.environ, PYTHONPATH=str(REPO))
  command = [sys.executable, "-c", HOLD_AFTER_ROWS_OF_ROUND_2, str(marker)]
  proc = subprocess.Popen(
    [*command, "--experiment=tiny", f"--workdir={target}"],
    cwd=REPO,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  start = time.time()
  while not marker.exists() and proc.poll() is None and time.time() - start < 240:
    time.sleep(0.02)
  assert marker.exists(), f"the study ended (exit {proc.poll()}) or stalled before round 2"
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  assert marker.read_text() == "3"  # rounds 1, 2 and 3 dispatched: 3 overlaps round 2's writes
  assert len(_rows(target)) == 2 * 2  # round 2's rows are written, its checkpoint is not
  assert not (target / "checkpoints" / "2").exists()
  final = _cli("--experiment=tiny", f"--workdir={target}")
  assert final.returncode == 0, final.stderr
  assert _rows(target) == _rows(tmp_path / "ref")


def test_the_heap_before_the_rounds_is_frozen_during_them_only(tmp_path, monkeypatch):
  """The rounds run with the objects alive before them out of the collector's reach (no full
  collection walks them again), and the heap is given back when the rounds end, also when
  they end with an error."""
  frozen = []
  step_round = runner.study.step_round

  def counting(built, state, test_due=False):
    frozen.append(gc.get_freeze_count())
    return step_round(built, state, test_due)

  monkeypatch.setattr(runner.study, "step_round", counting)
  cfg = tiny_swap_config(rounds=2, num_seeds=1)
  assert gc.get_freeze_count() == 0
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "w"), progress=False))
  assert frozen and min(frozen) > 1000 and gc.get_freeze_count() == 0
  opts = runner.RunOptions(workdir=str(tmp_path / "s"), progress=False, stop_after=1)
  with pytest.raises(runner.StudyStopped):
    runner.run(cfg, "tiny", opts)
  assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("ahead_max_s", [runner.AHEAD_MAX_S, 0.0])
def test_rounds_go_ahead_only_after_a_short_round(tmp_path, monkeypatch, ahead_max_s):
  """A stop after round 2 of 4: with short rounds round 3 was already dispatched (and is
  dropped); where rounds take longer than AHEAD_MAX_S nothing goes ahead, so a stop never
  waits for a round more. The first round never goes ahead. The rows are the same."""
  monkeypatch.setattr(runner, "AHEAD_MAX_S", ahead_max_s)
  dispatched = []
  step_round = runner.study.step_round

  def counting(built, state, test_due=False):
    dispatched.append(built.program)
    return step_round(built, state, test_due)

  monkeypatch.setattr(runner.study, "step_round", counting)
  cfg = tiny_swap_config(rounds=4, num_seeds=1)
  opts = runner.RunOptions(workdir=str(tmp_path / "w"), progress=False, stop_after=2)
  with pytest.raises(runner.StudyStopped):
    runner.run(cfg, "tiny", opts)
  programs = len(set(dispatched))
  assert len(dispatched) == programs * (3 if ahead_max_s > 0 else 2)
  rows = _rows(tmp_path / "w")
  assert {r["round"] for r in rows} == {1, 2}
  _run(tmp_path, "ref", rounds=4, num_seeds=1)
  assert rows == [r for r in _rows(tmp_path / "ref") if r["round"] <= 2]


def test_round_seconds_count_the_host_work_and_the_wait_apart(tmp_path, monkeypatch):
  """Pipelined, the device runs round r + 1 while the host writes round r: a round's seconds
  (rows' `time/round_s`, timing.json `round_s`) run from the previous round's results to its
  own, so the host's work (here a 0.2 s sleep in each round's TensorBoard write) is in them,
  while it shortens the wait for the device (`wait_s`). Guards: a round timed until its results
  only (the host's work left out), the wait and the round's seconds swapped."""
  write_round = runner.EventWriter.write_round

  def slow(self, rows):
    time.sleep(0.2)
    write_round(self, rows)

  monkeypatch.setattr(runner.EventWriter, "write_round", slow)
  cfg = tiny_swap_config(rounds=4, num_seeds=1)
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "w"), progress=False))
  timing = json.loads((tmp_path / "w" / "timing.json").read_text())
  round_s, wait_s, wall_s = timing["round_s"], timing["wait_s"], timing["wall_s"]
  assert len(round_s) == len(wait_s) == len(wall_s) == 4
  assert round_s[0] == wait_s[0]  # the first round: from its dispatch
  for r in range(1, 4):
    assert round_s[r] >= 0.2 and round_s[r] > wait_s[r]
    # What the last round's iteration did after its results, then this round's wait.
    assert round_s[r] == pytest.approx(wall_s[r - 1] - wait_s[r - 1] + wait_s[r], abs=0.05)
  assert timing["round_s_median"] == pytest.approx(statistics.median(round_s[1:]))
  assert timing["wait_s_median"] == pytest.approx(statistics.median(wait_s[1:]))
  written = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").open()]
  by_round = {row["round"]: row["time/round_s"] for row in written}
  assert by_round == {r + 1: round(s, 4) for r, s in enumerate(round_s)}


def test_programs_of_one_computation_compile_once_and_keep_their_own_arrays(tmp_path, capsys):
  """Groups `a` and `b` differ in a per-run number (the learning rate), `c` in its network:
  the rounds of `a` and `b` trace to one computation, compiled once, and each group's rows are
  those it has run alone. Guards: one program's arrays fed to another's executable, an
  executable shared across networks, sharing that never happens."""
  from swapjax import registry

  variants = "a:;b:learning_rate=0.1;c:layers=dense:12,sigmoid,dense:3"
  cfg = registry.get_config("iris").replace(num_seeds=2, rounds=2, variants=variants)
  rows = run_rows(cfg, "iris", tmp_path / "all")
  out = capsys.readouterr().out
  assert "swapjax: 3 programs, 2 compilations took" in out
  assert (
    "(b) is a's program (traced in" in out and "compiled the round of 2 runs x 1 members (c)" in out
  )

  def group(rows, name):
    return [{k: v for k, v in r.items() if k not in ("run", "time/round_s")} for r in rows
            if r["group"] == name]  # fmt: skip

  assert group(rows, "a") != group(rows, "b")  # the learning rates train apart
  for name in ("b", "c"):
    alone = run_rows(cfg.replace(groups=(name,)), "iris", tmp_path / name)
    assert group(rows, name) == group(alone, name)


def test_sigterm_finishes_the_round_saves_and_resumes(tmp_path):
  target = tmp_path / "w"
  proc = _spawn_tiny(target, subprocess.PIPE)
  _wait_for_rows(target / "metrics.jsonl", 1, proc)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == runner.EXIT_INTERRUPTED, err[-1000:]
  assert "rerun the same command to resume" in err
  rows_done = len(_rows(target)) // 2
  assert sorted(p.name for p in (target / "checkpoints").iterdir())[-1] == str(rows_done)
  final = _cli("--experiment=tiny", f"--workdir={target}")
  assert final.returncode == 0, final.stderr
  assert len(_rows(target)) == 4 * 2


def _nan_at(round_index, run):
  from swapjax import study

  original = study.step_round

  def step(built, state, test_due=False):
    state, metrics = original(built, state, test_due)
    if int(state.round) == round_index:
      metrics = dict(metrics)
      metrics["AtoB/epoch_loss"] = metrics["AtoB/epoch_loss"].at[run].set(float("nan"))
    return state, metrics

  return step


def test_nan_stops_the_study_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  from swapjax import study

  monkeypatch.setattr(study, "step_round", _nan_at(2, 1))
  with pytest.raises(runner.StudyStopped) as e:
    _run(tmp_path, "w", rounds=3, num_seeds=1)
  assert e.value.code == runner.EXIT_DIVERGED
  assert (
    "round 2" in str(e.value) and "run 1" in str(e.value) and "condition=schedule" in str(e.value)
  )
  assert sorted(p.name for p in (tmp_path / "w" / "checkpoints").iterdir()) == ["1"]
  assert _run_round_keys(_rows(tmp_path / "w")) == {(0, 1): 1, (1, 1): 1}


def test_nan_stop_with_a_failed_save_in_flight_says_both(tmp_path, monkeypatch):
  """The divergence stays the message when the save in flight fails as the study stops; the
  failed save is a note on it, which the command prints below the message."""
  from swapjax import checkpoint, study

  monkeypatch.setattr(study, "step_round", _nan_at(2, 1))
  wait, calls = checkpoint.Checkpointer.wait, []

  def failing(self):  # the first wait is the stop's (the closing one then finds it done)
    calls.append(self)
    if len(calls) == 1:
      raise checkpoint.CheckpointError(self._directory, -1, OSError(28, "full"))
    wait(self)

  monkeypatch.setattr(checkpoint.Checkpointer, "wait", failing)
  with pytest.raises(runner.StudyStopped) as e:
    _run(tmp_path, "w", rounds=3, num_seeds=1)
  assert e.value.code == runner.EXIT_DIVERGED and "round 2" in str(e.value)
  assert any("disk full" in note for note in e.value.__notes__)


STOPPED_WITH_A_NOTE = """
from swapjax import health, main, runner
def stopped(*args, **kwargs):
  error = health.StudyStopped(health.EXIT_DIVERGED, "round 2: run 1: NaN; stopped")
  error.add_note("swapjax: checkpoint 2 could not be written (disk full)")
  raise error
runner.run = stopped
main.run()
"""


def test_the_command_prints_the_notes_below_a_stop(tmp_path):
  proc = subprocess.run(
    [sys.executable, "-c", STOPPED_WITH_A_NOTE, "--experiment=tiny", f"--workdir={tmp_path}"],
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=str(REPO)),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == runner.EXIT_DIVERGED
  assert proc.stderr.strip().splitlines()[-2:] == [
    "swapjax: round 2: run 1: NaN; stopped",
    "swapjax: checkpoint 2 could not be written (disk full)",
  ]


def test_nan_freeze_continues_the_other_runs(tmp_path, monkeypatch):
  from swapjax import study

  monkeypatch.setattr(study, "step_round", _nan_at(1, 1))
  _run(tmp_path, "w", rounds=2, num_seeds=1, on_nan="freeze")
  rows = _rows(tmp_path / "w")
  assert _run_round_keys(rows) == {(0, 1): 1, (1, 1): 1, (0, 2): 1, (1, 2): 1}
  frozen = [r for r in rows if r["run"] == 1 and r["round"] == 2][0]
  assert frozen["condition"] == "schedule" and frozen["swap/k"] == 0  # no training, no swaps


def test_full_disk_at_a_checkpoint_save_is_one_clear_error(tmp_path, monkeypatch):
  import errno

  import orbax.checkpoint as ocp

  from swapjax import checkpoint

  original = ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == 2:
      raise OSError(errno.ENOSPC, "No space left on device")
    return original(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  with pytest.raises(checkpoint.CheckpointError, match="disk full.*rerun the same command"):
    _run(tmp_path, "w", rounds=3, num_seeds=1)
  monkeypatch.setattr(ocp.CheckpointManager, "save", original)
  reference_rows = _rows(tmp_path / "w")
  assert _run_round_keys(reference_rows) == {
    (0, 1): 1,
    (1, 1): 1,
    (0, 2): 1,
    (1, 2): 1,
  }  # metrics come before the save
  _run(tmp_path, "w", rounds=3, num_seeds=1)  # resumes from checkpoint 1
  assert _run_round_keys(_rows(tmp_path / "w")) == {
    (0, 1): 1,
    (1, 1): 1,
    (0, 2): 1,
    (1, 2): 1,
    (0, 3): 1,
    (1, 3): 1,
  }


def test_any_error_after_the_restore_closes_the_checkpointer(tmp_path, monkeypatch):
  """A failure that is not a stop (here a failed write of round 2's rows) leaves no
  checkpointer open: the save in flight finishes, the error reaches the user unchanged."""
  from swapjax import checkpoint

  opened, closed = [], []
  original_init, original_close = checkpoint.Checkpointer.__init__, checkpoint.Checkpointer.close

  def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    opened.append(self)

  def close(self):
    closed.append(self)
    original_close(self)

  def append(self, text, sync=True):
    if b'"round": 2' in bytes(text):
      raise OSError("the rows of round 2 could not be written")
    return original_append(self, text, sync)

  original_append = workdir.Workdir.append_metrics_text
  monkeypatch.setattr(checkpoint.Checkpointer, "__init__", init)
  monkeypatch.setattr(checkpoint.Checkpointer, "close", close)
  monkeypatch.setattr(workdir.Workdir, "append_metrics_text", append)
  with pytest.raises(OSError, match="rows of round 2"):
    _run(tmp_path, "w", rounds=3, num_seeds=1)
  assert opened and closed == opened
  assert sorted(p.name for p in (tmp_path / "w" / "checkpoints").iterdir()) == ["1"]


def _collapse_at(round_index, run):
  """Training accuracy of `run` forced high before `round_index`, to 0.05 at it."""
  from swapjax import study

  original = study.step_round

  def step(built, state, test_due=False):
    state, metrics = original(built, state, test_due)
    metrics = dict(metrics)
    value = 0.05 if int(state.round) == round_index else 0.9
    metrics["train/acc"] = metrics["train/acc"].at[run].set(value)
    return state, metrics

  return step


@pytest.mark.parametrize("on_nan", ["stop", "freeze"])
def test_collapse_to_chance_is_named_and_stops_or_freezes(tmp_path, monkeypatch, capsys, on_nan):
  """Guards report 003's collapse (training accuracy at chance after it was high): the round
  and run are named, and the run is stopped or frozen as `on_nan` says."""
  from test_experiments import shrunk

  from swapjax import study

  monkeypatch.setattr(study, "step_round", _collapse_at(2, 1))
  cfg = shrunk("memorize_mnist", rounds=3, num_seeds=2, on_nan=on_nan, early_stop=False)
  opts = runner.RunOptions(workdir=str(tmp_path / "w"), progress=False)
  if on_nan == "stop":
    with pytest.raises(runner.StudyStopped) as e:
      runner.run(cfg, "memorize_mnist", opts)
    assert e.value.code == runner.EXIT_DIVERGED
    assert "round 2: run 1" in str(e.value) and "collapse (training accuracy 0.050" in str(e.value)
    return
  runner.run(cfg, "memorize_mnist", opts)
  assert "froze run 1" in capsys.readouterr().out
  rows = {(r["run"], r["epoch"]): r for r in _rows(tmp_path / "w")}
  frozen, alive = rows[(1, 3)], rows[(0, 3)]
  assert frozen["train/loss"] == rows[(1, 2)]["train/loss"]  # stopped: its row repeats
  assert alive["train/loss"] != rows[(0, 2)]["train/loss"]


def test_eta_is_a_budget_bound_with_an_estimate_when_runs_are_fitting():
  """Guards the early-stop ETA: the budget is an upper bound ('<='), and runs rising towards
  the fit target give an estimate from their slope (the slowest run decides)."""
  from swapjax import registry

  cfg = registry.get_config("memorize_mnist")  # early_stop, fit_target 0.99, 1,000 epochs
  times = [2.0] * 4
  history = [(np.array([0.5 + 0.1 * i, 0.3 + 0.05 * i]), np.array([True, True])) for i in range(4)]
  text = progress.eta(cfg, times, 3, history)
  # Budget: 996 rounds left x 2 s. Slowest run: 0.45 now, +0.05 a round -> 11 rounds -> 22 s.
  assert text == "ETA <= 33 min 12 s (fit in ~22 s at the current pace)"
  flat = [(np.array([0.5, 0.3]), np.array([True, True]))] * 4
  assert progress.eta(cfg, times, 3, flat) == "ETA <= 33 min 12 s"  # no progress: no estimate
  no_stop = cfg.replace(early_stop=False)
  assert progress.eta(no_stop, times, 3, history) == "ETA 33 min 12 s"
  # The round a run reaches the target it is still marked active (its metrics' `active` is the
  # round's input): no negative estimate (the main job printed "fit in ~-5 s").
  reached = [
    (np.array([0.989 + 0.002 * i, 0.992 + 0.002 * i]), np.array([True, True])) for i in range(4)
  ]
  assert (
    progress.eta(cfg, times, 3, reached) == "ETA <= 33 min 12 s (fit in ~0 s at the current pace)"
  )
  assert progress.eta(no_stop, [41.5] * 4, 3, history) == "ETA 11 h 29 min"  # 996 x 41.5 s


@pytest.mark.parametrize("every_s, printed", [(0.0, [1, 2, 3, 4]), (3600.0, [1, 4])])
def test_progress_lines_at_most_every_progress_every_s(
  tmp_path, capsys, monkeypatch, every_s, printed
):
  """Rounds of milliseconds print a line a PROGRESS_EVERY_S, not one each: the first round's
  and the last's always, the last with its ETA."""
  monkeypatch.setattr(runner, "PROGRESS_EVERY_S", every_s)
  cfg = tiny_swap_config(rounds=4, num_seeds=1)
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "w")))
  lines = [line for line in capsys.readouterr().out.splitlines() if " s/round  ETA " in line]
  assert [int(line.split("round ")[1].split("/")[0]) for line in lines] == printed
  assert lines[-1].endswith("ETA 0 s")


def test_program_chunks_are_initialised_one_after_another():
  """study.init_states: each chunk's state is computed before the next chunk's init starts
  (two concurrent orthogonal initialisers deadlocked jaxlib's QR on a 2-thread pool). The
  states here are stand-ins that count as computed once something waits for them."""
  import types

  from swapjax import study

  made = []

  class State:
    ready = False

    def block_until_ready(self):
      self.ready = True
      return self

  def program():
    def init_state(runs):
      assert all(state.ready for state in made)  # the earlier chunks' states are computed
      made.append(State())
      return made[-1]

    return types.SimpleNamespace(init_state=init_state, runs=None, device=None)

  states = study.init_states([program() for _ in range(3)])
  assert states == made and all(s.ready for s in states)


def test_collapse_bounds_follow_the_task():
  from swapjax import registry
  from swapjax.config import apply_overrides

  mnist = registry.get_config("memorize_mnist")
  assert health.collapse_bounds(mnist) == (0.5, 0.15)
  five = apply_overrides(mnist, ["layers=flatten,dense:5"])
  assert health.collapse_bounds(five) == pytest.approx((0.6, 0.3))
  for name in ("iris", "binary_addition", "regression", "logic_gates"):
    assert health.collapse_bounds(registry.get_config(name)) is None, name


def test_best_training_accuracy_from_rows_for_a_resumed_collapse_check():
  """Per run its best training accuracy so far, the lowest of its members' in a row: a swap
  study's `A/train_acc` and `B/train_acc`, a single network's `train/acc`; nulls and other
  metrics ignored; 0 where a run has none."""
  rows = [
    {"round": 1, "run": 0, "A/train_acc": 0.4, "B/train_acc": 0.6, "A/test_acc": 0.9},
    {"round": 2, "run": 0, "A/train_acc": 0.8, "B/train_acc": 0.7},
    {"round": 3, "run": 0, "A/train_acc": 0.65, "B/train_acc": None},
    {"round": 1, "run": 2, "train/acc": 0.5, "val/acc": 1.0},
    {"round": 2, "run": 2, "train/acc": 0.25, "train/epoch_acc": 0.95},
    {"round": 1, "run": 1, "train/acc": None},
  ]
  assert health.best_train_acc(rows, 4).tolist() == [0.7, 0.0, 0.5, 0.0]
  assert health.best_train_acc([], 2).tolist() == [0.0, 0.0]


def test_config_json_records_the_reference_numbers_and_protocol():
  from swapjax.experiments import binary_addition

  from swapjax import registry

  meta = runner._meta(registry.get_config("binary_addition"), "binary_addition", "generated", 7)
  assert meta["reference"]["reported"] == binary_addition.REFERENCE
  assert meta["reference"]["reported"]["sigmoid"]["test_acc"] == 0.745
  assert meta["protocol"].startswith(binary_addition.__doc__.strip().splitlines()[0])
  json.dumps(meta)  # config.json holds it


class _Crash(Exception):
  pass


def _crash_at_save(monkeypatch, crash_step: int) -> list[int]:
  """Checkpointer.save records each step it is asked for and raises _Crash at `crash_step`
  (before saving it); returns the list of steps asked for."""
  saved, save = [], runner.checkpoint.Checkpointer.save

  def crashing(self, step, state):
    saved.append(step)
    if step == crash_step:
      raise _Crash
    save(self, step, state)

  monkeypatch.setattr(runner.checkpoint.Checkpointer, "save", crashing)
  return saved


@pytest.fixture(scope="module")
def five_rounds(tmp_path_factory):
  """(config, workdir) of the tiny study over 5 rounds with a checkpoint every round."""
  config = tiny_swap_config(rounds=5)
  workdir = tmp_path_factory.mktemp("five_rounds") / "ref"
  runner.run(config, "tiny", runner.RunOptions(workdir=str(workdir), progress=False))
  return config, workdir


def test_checkpoint_every_n_rounds_resumes_exactly_after_a_crash(
  tmp_path, monkeypatch, five_rounds
):
  """`checkpoint_every=2` over 5 rounds writes checkpoints 2, 4 and 5 (the last round always);
  a crash at checkpoint 4 leaves rows of rounds 3-4 ahead of checkpoint 2, which the rerun
  cuts back and recomputes: the rows equal a run that saved every round."""
  config, reference = five_rounds

  def options():
    return runner.RunOptions(workdir=str(tmp_path / "w"), progress=False, checkpoint_every=2)

  saved = _crash_at_save(monkeypatch, 4)
  with pytest.raises(_Crash):
    runner.run(config, "tiny", options())
  assert saved == [2, 4]
  assert {r["round"] for r in _rows(tmp_path / "w")} == {1, 2, 3, 4}  # ahead of checkpoint 2
  monkeypatch.undo()
  runner.run(config, "tiny", options())
  assert _rows(tmp_path / "w") == _rows(reference)
  steps = sorted(int(p.name) for p in (tmp_path / "w" / "checkpoints").iterdir())
  assert steps == [2, 4, 5]
  a, b = np.load(reference / "membership.npz"), np.load(tmp_path / "w" / "membership.npz")
  for key in a.files:
    np.testing.assert_array_equal(a[key], b[key])


def test_continuous_checkpoints_save_the_rounds_the_policy_allows(
  tmp_path, monkeypatch, five_rounds
):
  """`checkpoint_every=0`: the loop asks `may_save` after every round and saves where it says
  yes, and after the last round whatever it says; a crash at a save leaves rows ahead of the
  previous checkpoint, and the rerun (orbax's own decisions) ends with the rows of a run that
  saved every round. Guards: the decision not asked, ignored, or asked only on some rounds."""
  config, reference = five_rounds

  def options():
    return runner.RunOptions(workdir=str(tmp_path / "w"), progress=False, checkpoint_every=0)

  asked = []

  def may_save(self, step):
    asked.append(step)
    return step in (1, 3)

  monkeypatch.setattr(runner.checkpoint.Checkpointer, "may_save", may_save)
  saved = _crash_at_save(monkeypatch, 5)
  with pytest.raises(_Crash):
    runner.run(config, "tiny", options())
  assert asked == [1, 2, 3, 4, 5] and saved == [1, 3, 5]
  assert {r["round"] for r in _rows(tmp_path / "w")} == set(range(1, 6))  # ahead of round 3
  monkeypatch.undo()
  runner.run(config, "tiny", options())
  assert _rows(tmp_path / "w") == _rows(reference)
  steps = sorted(int(p.name) for p in (tmp_path / "w" / "checkpoints").iterdir())
  assert steps == [3, 4, 5]  # resumed from 3; 4: nothing in flight; 5: the last round


def test_the_continuous_policy_waits_for_no_write(tmp_path):
  """A continuous Checkpointer (`every=0`) says no while a write is in flight, yes once it is
  done, and yes at the last round; every N rounds is due at multiples of N and the last round,
  whatever is in flight. Guards: orbax's policy not configured, the last round not saved."""
  from swapjax import checkpoint

  state = {"w": np.arange(1000, dtype=np.float32)}
  for every in (0, 2):
    with checkpoint.Checkpointer(tmp_path / f"c{every}", every=every) as ckpt:
      assert ckpt.may_save(1) and ckpt.due(1, last=3) is (every == 0)
      ckpt.save(1, state)
      ckpt.wait()
      ckpt._manager.is_saving_in_progress = lambda: True  # a write of round 1 still going
      assert ckpt.may_save(2) is (every != 0) and ckpt.due(2, last=3) is (every != 0)
      assert ckpt.due(3, last=3)
      ckpt._manager.is_saving_in_progress = lambda: False
      assert ckpt.may_save(2) and ckpt.due(2, last=3)
      ckpt.save(2, state)
    assert checkpoint.Checkpointer(tmp_path / f"c{every}").steps() == [1, 2]


def test_continuous_checkpoints_keep_their_minimum_interval(tmp_path, five_rounds):
  """`min_interval`: no continuous checkpoint sooner than that many seconds after the previous
  one, though no write is in flight, and one once they have passed; the last round is always
  due. A study with an interval longer than its rounds saves round 1 and its last round, and
  its rows are those of a run that saved every round. Guards: the interval not handed to orbax
  or not passed on by the runner."""
  from swapjax import checkpoint

  state = {"w": np.arange(10, dtype=np.float32)}
  with checkpoint.Checkpointer(tmp_path / "c", every=0, min_interval=1) as ckpt:
    assert ckpt.due(1, last=4)
    ckpt.save(1, state)
    ckpt.wait()
    assert not ckpt.may_save(2) and not ckpt.due(2, last=4) and ckpt.due(4, last=4)
    time.sleep(1.2)
    assert ckpt.may_save(2)
  config, reference = five_rounds
  options = runner.RunOptions(
    workdir=str(tmp_path / "w"), progress=False, checkpoint_every=0, checkpoint_min_interval=3600
  )
  runner.run(config, "tiny", options)
  assert sorted(int(p.name) for p in (tmp_path / "w" / "checkpoints").iterdir()) == [1, 5]
  assert _rows(tmp_path / "w") == _rows(reference)


def test_checkpoint_every_is_checked():
  from swapjax import api
  from swapjax.config import ConfigError

  for bad in (-1, 1.5, True):
    with pytest.raises(ConfigError, match=f"checkpoint_every={bad}: must be an integer >= 0"):
      api.run("tiny", checkpoint_every=bad)
  result = _cli("--experiment=tiny", "--checkpoint_every=-1")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "--checkpoint_every=-1" in result.stderr
  for bad in (-1, 0.5):
    with pytest.raises(ConfigError, match=f"checkpoint_min_interval={bad}: must be an integer"):
      api.run("tiny", checkpoint_every=0, checkpoint_min_interval=bad)
  needle = "checkpoint_min_interval=5 spaces continuous checkpoints"
  with pytest.raises(ConfigError, match=needle):
    api.run("tiny", checkpoint_every=2, checkpoint_min_interval=5)
  result = _cli("--experiment=tiny", "--checkpoint_every=2", "--checkpoint_min_interval=5")
  assert result.returncode == 2 and result.stderr.strip().splitlines() == [
    f"swapjax: error: --{needle} (--checkpoint_every=0), not a checkpoint every 2 rounds"
  ]


def test_metrics_rows_read_back_with_json_words_and_a_cut_last_line(tmp_path):
  """metrics.jsonl read back as `json.loads` reads each line: NaN (older files) included, and
  everything from a line cut by a kill on dropped."""
  rows = [
    {"round": 1, "run": 0, "a/b": 0.1, "x": None},
    {"round": 1, "run": 1, "a/b": float("nan")},
  ]
  text = "".join(json.dumps(r) + "\n" for r in rows) + '{"round": 2, "run": 0, "a/b": 0.'
  wd = workdir.Workdir(tmp_path)
  wd.metrics_path.write_text(text + "\n" + json.dumps(rows[0]) + "\n")
  got = wd.read_metrics()
  assert len(got) == 2 and got[0] == rows[0] and list(got[0]) == list(rows[0])
  assert got[1]["run"] == 1 and math.isnan(got[1]["a/b"])


def _lines(rows) -> str:
  return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize(
  ("tail", "completed", "kept"),
  [
    ("", 3, 6),  # nothing goes: the file is not written at all
    ("", 2, 4),  # round 3's rows go
    ('{"round": 4, "run": 0, "a": 0.', 3, 6),  # a line cut by a kill goes
    ('{"round": 3, "run": 0, "a": 0.5}', 3, 7),  # kept; its newline is written
    ("", 0, 0),
  ],
)
def test_truncated_metrics_keep_their_lines_as_written(tmp_path, tail, completed, kept):
  """A resume keeps the rows of its checkpoint's rounds as their bytes were written (floats as
  the file has them, NaN of an older file included) and cuts the file after them."""
  rows = [{"round": n // 2 + 1, "run": n % 2, "a": 0.1 * n, "x": None} for n in range(6)]
  rows[1]["a"] = float("nan")
  text = _lines(rows).replace("0.30000000000000004", "0.3000000000000000444")
  wd = workdir.Workdir(tmp_path)
  wd.metrics_path.write_text(text + tail)
  before = wd.metrics_path.stat().st_mtime_ns
  got = wd.truncate_metrics(completed, "round")
  lines = (text + tail + "\n").splitlines(keepends=True)
  assert [(r["round"], r["run"]) for r in got] == [
    (r["round"], r["run"]) for r in map(json.loads, lines[:kept])
  ]
  assert wd.metrics_path.read_text() == "".join(lines[:kept])
  if tail == "" and kept == len(rows):
    assert wd.metrics_path.stat().st_mtime_ns == before
  assert workdir.Workdir(tmp_path).read_metrics() == got or math.isnan(got[1]["a"])


def test_truncated_metrics_out_of_round_order_are_rewritten(tmp_path):
  """A later round's row before a kept one (not what the runner writes): the kept rows are
  written again, in their order."""
  rows = [{"round": 1, "run": 0}, {"round": 3, "run": 0}, {"round": 2, "run": 0}]
  wd = workdir.Workdir(tmp_path)
  wd.metrics_path.write_text(_lines(rows))
  assert wd.truncate_metrics(2, "round") == [rows[0], rows[2]]
  assert wd.metrics_path.read_text() == _lines([rows[0], rows[2]])
  assert workdir.Workdir(tmp_path / "none").truncate_metrics(2, "round") == []


def test_metrics_appender_writes_in_order_syncs_and_stops_at_a_failed_write(tmp_path, monkeypatch):
  """metrics.jsonl from the appender's thread: the texts in order, `wait` returns once they
  are written and the ones asked are synced; a failed write reaches the loop at its next
  call and when its block ends (the same error), and nothing is written after it."""
  wd = workdir.Workdir(str(tmp_path))
  calls, real = [], workdir.Workdir.append_metrics_text

  def append(self, text, sync=True):
    if text == "bad\n":
      raise OSError("disk gone")
    calls.append((text, sync))
    real(self, text, sync=sync)

  monkeypatch.setattr(workdir.Workdir, "append_metrics_text", append)
  appender = workdir.MetricsAppender(wd)
  with pytest.raises(OSError, match="disk gone"), appender:  # raised again when it ends
    for i in range(20):
      appender.append(f"{i}\n", sync=i == 19)
    appender.wait()
    assert wd.metrics_path.read_text() == "".join(f"{i}\n" for i in range(20))
    assert calls[-1] == ("19\n", True)
    appender.append("bad\n", sync=False)
    with pytest.raises(OSError, match="disk gone"):
      appender.wait()
    with pytest.raises(OSError, match="disk gone"):
      appender.append("20\n", sync=True)
    assert len(calls) == 20
  appender = workdir.MetricsAppender(wd)
  with pytest.raises(OSError, match="disk gone"), appender:  # first raised where it ends
    appender.append("bad\n", sync=False)
    appender.append("21\n", sync=False)
  assert wd.metrics_path.read_text().splitlines()[-1] == "19" and len(calls) == 20
  with workdir.MetricsAppender(wd, enabled=False) as appender:  # a process that writes no rows
    appender.append("22\n", sync=True)
    appender.wait()
  assert len(calls) == 20
