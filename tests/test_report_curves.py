"""The curves report from hand-made rows: every table cell against numpy, figures written."""

import json
import math
import sys

import numpy as np
import pytest
import report_tables as rt

from swapjax import layers, registry
from swapjax.report import build, curves, files, plotting, references, stats, timing
from swapjax.report.curves import curves_report

SMALL = "train_fraction=0.2,dropout_rate=0.0"
FULL = "train_fraction=1.0,dropout_rate=0.5"
TEST_EPOCHS = {SMALL: (1, 5), FULL: (1, 4)}
EPOCHS = range(1, 6)
COLLAPSED = (FULL, 1)  # this group's seed 1 falls to chance at epoch 4
REFERENCE = {
  SMALL: {"epochs": 3, "train_acc": 0.9992, "val_acc": 0.8650, "val_loss": 0.7134},
  FULL: {"epochs": 40, "train_acc": 0.9308, "val_acc": 0.9086, "val_loss": 0.3602},
  "train_fraction=0.2,dropout_rate=0.5": {"epochs": 40, "train_acc": 0.879, "val_acc": 0.858},
}


def _rows():
  """2 groups x 3 seeds x 5 epochs; holdout only in SMALL; values move with epoch and seed."""
  rng = np.random.default_rng(0)
  rows = []
  for g, group in enumerate((SMALL, FULL)):
    for seed in range(3):
      run = 3 * g + seed
      for epoch in EPOCHS:
        acc = 0.55 + 0.07 * epoch + 0.01 * seed - 0.02 * g + rng.uniform(0, 0.01, 6)
        loss = 1.5 / epoch + 0.05 * seed + rng.uniform(0, 0.05, 6)
        if (group, seed) == COLLAPSED and epoch >= 4:
          acc[:2] = 0.1
        tested = epoch in TEST_EPOCHS[group]
        row = {
          "epoch": epoch,
          "run": run,
          "group": group,
          "seed": seed,
          "train_fraction": 0.2 if g == 0 else 1.0,
          "dropout_rate": 0.5 * g,
          "learning_rate": 0.001,
          "train/epoch_acc": acc[0],
          "train/acc": acc[1],
          "val/acc": acc[2],
          "test/acc": acc[3] if tested else None,
          "train/epoch_loss": loss[0],
          "train/loss": loss[1],
          "val/loss": loss[2],
          "test/loss": loss[3] if tested else None,
          "fit_epoch": None,
        }
        if group == SMALL:
          row["holdout/acc"] = acc[4] if tested else None
          row["holdout/loss"] = loss[4] if tested else None
        rows.append(row)
  return rows


TEN_CLASSES = {"layers": ["flatten", "dense:10"]}  # config.json's config, as far as it matters


def _at(rows, group, epoch, metric):
  values = [r[metric] for r in rows if r["group"] == group and r["epoch"] == epoch]
  assert len(values) == 3
  return np.array(values)


def test_final_table_every_cell_against_numpy(tmp_path):
  rows = _rows()
  lines = curves_report(TEN_CLASSES, rows, tmp_path)
  table = {row["group"]: row for row in rt.table(lines, "group | seeds")}
  assert list(table) == [f"`{SMALL}`", f"`{FULL}`"]
  for group in (SMALL, FULL):
    row = table[f"`{group}`"]
    assert row["seeds"] == "3" and row["last epoch"] == "5"
    for column, metric in [
      ("train epoch_acc", "train/epoch_acc"),
      ("train acc", "train/acc"),
      ("val acc", "val/acc"),
      ("val loss", "val/loss"),
    ]:
      rt.assert_stat(row[column], _at(rows, group, 5, metric))
    last_test = TEST_EPOCHS[group][-1]
    assert row["test epoch"] == str(last_test)
    rt.assert_stat(row["test acc"], _at(rows, group, last_test, "test/acc"))
    rt.assert_stat(row["test loss"], _at(rows, group, last_test, "test/loss"))
  rt.assert_stat(table[f"`{SMALL}`"]["holdout acc"], _at(rows, SMALL, 5, "holdout/acc"))
  assert table[f"`{FULL}`"]["holdout acc"] == "n/a"
  for group in (SMALL, FULL):  # best over epochs, per run, then mean ± std over seeds
    for column, metric in [("best val acc", "val/acc"), ("best test acc", "test/acc")]:
      per_epoch = [_at(rows, group, e, metric) for e in EPOCHS if metric == "val/acc"
                   or e in TEST_EPOCHS[group]]  # fmt: skip
      rt.assert_stat(table[f"`{group}`"][column], np.max(per_epoch, axis=0))


