"""The benchmark harness: a strategy, the sequential baseline and the scaling table, end to end."""

import json
import math

import pytest
from absl import app
from absl.testing import flagsaver

from benchmarks import run as bench


def test_tiny_preset_writes_the_timing_report(tmp_path):
  with flagsaver.flagsaver(
    preset="tiny",
    out=str(tmp_path),
    repeats=1,
    strategies=["patches/scan", "lax/sequential"],
    scaling=["1", "2"],
  ):
    bench.main([])
  report = json.loads((tmp_path / "timing_tiny.json").read_text())
  population, sequential = report["strategies"]
  assert population["strategy"] == "patches/scan" and population["conv_impl"] == "patches"
  assert sequential["strategy"] == bench.SEQUENTIAL == "lax/sequential"
  for row in report["strategies"]:
    assert row["models"] == 2 and row["repeats"] == 1
    assert 0 < row["round_s_min"] <= row["round_s_median"] <= row["round_s_max"]
    assert row["flops_per_round"] > 0 and row["images_per_s"] > 0
  assert population["compile_s"] > 0 and sequential["first_round_s"] > 0
  expected = (sequential["round_s_median"] / 2) / (population["round_s_median"] / 2)
  assert report["speedup_per_model_vs_sequential"] == pytest.approx(expected)
  one, two = report["scaling"]
  assert (one["runs"], two["runs"]) == (1, 2) and two["models"] == 2 * one["models"]
  assert one["population_efficiency"] == 1.0  # the reference row, by definition
  # R runs in one program against R times one run: computed from the two rows' own timings.
  assert two["population_efficiency"] == pytest.approx(
    two["round_s_median"] / (2 * one["round_s_median"])
  )
  assert two["s_per_model"] == pytest.approx(two["round_s_median"] / two["models"])
  text = (tmp_path / "benchmark_tiny.md").read_text()
  assert "| patches/scan | 1 | 2 |" in text and "| lax/sequential | 1 | 2 |" in text


def test_strategy_options_are_typed_config_overrides():
  base = bench.population(bench.registry.get_config("swap_cifar10"), 3)
  cfg = bench.with_strategy(base, "hybrid/host/compute_dtype=bfloat16+eval_batch_size=250")
  assert (cfg.conv_impl, cfg.driver, cfg.compute_dtype) == ("hybrid", "host", "bfloat16")
  assert cfg.eval_batch_size == 250 and cfg.num_seeds == 3 and cfg.conditions == ("schedule",)
  with pytest.raises(bench.ConfigError, match="eval_batch_size"):
    bench.with_strategy(base, "patches/scan/eval_batch_size=many")


def test_bad_strategy_is_a_usage_error(tmp_path):
  saved = flagsaver.flagsaver(preset="tiny", out=str(tmp_path), strategies=["patches/warp"])
  with saved, pytest.raises(app.UsageError, match="driver=warp"):
    bench.main([])
  assert not list(tmp_path.iterdir())


def test_torch_reference_without_torch_is_a_usage_error(tmp_path, monkeypatch):
  monkeypatch.setattr(bench, "_torch_available", lambda: False)
  strategies = ["patches/scan", bench.TORCH]
  saved = flagsaver.flagsaver(preset="tiny", out=str(tmp_path), strategies=strategies)
  with saved, pytest.raises(app.UsageError, match=r"torch/sequential needs PyTorch: pip install"):
    bench.main([])
  assert not list(tmp_path.iterdir())


def test_baselines_alone_are_a_usage_error(tmp_path, monkeypatch):
  monkeypatch.setattr(bench, "_torch_available", lambda: True)  # the same answer without torch
  strategies = [bench.SEQUENTIAL, bench.TORCH]
  saved = flagsaver.flagsaver(preset="tiny", out=str(tmp_path), strategies=strategies)
  with saved, pytest.raises(app.UsageError, match="population strategy"):
    bench.main([])


def test_presets_time_onednn_strategies_as_patches_without_onednn(monkeypatch, capsys):
  monkeypatch.setattr(bench.onednn, "unavailable_reason", lambda: "no oneDNN here")
  got = bench._without_onednn(["onednn/scan", "patches/scan", "onednn/host/k=v", bench.TORCH])
  assert got == ["patches/scan", "patches/host/k=v", bench.TORCH]
  assert "onednn/scan timed as patches/scan: no oneDNN here" in capsys.readouterr().out


