"""TensorBoard event files read back by TensorBoard's own loader equal the metrics rows."""

import json
import sys

import numpy as np
import pytest
from conftest import tiny_swap_config

from swapjax import runner
from swapjax import tensorboard as tb
from swapjax.config import ConfigError
from swapjax.tensorboard import EventWriter, run_dir_name, scalar, split_row

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")


def _study_rows():
  """A hand-made study: 2 runs (two groups) x 3 rounds, with a missing and a text value."""
  rows = []
  for rnd in (1, 2, 3):
    for run, condition in enumerate(("none", "schedule")):
      rows.append(
        {
          "round": rnd,
          "run": run,
          "group": f"condition={condition}",
          "condition": condition,
          "warmup": 0,
          "learning_rate": 0.001,
          "seed": run,
          "AtoB/test_acc": 0.1 * rnd + 0.01 * run + 1e-9,  # not exact in float32
          "BtoA/test_loss": 2.3 - 0.123456789 * rnd,
          "swap/moved": 3 * rnd * run,
          "holdout/acc": None if rnd == 2 else 0.5 + run,
          "fit_epoch": None,
          "note/text": "not a number",
          "time/round_s": 0.25 * rnd,
        }
      )
  return rows


def _read(logdir):
  """{run folder: (EventAccumulator loaded with every event)}."""
  out = {}
  for path in sorted(p for p in logdir.iterdir() if p.is_dir()):
    acc = event_accumulator.EventAccumulator(
      str(path), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    out[path.name] = acc
  return out


def _assert_equal_to_rows(logdir, rows, round_key):
  runs = _read(logdir)
  expected_dirs = {run_dir_name(r["run"], r["group"]) for r in rows}
  assert set(runs) == expected_dirs
  for run_id in sorted({r["run"] for r in rows}):
    mine = [r for r in rows if r["run"] == run_id]
    acc = runs[run_dir_name(run_id, mine[0]["group"])]
    expected = {}
    for row in mine:
      for tag, value in split_row(row)[1].items():
        if scalar(value) is not None:
          expected.setdefault(tag, []).append((row[round_key], np.float32(value)))
    assert sorted(acc.Tags()["scalars"]) == sorted(expected)
    for tag, series in expected.items():
      got = [(e.step, np.float32(e.value)) for e in acc.Scalars(tag)]
      assert got == series, (run_id, tag)
    # The run's condition values, once, as TensorBoard hparams.
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    for key, value in split_row(mine[0])[0].items():
      field = hparams[key]
      got = field.string_value if isinstance(value, str) else field.number_value
      assert got == pytest.approx(value), key
    assert "conditions/text_summary" in acc.Tags()["tensors"]


def test_event_files_read_back_equal_to_the_rows(tmp_path):
  rows = _study_rows()
  with EventWriter(tmp_path) as events:
    for rnd in (1, 2, 3):
      events.write([r for r in rows if r["round"] == rnd], "round")
  assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == [
    "run_000_condition=none",
    "run_001_condition=schedule",
  ]
  _assert_equal_to_rows(tmp_path / "tensorboard", rows, "round")


def test_resume_purges_the_rewritten_rounds(tmp_path):
  """A resumed process rewrites round 3 (cut from metrics.jsonl): TensorBoard keeps only the
  new values from the purge step on, and the older rounds from the first process."""
  rows = _study_rows()
  with EventWriter(tmp_path) as events:
    events.write(rows, "round")
  rewritten = [dict(r, **{"AtoB/test_acc": 0.9}) for r in rows if r["round"] == 3]
  with EventWriter(tmp_path, purge_step=3) as events:
    events.write(rewritten, "round")
  expected = [r for r in rows if r["round"] < 3] + rewritten
  for acc in _read(tmp_path / "tensorboard").values():
    assert [e.step for e in acc.Scalars("AtoB/test_acc")] == [1, 2, 3]
    assert np.float32(acc.Scalars("AtoB/test_acc")[-1].value) == np.float32(0.9)
  _assert_equal_to_rows(tmp_path / "tensorboard", expected, "round")


def test_disabled_writes_nothing(tmp_path):
  with EventWriter(tmp_path, enabled=False) as events:
    events.write(_study_rows(), "round")
  assert not (tmp_path / "tensorboard").exists()


def test_a_missing_writer_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
  """Without tensorboardX (a machine's own environment, seen on a GPU image) the study stops at
  once with one line, not with a traceback after compiling; `tensorboard=false` needs none."""
  monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` now fails
  cfg = tiny_swap_config(rounds=1, num_seeds=1)
  options = runner.RunOptions(workdir=str(tmp_path / "w"), progress=False)
  with pytest.raises(ConfigError, match=r"tensorboardX.*--set tensorboard=false") as e:
    runner.run(cfg, "tiny", options)
  assert "\n" not in str(e.value)
  assert not (tmp_path / "w").exists()
  runner.run(cfg.replace(tensorboard=False), "tiny", options)
  assert (tmp_path / "w" / "metrics.jsonl").exists()


def test_a_real_study_reads_back_equal_to_metrics_jsonl(tmp_path):
  """The runner's own event files (written every round, and after a resume without
  duplicates) read back equal to metrics.jsonl; `tensorboard=false` writes none."""
  cfg = tiny_swap_config(rounds=2, num_seeds=1)
  stopped = runner.RunOptions(workdir=str(tmp_path / "w"), progress=False, stop_after=1)
  with pytest.raises(runner.StudyStopped):
    runner.run(cfg, "tiny", stopped)
  runner.run(cfg, "tiny", runner.RunOptions(workdir=str(tmp_path / "w"), progress=False))
  rows = [json.loads(x) for x in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
  assert len(rows) == 4 and "AtoB/test_unseen_acc" in rows[0]
  _assert_equal_to_rows(tmp_path / "w" / "tensorboard", rows, "round")
  off = cfg.replace(rounds=1, tensorboard=False)
  runner.run(off, "tiny", runner.RunOptions(workdir=str(tmp_path / "off"), progress=False))
  assert not (tmp_path / "off" / "tensorboard").exists()


def test_a_large_population_writes_one_mean_series_per_group(tmp_path, monkeypatch):
  """Above MAX_RUN_SERIES runs, one directory per group holds the mean over its runs (finite
  values only), not thousands of per-run event files."""
  from swapjax import tensorboard as tb

  monkeypatch.setattr(tb, "MAX_RUN_SERIES", 4)
  rows = [
    {"epoch": 1, "run": r, "group": f"gate={g}", "gate": g, "seed": r,
     "test/acc": 0.25 * (r % 4) if r != 5 else None}
    for r, g in enumerate(["or"] * 3 + ["xor"] * 3)
  ]  # fmt: skip
  with EventWriter(tmp_path) as writer:
    writer.write(rows, "epoch")
  loaded = _read(tmp_path / "tensorboard")
  assert sorted(loaded) == ["group_000_gate=or", "group_001_gate=xor"]
  means = {name: acc.Scalars("test/acc")[0].value for name, acc in loaded.items()}
  assert means["group_000_gate=or"] == pytest.approx((0 + 0.25 + 0.5) / 3)
  assert means["group_001_gate=xor"] == pytest.approx((0.75 + 0.0) / 2)  # run 5 has none


def test_group_means_of_finite_numbers():
  """The fast mean equals the per-value one; NaN, None, bools and text are skipped."""
  values = [0.25, 1, float("nan"), None, 0.5, float("inf")]
  assert tb.finite_mean(values) == pytest.approx((0.25 + 1 + 0.5) / 3, rel=1e-12)
  assert tb.finite_mean([0.25, 1.0, True, "x"]) == pytest.approx(0.625, rel=1e-12)
  assert tb.finite_mean([float("nan"), None]) is None