def test_ranking_orders_groups_by_mean_last_validation_accuracy(tmp_path):
  rows = _rows()
  for r in rows:  # make the second group the better one at the last epoch
    if r["group"] == FULL and r["epoch"] == 5:
      r["val/acc"] += 0.5
  lines = curves_report({}, rows, tmp_path)
  start = lines.index("## Ranking (mean val/acc at the last epoch)")
  ranked = [line for line in lines[start + 1 : start + 5] if line[:1].isdigit()]
  want = {g: np.mean(_at(rows, g, 5, "val/acc")) for g in (SMALL, FULL)}
  assert ranked == [f"1. `{FULL}`: {want[FULL]:.4f}", f"2. `{SMALL}`: {want[SMALL]:.4f}"]


def test_timing_lists_each_program_with_its_groups_and_memory():
  programs = [
    {"program": 0, "groups": ["a", "b"], "runs": 4, "runs_per_call": 2, "compile_s": 3.0,
     "round_s_median": 1.5, "memory_estimate_bytes_per_run": 3 * 2**20,
     "xla_peak_bytes_per_call": 10 * 2**20},
    {"program": 1, "groups": ["c"], "runs": 1, "runs_per_call": 1, "compile_s": 1.0,
     "memory_estimate_bytes_per_run": 486 * 2**10},
  ]  # fmt: skip
  lines = timing.timing_lines({"programs": programs})
  table = rt.table(lines, "program")
  assert table[0]["groups"] == "`a`, `b`" and table[0]["runs per call"] == "2"
  assert table[0]["memory per run (estimate)"] == "3 MiB"
  assert table[0]["memory per call (XLA)"] == "10 MiB"
  assert table[0]["s until results"] == "1.5"
  assert table[1]["s until results"] == "n/a" and table[1]["memory per call (XLA)"] == "n/a"
  assert table[1]["memory per run (estimate)"] == "486 KiB"  # not "0 MiB"


@pytest.mark.parametrize(
  "seconds, text",
  [(None, "n/a"), (math.nan, "n/a"), (0.000163, "0.00016"), (0.04631, "0.0463"), (2.214, "2.21"),
   (18.44, "18.4"), (99.96, "100"), (1543.2, "1543")],
)  # fmt: skip
def test_seconds_keep_three_digits_from_milliseconds_to_minutes(seconds, text):
  assert timing.seconds_text(seconds) == text


def test_the_round_line_gives_the_pace_and_the_wait_or_says_it_is_older():
  """timing.json's seconds per round (from one round's results to the next's) and the wait
  for the device; a timing.json without the wait (an earlier swapjax) timed each round until
  its results only, and its line says so."""
  now = {"round_s_median": 0.0463, "round_s_min": 0.0213, "round_s_max": 0.117,
         "wait_s_median": 0.00512}  # fmt: skip
  line = [x for x in timing.timing_lines(now) if "seconds per round" in x]
  assert line == [
    "- seconds per round (from one round's results to the next's, the host's work included): "
    "median 0.0463, min 0.0213, max 0.117; of it waiting for the device's results: median "
    "0.00512"
  ]
  older = {k: v for k, v in now.items() if k != "wait_s_median"}
  line = [x for x in timing.timing_lines(older) if "seconds per round" in x]
  assert line == [
    "- seconds per round until its results (timing.json of an earlier swapjax): median 0.0463, "
    "min 0.0213, max 0.117"
  ]