def _two_rnn_groups():
  """binary_addition's `base` and `tanh` groups on 40 pairs, as the preset builds them."""

  from swapjax import study

  base = bench.registry.get_config("binary_addition").replace(
    source="synthetic",
    rounds=1_000_000,
    pool_size=40,
    holdout_size=20,
    cpu_devices=1,
    groups=("base", "tanh"),
  )
  return base, study.load_data(base, None, None)


def test_rnn_groups_are_timed_with_the_scan_beside_the_kernel():
  """binary_addition's groups: the study's own formulation (the C++ time loop) and the lax.scan,
  each group both ways in one process, and the whole study's steady time both ways."""

  from swapjax.cpu import rnn_kernel

  if rnn_kernel.unavailable_reason():
    pytest.skip(rnn_kernel.unavailable_reason())
  base, ds = _two_rnn_groups()
  report = {}
  bench._time_groups(report, base, ds, repeats=1, runs=2, rounds=5)
  assert [r["group"] for r in report["groups"]] == ["base", "tanh"]
  for row in report["groups"]:
    assert row["round_s_median"] > 0 and row["scan_round_s_median"] > 0
  scan_s = 5 * sum(r["scan_round_s_median"] for r in report["groups"])
  assert report["groups_study"]["scan_steady_s"] == pytest.approx(scan_s)
  table = "\n".join(bench._render_groups(report))
  assert "s/epoch with rnn_impl=scan" in table and "| base | 2 |" in table
  # A group without a scan of its own (no recurrent layer) keeps the table's columns.
  plain = {k: v for k, v in report["groups"][0].items() if k != "scan_round_s_median"}
  report["groups"].append({**plain, "group": "no_rnn"})
  lines = bench._render_groups(report)
  assert len({line.count("|") for line in lines}) == 1
  assert lines[-1].startswith("| no_rnn |") and "| - |" in lines[-1]


def test_groups_compare_an_override_side_by_side(monkeypatch):
  """--group_compare times each group again with a config override, right after its own
  timing; --group_baselines=false leaves out the one-device and scan timings."""

  base, ds = _two_rnn_groups()
  seen = []
  real = bench._time_rounds

  def spy(cfg, strategy, ds, repeats):
    seen.append((cfg.variant, cfg.learning_rate, cfg.rnn_impl))
    return real(cfg, strategy, ds, repeats)

  monkeypatch.setattr(bench, "_time_rounds", spy)
  report = {}
  override = "learning_rate=0.5"
  bench._time_groups(report, base, ds, 1, 2, 5, [override], baselines=False)
  assert seen == [("base", (0.1,), "auto"), ("base", (0.5,), "auto")] + [
    ("tanh", (0.1,), "auto"),
    ("tanh", (0.5,), "auto"),
  ]
  for row in report["groups"]:
    assert row["compare"][override] > 0 and "scan_round_s_median" not in row
  steady = 5 * sum(r["compare"][override] for r in report["groups"])
  assert report["groups_study"]["compare_steady_s"][override] == pytest.approx(steady)
  table = "\n".join(bench._render_groups(report))
  assert f"s/epoch with {override}" in table and "rnn_impl=scan" not in table


def test_xla_flags_compares_variants_in_alternating_processes(tmp_path, monkeypatch):
  """Each variant's XLA_FLAGS reaches its own process; the report's cells are medians over the
  trials and the ratio is the first variant's time over the last's."""
  from benchmarks import xla_flags

  calls = []

  def fake_process(flags_value, folder):
    calls.append(flags_value)
    slow = flags_value.endswith("=true")
    return {"onednn/scan": (3.0 if slow else 2.0) + 0.1 * len(calls)}

  monkeypatch.setattr(xla_flags, "one_process", fake_process)
  with flagsaver.flagsaver(preset="memorize_mnist", trials=2, out=str(tmp_path)):
    xla_flags.main([])
  flag = "--xla_cpu_enable_concurrency_optimized_scheduler"
  assert calls == [f"{flag}=true", f"{flag}=false"] * 2  # alternating, swapjax's default last
  result = json.loads((tmp_path / "xla_flags_memorize_mnist.json").read_text())
  assert result["cases"]["onednn/scan"] == {
    f"{flag}=true": pytest.approx([3.1, 3.3]),
    f"{flag}=false": pytest.approx([2.2, 2.4]),
  }
  text = (tmp_path / "xla_flags_memorize_mnist.md").read_text()
  assert "| onednn/scan | 3.200 | 2.300 | 1.39x |" in text