def test_rounds_under_a_minute_sum_to_seconds_with_their_digits():
  rows = [{"epoch": e, "run": r, "time/round_s": 0.0463} for e in range(1, 21) for r in range(3)]
  assert "their `time/round_s` summed: 0.926 s (every" in timing.timing_lines(None, rows)[3]


def test_without_holdout_there_is_no_holdout_column(tmp_path):
  rows = [r for r in _rows() if r["group"] == FULL]
  lines = curves_report({}, rows, tmp_path)
  assert "holdout acc" not in rt.table(lines, "group | seeds")[0]


def test_without_a_test_split_there_are_no_test_columns(tmp_path):
  """A data set without test images (iris): no test column of n/a cells, and the note says why;
  one test evaluation in any row keeps them all."""
  rows = [{k: v for k, v in r.items() if not k.startswith(("test/", "holdout/"))} for r in _rows()]
  lines = curves_report({}, rows, tmp_path)
  table = rt.table(lines, "group | seeds")
  final = [name for name, _ in curves.FINAL_COLUMNS]
  assert len(table) == 2 and list(table[0]) == [
    "group",
    "seeds",
    "last epoch",
    *final,
    "best val acc",
  ]
  assert "No row has a test evaluation (no test split, or none due yet)" in "\n".join(lines)
  rows[-1]["test/loss"] = 0.5
  table = rt.table(curves_report({}, rows, tmp_path), "group | seeds")
  assert {"test epoch", "test acc", "test loss", "best test acc"} <= set(table[0])


def test_comparison_with_the_report_at_its_epoch_or_our_last(tmp_path):
  rows = _rows()
  lines = curves_report({"reference": REFERENCE}, rows, tmp_path)
  table = {row["group"]: row for row in rt.table(lines, "group | report epochs")}
  assert list(table) == [f"`{SMALL}`", f"`{FULL}`"]
  for group, epoch, shown in [(SMALL, 3, "3"), (FULL, 5, "5 (report's 40 not reached)")]:
    row, ref = table[f"`{group}`"], REFERENCE[group]
    assert row["report epochs"] == str(ref["epochs"])
    assert row["measured at epoch"] == shown
    assert row["report train acc"] == f"{ref['train_acc']:.4f}"
    assert row["report val acc"] == f"{ref['val_acc']:.4f}"
    assert row["report val loss"] == f"{ref['val_loss']:.4f}"
    rt.assert_stat(row["train epoch_acc"], _at(rows, group, epoch, "train/epoch_acc"))
    rt.assert_stat(row["val acc"], _at(rows, group, epoch, "val/acc"))
    rt.assert_stat(row["val loss"], _at(rows, group, epoch, "val/loss"))
  assert "In the report but not in this study: `train_fraction=0.2,dropout_rate=0.5`" in lines
  assert "## Compared with the report" not in curves_report({}, rows, tmp_path)


def test_collapse_is_listed_with_its_epoch(tmp_path):
  lines = curves_report(TEN_CLASSES, _rows(), tmp_path)
  collapsed = [line for line in lines if "collapsed at epoch" in line]
  assert len(collapsed) == 1
  assert collapsed[0].startswith(f"- `{FULL}`, seed 1, run 4: collapsed at epoch 4 (")
  # With 5 classes the floor is 0.3: 0.1 still collapses, the healthy runs (>= 0.6) do not.
  lines = curves_report({"layers": ["flatten", "dense:5"]}, _rows(), tmp_path)
  assert [line for line in lines if "collapsed at epoch" in line] == collapsed