def test_dense_layout_times_the_three_forms_and_restores_the_models(capsys):
  from benchmarks import dense_layout

  with flagsaver.flagsaver(experiment="iris", repeats=1, set=["num_seeds=1"]):
    dense_layout.main([])
  report = json.loads(capsys.readouterr().out)
  assert report["runs"] >= 1 and report["overrides"] == ["num_seeds=1"]
  assert set(report["epoch_s"]) == {"kernel_layout", "jax_transpose", "transpose_once"}
  for times in report["epoch_s"].values():
    assert 0 < times["min"] <= times["median"] <= times["max"]
  # The barrier form computes JAX's own gradient and transposes it once: bitwise the same.
  assert report["bitwise_equal_to_jax_transpose"]["transpose_once"] is True
  assert dense_layout.models._dense_dot_general is dense_layout.FORMS["kernel_layout"]


def test_host_overhead_table_has_each_loop_and_refuses_unknown_cases():
  from benchmarks import host_overhead

  r = {"compiled_round_s": 0.02}
  r |= {f"{name} wall_s": 0.02 * (i + 2) for i, (name, *_) in enumerate(host_overhead.LOOPS)}
  report = {"device": "cpu", "jax": "x", "rounds": 20, "repeats": 1, "cases": {"iris": r}}
  row = host_overhead.render(report).splitlines()[-1]
  assert (
    row == "| iris | 0.0200 | 0.0400 (2.00x) | 0.0600 (3.00x) | 0.0800 (4.00x) | 0.1000 (5.00x) "
    "| 0.1200 (6.00x) |"
  )
  header = host_overhead.render(report).splitlines()[2]
  assert header.endswith(
    "| pipelined, continuous checkpoints | pipelined, continuous checkpoints at least 1 s apart |"
  )
  with (
    flagsaver.flagsaver(preset="host_overhead", cases=["iris", "nope"]),
    pytest.raises(app.UsageError, match="--cases: unknown nope"),
  ):
    bench.main([])


def test_host_overhead_times_the_compiled_rounds_beside_each_repeats_loops(monkeypatch):
  """Each repeat times the compiled rounds, then every loop; the baseline is the median of
  the repeats' (a machine that drifts moves the baseline with the loops it divides)."""
  from benchmarks import host_overhead

  calls, alone = [], iter([0.03, 0.01, 0.02])

  def compiled_rounds(config, rounds):
    calls.append("alone")
    return next(alone)

  def study_loop(experiment, config, pipeline, every, min_interval):
    calls.append("loop")
    return 0.05

  monkeypatch.setattr(host_overhead, "compiled_rounds", compiled_rounds)
  monkeypatch.setattr(host_overhead, "study_loop", study_loop)
  got = host_overhead.measure(["iris"], rounds=3, repeats=3)["iris"]
  assert calls == (["alone"] + ["loop"] * len(host_overhead.LOOPS)) * 3
  assert got["compiled_round_s"] == 0.02 and got["compiled_round_s_all"] == [0.03, 0.01, 0.02]
  assert got["pipelined wall_s"] == 0.05 and got["pipelined wall_s_all"] == [0.05] * 3


def test_loop_cpu_measures_the_rounds_and_restores_the_runner():
  """Wall and CPU seconds per round of a real (tiny) study loop; the runner is as it was."""
  from benchmarks import loop_cpu
  from swapjax import runner

  rounds_fn = runner._rounds
  got = loop_cpu.measure("tiny", rounds=2, checkpoint_every=1)
  assert runner._rounds is rounds_fn
  assert got["wall_s"] > 0 and got["cpu_s"] > 0


def test_loop_cpu_leaves_out_the_named_parts_only_while_it_measures(monkeypatch):
  """A part named in `without` is not run in that loop (metrics.jsonl's appends here), runs
  in the whole loop, and every patched function is as it was afterwards."""
  from benchmarks import loop_cpu
  from swapjax import runner, workdir
  from swapjax.rows import RoundRows

  appends = []
  append = workdir.Workdir.append_metrics_text
  monkeypatch.setattr(
    workdir.Workdir,
    "append_metrics_text",
    lambda self, text, sync=True: appends.append(bytes(text)) or append(self, text, sync),
  )
  patched, text, rounds_fn = workdir.Workdir.append_metrics_text, RoundRows.encoded, runner._rounds
  got = loop_cpu.measure("tiny", rounds=2, checkpoint_every=1, without=("write", "text"))
  assert appends == [] and got["wall_s"] > 0 and got["cpu_s"] > 0
  loop_cpu.measure("tiny", rounds=2, checkpoint_every=1)
  assert len(appends) == 2 and all(t.count(b"\n") >= 1 for t in appends)
  assert workdir.Workdir.append_metrics_text is patched
  assert RoundRows.encoded is text and runner._rounds is rounds_fn