def test_collapse_follows_the_tasks_chance_and_each_variants_network(tmp_path):
  """The study's health rule (`layers.collapse_bounds`): sigmoid outputs (chance 0.5) check
  losses only, and say so; a variant with 5 outputs is judged at 0.3 after 0.6 and named."""
  rows = _rows()
  sigmoid = curves_report({"task": "sigmoid", "layers": ["dense:1"]}, rows, tmp_path)
  assert "No run collapsed." in sigmoid
  assert any(line.startswith("A run collapses when a loss becomes null") and "0.5" in line
             for line in sigmoid)  # fmt: skip
  rows[1]["val/loss"] = math.nan
  sigmoid = curves_report({"task": "sigmoid", "layers": ["dense:1"]}, rows, tmp_path)
  assert [line for line in sigmoid if "collapsed at" in line] == [
    f"- `{SMALL}`, seed 0, run 0: collapsed at epoch 2 (val/loss = nan)"
  ]
  rows = _rows()
  for r in rows:
    r["variant"] = "five" if r["group"] == FULL else "base"
  config = {"layers": ["flatten", "dense:10"], "variants": "base:;five:layers=flatten,dense:5"}
  lines = curves_report(config, rows, tmp_path)
  rules = [line for line in lines if line.startswith("A run collapses")]
  assert len(rules) == 2 and f"`{SMALL}`" in rules[0] and f"`{FULL}`" in rules[1]
  assert "falls to <= 0.15" in rules[0] and "above 0.6, falls to <= 0.3" in rules[1]
  assert len([line for line in lines if "collapsed at epoch" in line]) == 1


def test_a_config_json_it_cannot_read_gets_the_default_rule():
  """A hand-made or damaged config.json (an unknown layer or model, a bad variant): the
  section is still written, at the defaults' rule (10 classes), and the memorization report's
  chance line reads the same defaults."""
  for config in ({"layers": ["bogus:3"]}, {"model": "no_such"}, {"variants": "a:layers=dense:x"}):
    rule = curves.collapse_rules(config)[0]
    assert (rule.above, rule.floor) == (0.5, 0.15), config
    assert layers.chance_accuracy(files.study_configs(config)[0]) == 0.1, config


@pytest.mark.parametrize(
  "changes, drops",
  [
    ({"layers": "dense:12,relu,dense:3"}, False),
    ({"layers": "dense:12,relu,dropout,dense:3"}, False),  # the runs' dropout_rate: 0 only
    ({"layers": "dense:12,relu,dropout,dense:3", "dropout_rate": (0.0, 0.5)}, True),
    ({"layers": "dense:12,relu,dropout:0,dense:3", "dropout_rate": (0.5,)}, False),  # its own
    ({"layers": "dense:12,relu,dropout:0.2,dense:3"}, True),
    ({"layers": "rnn:16:tanh,dense:3"}, False),
    ({"layers": "rnn:16:tanh:0:0.3,dense:3"}, True),  # recurrent dropout
    ({"layers": "dense:12,dense:3", "variants": "a:;b:layers=dense:12,dropout:0.5,dense:3"}, True),
    ({"layers": (), "model": "cnn_004_dropout", "dropout_rate": (0.0, 0.5)}, True),
    ({"layers": "dense:12,relu,dropout:0.2,dense:3", "dropout": False}, False),  # fixed rates off
  ],
)
def test_a_study_drops_units_where_a_layer_does_at_a_rate_above_0(changes, drops):
  config = registry.get_config("iris").replace(**changes).to_json()
  assert files.drops_units(config) is drops


def test_without_dropout_the_report_and_its_legend_do_not_name_it(tmp_path):
  """The iris network has no dropout: the table's note and the figure's legend say what Keras'
  epoch mean and the after-epoch accuracy are without "dropout active" and "dropout off";
  a config.json that does not read keeps the words that hold either way."""
  assert files.drops_units({"layers": "nonsense"})
  config = {**registry.get_config("iris").to_json(), "drops_units": False}
  (tmp_path / "plain").mkdir()
  text = "\n".join(curves_report(config, _rows(), tmp_path / "plain"))
  assert "Keras' running mean over the epoch's batches (the number" in text
  assert "dropout" not in text.split("## Ranking")[0].replace("dropout_rate", "")
  text = "\n".join(curves_report({}, _rows(), tmp_path))
  assert "batches with dropout active (the number" in text

  labels = []
  legend = plotting.finish

  def finish(plt, fig, axes, used, path, ncol=None):
    labels.append(axes[0].get_legend_handles_labels()[1])
    legend(plt, fig, axes, used, path, ncol)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(plotting, "finish", finish)
    curves_report(config, _rows(), tmp_path / "plain")
    curves_report({}, _rows(), tmp_path)
  assert labels[0][:2] == ["train (Keras: epoch mean)", "train (after epoch)"]
  assert labels[2][:2] == [
    "train (Keras: epoch mean, dropout on)",
    "train (after epoch, dropout off)",
  ]


def test_long_lists_of_runs_name_the_first_and_count_the_rest(tmp_path):
  """A study of many runs: each list of the collapse section names MAX_LISTED runs, then how
  many it holds per group."""
  rows = []
  for run in range(30):
    for epoch in range(1, 4):
      acc = 0.9 if epoch < 3 else 0.3  # falls below half its best, above the collapse floor
      group = "a" if run < 25 else "b"
      rows.append({"epoch": epoch, "run": run, "group": group, "seed": run, "train/acc": acc})
  lines = curves_report(TEN_CLASSES, rows, tmp_path)
  fell = [line for line in lines if "fell from" in line]
  assert len(fell) == curves.MAX_LISTED
  assert "- and 10 more: 30 of 30 runs (`a` 25, `b` 5)" in lines


def test_no_collapse_and_non_finite_losses(tmp_path):
  rows = [r for r in _rows() if r["group"] == SMALL]
  assert "No run collapsed." in curves_report({}, rows, tmp_path)
  rows[1]["val/loss"] = math.nan  # run 0, epoch 2
  rows[7]["train/epoch_loss"] = None  # run 1, epoch 3, after finite values
  lines = curves_report({}, rows, tmp_path)
  assert f"- `{SMALL}`, seed 0, run 0: collapsed at epoch 2 (val/loss = nan)" in lines
  assert f"- `{SMALL}`, seed 1, run 1: collapsed at epoch 3 (train/epoch_loss became null)" in lines


def test_a_run_that_never_learned_has_not_collapsed(tmp_path):
  rows = [dict(r, **{"train/epoch_acc": 0.1, "train/acc": 0.1}) for r in _rows()]
  assert "No run collapsed." in curves_report({}, rows, tmp_path)


def test_a_run_whose_training_fell_back_is_listed(tmp_path):
  """A run whose training accuracy falls below half its best (a best above 0.5) without
  reaching the collapse bound is named with both epochs; a dip to above half is not."""
  rows = [r for r in _rows() if r["group"] == SMALL]
  assert not any("fell from" in line for line in curves_report({}, rows, tmp_path))
  for r in rows:
    if r["run"] == 2 and r["epoch"] >= 4:
      r["train/acc"] = 0.3  # best 0.80 at epoch 3; 0.3 is above 1.5 / 10 classes
    if r["run"] == 1 and r["epoch"] == 5:
      r["train/acc"] = 0.5  # more than half its best: not listed
  lines = curves_report(TEN_CLASSES, rows, tmp_path)
  best = max(r["train/acc"] for r in rows if r["run"] == 2 and r["epoch"] <= 3)
  fell = [line for line in lines if "fell from" in line]
  assert fell == [
    f"- `{SMALL}`, seed 2, run 2: training accuracy fell from {best:.3f} (epoch 3) to 0.300 "
    "at epoch 4"
  ]
  assert "No run collapsed." in lines


def test_figures_are_written(tmp_path):
  lines = curves_report({}, _rows(), tmp_path)
  for name in ("curves_accuracy", "curves_loss"):
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert f"plots/{name}.png" in "\n".join(lines)