def test_loop_cpu_renders_each_loop_against_the_compiled_rounds(monkeypatch):
  from benchmarks import loop_cpu

  calls = []
  monkeypatch.setattr(
    loop_cpu, "compiled_round_times", lambda c, r: {"wall_s": 0.01, "cpu_s": 0.02}
  )
  monkeypatch.setattr(
    loop_cpu,
    "measure",
    lambda e, r, c, parts=(): (
      calls.append(parts) or {"wall_s": 0.01 * (3 - len(parts)), "cpu_s": 0.05}
    ),
  )
  got = loop_cpu.compare("tiny", 3, 1, ["text", "tensorboard"], repeats=2)
  assert calls == [(), ("text",), ("tensorboard",), ("text", "tensorboard")] * 2
  table = loop_cpu.render(got).splitlines()
  assert table[2] == "| compiled rounds alone | 0.0100 | 0.0200 | 1.00x |"
  assert table[3] == "| whole loop | 0.0300, 0.0300 | 0.0500, 0.0500 | 3.00x, 3.00x |"
  assert (
    table[-1] == "| without text, tensorboard | 0.0100, 0.0100 | 0.0500, 0.0500 | 1.00x, 1.00x |"
  )


def test_loop_cpu_refuses_an_unknown_part_in_one_line(monkeypatch, capsys):
  from benchmarks import loop_cpu

  monkeypatch.setattr("sys.argv", ["loop_cpu", "--without=text,nope"])
  with pytest.raises(SystemExit) as exit_:
    loop_cpu.main()
  assert exit_.value.code == 2
  assert (
    "--without: unknown nope (known: text, write, tensorboard, progress)" in capsys.readouterr().err
  )


def test_checkpoint_save_times_both_handlers_and_restores_orbaxs():
  """benchmarks/checkpoint_save.py: saves 2.. of each series timed, call before write, in both
  variants; orbax's registered numpy handler is the same object afterwards, also on an error."""
  import numpy as np
  import orbax.checkpoint as ocp

  from benchmarks import checkpoint_save

  registered = ocp.type_handlers.get_type_handler(np.ndarray)
  found = checkpoint_save.measure([0.25], saves=3, repeats=1)
  assert list(found[0.25]) == list(checkpoint_save.VARIANTS)
  for times in found[0.25].values():
    assert len(times) == 2 and all(0 < call <= whole for call, whole in times)
  assert ocp.type_handlers.get_type_handler(np.ndarray) is registered
  with pytest.raises(ZeroDivisionError), checkpoint_save.numpy_handler(copy=False):
    assert ocp.type_handlers.get_type_handler(np.ndarray) is not registered
    1 / 0  # noqa: B018
  assert ocp.type_handlers.get_type_handler(np.ndarray) is registered
  table = checkpoint_save.render(found).splitlines()
  assert len(table) == 4 and table[2].startswith("| 0.25 MB | orbax's default (copies) |")


def test_commits_reads_a_phase_from_the_studys_last_line():
  from benchmarks import commits

  line = (
    "swapjax: epoch 3/3  ...\nswapjax: seconds in the study: data and checks 0.21, build 1.13, "
    "compile 1.87, rounds 4.63, report 6.96\nswapjax: report written to W/report.md\n"
  )
  assert commits._phase(line, "build") == 1.13 and commits._phase(line, "report") == 6.96
  assert math.isnan(commits._phase("swapjax: no such line", "build"))


def test_loop_cpu_times_each_host_part_of_the_round_and_restores_them():
  """`parts`: every timed call's seconds per round, the loop's own calls run (rows written);
  in turn as pipelined; each timed attribute is as it was afterwards."""
  from benchmarks import loop_cpu

  before = {name: getattr(*where) for name, where in loop_cpu.TIMED.items()}
  for pipeline in (True, False):
    got = loop_cpu.measure("tiny", rounds=2, checkpoint_every=1, pipeline=pipeline, parts=True)
    assert set(got) == {"wall_s", "cpu_s", "other", *loop_cpu.TIMED}
    assert all(got[name] > 0 for name in loop_cpu.TIMED), got
    assert got["other"] == pytest.approx(got["wall_s"] - sum(got[n] for n in loop_cpu.TIMED))
  assert {name: getattr(*where) for name, where in loop_cpu.TIMED.items()} == before
  table = loop_cpu.render_parts([("in turn", [got, got])]).splitlines()
  assert table[0].startswith("| loop | round | dispatch | fetch |")
  assert table[2].split(" | ")[1] == f"{got['wall_s'] * 1e3:.1f}, {got['wall_s'] * 1e3:.1f}"