def test_without_matplotlib_the_tables_are_still_written(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  lines = curves_report({"reference": REFERENCE}, _rows(), tmp_path)
  assert len(rt.table(lines, "group | seeds")) == 2
  assert len(rt.table(lines, "group | report epochs")) == 2
  assert lines[-1] == plotting.NO_PLOTS and not list(tmp_path.iterdir())


def test_reference_is_read_from_config_json_before_the_experiment_module(tmp_path, monkeypatch):
  """Guards: a workdir's recorded `reference` ignored for today's experiment module, or the
  module not consulted for workdirs written without the key."""
  module = registry.registry()["binary_addition"]
  from_module = references.experiment_reference({"experiment": "binary_addition"})
  assert from_module == {"reported": module.REFERENCE, "true_parameters": {}}
  recorded = {"reported": REFERENCE, "true_parameters": {SMALL: {"w": 1.0}}}
  meta = {"experiment": "binary_addition", references.META_KEY: recorded}
  assert references.experiment_reference(meta) == recorded
  nothing = {"reported": {}, "true_parameters": {}}
  assert references.experiment_reference({"experiment": "no_such_experiment"}) == nothing
  config = {"study": "memorize", "report": "curves"}
  workdir = tmp_path / "w"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({**meta, "config": config}))
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows()))
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  text = build.write(workdir).read_text()
  assert [r["group"] for r in rt.table(text, "group | report epochs")] == [
    f"`{SMALL}`",
    f"`{FULL}`",
  ]


def test_a_long_runs_test_markers_are_thinned_to_the_last_test_epoch():
  """Past MAX_MARKERS test epochs, 1 in `step` is marked, counted back from the last (which is
  always marked), so the validation curve beneath them shows; fewer are all marked."""
  from swapjax.report import curves

  keep, step = curves.thinned(np.arange(5, 45, 5))
  assert step == 1 and keep.tolist() == list(range(8))
  xs = np.arange(5, 4001, 5)  # 4,000 epochs, a test every 5: 800 test epochs
  keep, step = curves.thinned(xs)
  assert step == 20 and len(keep) == 40 and xs[keep[-1]] == 4000
  assert np.all(np.diff(xs[keep]) == 100)
  keep, step = curves.thinned(np.arange(41))
  assert step == 2 and keep[-1] == 40 and keep[0] == 0 and len(keep) == 21


def test_the_figure_marks_a_long_runs_tests_sparsely_and_says_so():
  from swapjax.report import curves

  plt = plotting.pyplot()
  fig, ax = plt.subplots()
  rows = [
    {"epoch": e, "run": r, "test/loss": 1.0 / e + r if e % 5 == 0 else None}
    for r in range(2)
    for e in range(1, 1001)
  ]
  curves._markers(ax, stats.RoundSeries(rows, "epoch"), "test/loss", "test", "C3", "o")
  (bars,) = ax.containers
  xs, ys = bars.lines[0].get_data()
  assert len(xs) == 40 and xs[-1] == 1000 and xs[0] == 25
  assert np.allclose(ys, 1.0 / xs + 0.5)
  assert bars.get_label() == "test (1 in 5 test epochs)"
  (line,) = ax.plot([1, 1000], [0.5, 0.5])  # a curve, as the validation band's mean line
  for artist in (bars.lines[0], *bars.lines[2]):  # the markers and their error bars
    assert artist.get_zorder() < line.get_zorder()
  plt.close(fig)


def test_the_panels_of_a_figure_share_one_legend_entry_for_their_markers():
  """Panels thinned by different steps (or not at all) say so in one entry, not one each."""

  def series(tests: int):
    rows = [{"epoch": e, "run": 0, "test/acc": 0.5} for e in range(1, tests + 1)]
    return stats.RoundSeries(rows, "epoch")

  label = lambda *counts: curves._figure_label(  # noqa: E731
    {i: series(n) for i, n in enumerate(counts)}, "test/acc", "test"
  )
  assert label(10, 40) == "test"
  assert label(200, 199) == "test (1 in 5 test epochs)"
  assert label(11, 120) == "test (1 in 1-3 test epochs)"
  assert label(11) == "test" and curves._figure_label({}, "test/acc", "test") == "test"


def test_a_group_compared_at_each_of_the_reports_epoch_counts(tmp_path):
  """A group's reference may be a list (report 003's 20% half ran 40, 400 and 4,000 epochs):
  one comparison row per epoch count, each measured at its own epoch."""
  from experiments import fashion_dropout

  rows = _rows()
  early, late = dict(REFERENCE[SMALL], epochs=2), dict(REFERENCE[SMALL], epochs=400, val_acc=0.88)
  lines = curves_report({"reference": {SMALL: [early, late]}}, rows, tmp_path)
  start = lines.index("## Compared with the report")
  body = [x for x in lines[start:] if x.startswith(f"| `{SMALL}`")]
  assert [x.split(" | ")[1:3] for x in body] == [
    ["2", "2"],
    ["400", "5 (report's 400 not reached)"],
  ]
  assert "| 0.8800 |" in body[1] and "| 0.8650 |" in body[0]
  entries = fashion_dropout.REFERENCE["train_fraction=0.2,dropout_rate=0.0"]
  assert [e["epochs"] for e in entries] == [40, 400, 4000]
  assert entries[2]["train_acc"] == 0.0977 and entries[2]["val_loss"] == 14.5869


def test_timing_sums_the_rounds_of_every_process_from_the_rows():
  """A resumed study's timing.json covers its last process: the rounds' time comes from the
  rows, once per round (every run of a round carries the same time/round_s). Guards: a round
  counted once per run, the rows' time left out, a study without timing.json losing the line."""
  rows = [{"epoch": e, "run": r, "time/round_s": 1000.0 + e} for e in range(1, 9) for r in range(3)]
  lines = timing.timing_lines(None, rows)
  assert lines[3] == (
    "- rounds in metrics.jsonl: 8 (1-8), their `time/round_s` summed: 2 h 14 min (every "
    "process that ran them)"
  )  # 8,036 s: 133.9 min
  assert (
    lines[4] == "- timing.json: none (written when the study ends: its last round or an early stop)"
  )
  last_process = {"device": "cpu", "backend": "cpu", "rounds_timed": 3, "compile_s": 1.0}
  lines = timing.timing_lines(last_process, rows)
  assert "the lines below: timing.json, of the process that ended the study)" in lines[3]
  assert "rounds timed: 3" in lines[5]
  assert timing.timing_lines(None, []) == []
  no_times = [{"round": 1, "run": 0}]
  assert timing.timing_lines(last_process, no_times)[3].startswith("- device: cpu")
  assert [timing.duration(s) for s in (33.64, 725, 3599.6, 9660)] == [
    "34 s",
    "12 min 5 s",
    "1 h 0 min",
    "2 h 41 min",
  ]


def test_breakdowns_after_a_fit_are_listed_with_their_recovery(tmp_path):
  """A run at training accuracy 1.0 that falls below 0.99 for a few epochs (report 003's long
  run from epoch 1,675) is listed with the epoch, its lowest accuracy and the epoch it is back;
  dips before the fit, or to 0.995, are not. Guards: breakdowns not listed, or listed before
  the fit, or a recovery epoch off by one."""
  from swapjax.report import curves

  acc = [0.5, 0.97, 0.999, 1.0, 0.995, 1.0, 0.92, 0.98, 1.0, 1.0, 0.96]
  rows = [
    {"epoch": e, "run": 0, "group": SMALL, "seed": 0, "train/acc": a, "val/loss": 1.0}
    for e, a in enumerate(acc, 1)
  ]
  assert curves.breakdowns(rows) == [(7, 0.92, 9), (11, 0.96, None)]
  lines = curves_report({}, rows, tmp_path)
  told = "epoch 7 (down to 0.920, back from epoch 9); epoch 11 (down to 0.960, not yet back)"
  assert f"- `{SMALL}`, seed 0, run 0: {told}" in lines
  assert (
    curves.breakdowns([dict(r, **{"train/acc": min(r["train/acc"], 0.98)}) for r in rows]) == []
  )
