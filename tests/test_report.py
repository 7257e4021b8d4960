"""report.md and plots from metrics rows alone (no training)."""

import sys

import matplotlib.axes
import matplotlib.image
import numpy as np
import pytest
import report_tables as rt

from swapjax.report import memorization, plotting, stats, swap

CONFIG = {"pool_size": 300, "validation_split": 0.1, "batch_size": 32, "fit_target": 0.99}


def _rows():
  """Level 0.0 fits at epoch 2, level 1.0 never; the test set only at epochs 1 and 3."""
  return _sweep_rows({(1e-4, 0.0): 2, (1e-4, 1.0): None}, test_epochs=(1, 3))


@pytest.fixture
def plot_calls(monkeypatch):
  """(label, y data) of every `Axes.plot` call while the test runs."""
  calls = []
  original = matplotlib.axes.Axes.plot

  def recording_plot(self, *args, **kwargs):
    calls.append((kwargs.get("label"), list(args[1]) if len(args) > 1 else None))
    return original(self, *args, **kwargs)

  monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
  return calls


def test_memorize_report_marks_runs_that_did_not_fit(tmp_path, plot_calls):
  lines = memorization.memorize_report(CONFIG, _rows(), tmp_path)
  table = "\n".join(lines)
  assert "| label_corruption=0.0 | 1 | 1/1 | 2 ± 0 |" in table
  assert "| label_corruption=1.0 | 1 | 0/1 | n/a |" in table
  assert ("some runs not fit by epoch 3", [3]) in plot_calls
  assert (tmp_path / "zhang_figure1.png").stat().st_size > 0


def test_without_matplotlib_the_tables_are_still_written(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  lines = memorization.memorize_report(CONFIG, _rows(), tmp_path)
  assert "| label_corruption=1.0 | 1 | 0/1 | n/a |" in "\n".join(lines)
  assert lines[-1] == plotting.NO_PLOTS and not list(tmp_path.iterdir())


def _sweep_rows(fit_epochs, test_epochs=(1, 2, 3)):
  """Three epochs per run; `fit_epochs` maps (learning rate, level) -> fit epoch or None."""
  rows = []
  for run, ((lr, level), fit) in enumerate(fit_epochs.items()):
    for epoch in (1, 2, 3):
      fitted = fit if fit is not None and epoch >= fit else None
      rows.append(
        {
          "epoch": epoch,
          "run": run,
          "seed": 0,
          "label_corruption": level,
          "input_corruption": "none",
          "learning_rate": lr,
          "train/loss": 1.0,
          "train/acc": 0.995 if fitted else 0.5,
          "val/loss": 2.3,
          "val/acc": 0.1,
          "test/loss": 2.0 if epoch in test_epochs else None,
          "test/acc": 0.9 - 0.8 * level if epoch in test_epochs else None,
          "fit_epoch": fitted,
        }
      )
  return rows


def test_ordering_of_zhang_et_al_is_checked_per_learning_rate(tmp_path, plot_calls):
  rows = _sweep_rows(
    {
      (1e-4, 0.0): 1,
      (1e-4, 0.5): 2,
      (1e-4, 1.0): None,  # not fit: counts as longer than any fitted run
      (1e-3, 0.0): 1,
      (1e-3, 0.5): 3,
      (1e-3, 1.0): 2,
    }
  )
  text = "\n".join(memorization.memorize_report(CONFIG, rows, tmp_path))
  labels = [label for label, _ in plot_calls]
  assert "| 0.0001 | 1.0 | 0/1 | > 3 | 0.1000 |" in text
  assert "| 0.001 | 0.5 | 1/1 | 3.0 | 0.5000 |" in text
  assert "learning rate 0.0001: time to fit rises with every step of corruption: yes" in text
  assert (
    "learning rate 0.001: time to fit rises with every step of corruption: no (0.5 -> 1.0: 3 -> 2)"
    in text
  )
  assert "learning rate 0.001: test accuracy falls with every step of corruption: yes" in text
  # Figure 1b and 1c: one series per learning rate, not the two pooled.
  assert "lr=0.0001, mean epochs to fit (fitted runs)" in labels
  assert "lr=0.001, mean epochs to fit (fitted runs)" in labels
  assert "lr=0.0001, some runs not fit by epoch 3" in labels


def test_ordering_among_unfit_levels_is_not_yet_known(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  rows = _sweep_rows({(1e-4, 0.0): 2, (1e-4, 0.5): None, (1e-4, 1.0): None})
  text = "\n".join(memorization.memorize_report(CONFIG, rows, tmp_path))
  assert (
    "time to fit rises with every step of corruption: not yet known "
    "(0.5 -> 1.0: not fit -> not fit)"
  ) in text


def test_one_level_has_no_ordering_section(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  text = "\n".join(memorization.memorize_report(CONFIG, _sweep_rows({(1e-4, 1.0): 2}), tmp_path))
  assert "ordering" not in text


# ------------------------------------------------ every table cell against numpy
# The report's spread is the population std over seeds (np.std, ddof=0) in the tables and the bands.
SWAP_ACC = tuple(
  f"{member}/{split}_acc"
  for split in ("test", "test_unseen", "holdout", "train")
  for member in ("AtoB", "BtoA")
)
SWAP_METRICS = SWAP_ACC + ("AtoB/test_loss", "BtoA/test_loss", "AtoB/train_loss", "BtoA/train_loss")
SWAP_GROUPS = (("none", 0), ("swap", 1))  # (condition, warmup); three seeds each
SEEDS = 3
ROUNDS = 4


@pytest.mark.parametrize(
  ("mean", "std", "integral", "shown"),
  [
    (275.5, 24.5, False, "276 ± 25"),  # issue 16's "275.5000 ± 24.5000"
    (0.8960, 0.0123, False, "0.896 ± 0.012"),
    (0.8960, 0.0, False, "0.8960 ± 0"),
    (275.5, 0.0, False, "275.5 ± 0"),
    (3.0, 0.0, True, "3 ± 0"),
    (0.5, 0.0996, False, "0.50 ± 0.10"),  # the std rounds up to 2 digits, not to 0.100
    (1234.0, 245.0, False, "1230 ± 250"),
    (-0.00004, 0.0123, False, "0.000 ± 0.012"),  # no "-0.000"
    (0.12345, 0.000149, False, "0.12345 ± 0.00015"),
  ],
)
def test_format_stat_rounds_to_what_the_spread_supports(mean, std, integral, shown):
  assert stats.format_stat(mean, std, integral) == shown


def test_stat_without_spread_and_for_counts():
  assert stats.mean_std([0.896, 0.896, 0.896]) == "0.8960 ± 0"  # no float-noise spread
  assert stats.mean_std([2, 2]) == "2 ± 0"
  assert stats.mean_std([250, 301]) == "276 ± 26"  # counts with spread: as any number
  assert stats.mean_std([None, float("nan")]) == "n/a"


def test_round_series_of_a_stopped_run_and_sparse_test_epochs():
  """A run stopped at epoch 2 repeats its row; test metrics every other epoch: only the epochs
  every run has count, and a repeated round keeps the later row."""
  rows = [
    {"run": 1, "epoch": 1, "test": 0.5},
    {"run": 0, "epoch": 1, "test": 0.4},
    {"run": 1, "epoch": 2, "test": 0.6},
    {"run": 0, "epoch": 3, "test": 0.7},
    {"run": 1, "epoch": 3, "test": 0.6},
    {"run": 1, "epoch": 3, "test": 0.65},
  ]
  xs, values = stats.RoundSeries(rows, "epoch")("test")
  assert xs.tolist() == [1, 3]
  assert values.tolist() == [[0.5, 0.65], [0.4, 0.7]]  # run 1 first: it appears first
  assert stats.RoundSeries(rows, "epoch")("absent") is None


def _per_round_by_dicts(rows, round_key, metric):
  """`stats.RoundSeries` row by row: {run: {round: value}} of the runs with the metric in the
  order of their first rows, the later row of a round kept, the rounds every such run has."""
  by_run = {r["run"]: {} for r in rows}
  for r in rows:
    if r.get(metric) is not None:
      by_run[r["run"]][r[round_key]] = r[metric]
  by_run = {run: values for run, values in by_run.items() if values}
  if not by_run:
    return None
  xs = sorted(set.intersection(*(set(values) for values in by_run.values())))
  return xs, [[values[x] for x in xs] for values in by_run.values()]


@pytest.mark.parametrize("seed", range(20))
def test_round_series_match_the_rows_one_by_one(seed):
  """Random rows: runs in any order, rounds missing, repeated or null, runs without the metric
  at all, whole numbers and floats: every metric's series is the row-by-row one."""
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(int(rng.integers(1, 60))):
    row = {"run": int(rng.integers(0, 6)), "epoch": int(rng.integers(1, 8))}
    for metric in ("a", "b", "c"):
      if rng.random() < 0.8 and not (metric == "c" and row["run"] == 0):
        row[metric] = None if rng.random() < 0.2 else float(rng.normal())
    row["n"] = int(rng.integers(0, 100))
    rows.append(row)
  series = stats.RoundSeries(rows, "epoch")
  for metric in ("a", "b", "c", "n", "absent"):
    expected = _per_round_by_dicts(rows, "epoch", metric)
    found = series(metric)
    if expected is None:
      assert found is None
      continue
    assert found[0].tolist() == expected[0]
    assert found[1].shape == (len(expected[1]), len(expected[0]))
    assert found[1].tolist() == expected[1]
    assert found[1].flags.c_contiguous  # a figure's std over runs: the same sums, bit for bit


def test_round_series_of_text_and_of_one_row():
  rows = [{"run": 3, "epoch": 2, "group": "x", "m": 1.5}, {"run": 3, "epoch": 2, "group": "y"}]
  series = stats.RoundSeries(rows, "epoch")
  assert series("group")[1].tolist() == [["y"]]  # the later row of a repeated round
  xs, values = series("m")
  assert xs.tolist() == [2] and values.tolist() == [[1.5]]


def _swap_study():
  """(rows, values_GxSxRxK, moved_GxSxR): seeds differ, every metric changes from round to round."""
  rng = np.random.default_rng(11)
  values = rng.uniform(0.05, 0.95, (len(SWAP_GROUPS), SEEDS, ROUNDS, len(SWAP_METRICS)))
  moved = rng.integers(1, 40, (len(SWAP_GROUPS), SEEDS, ROUNDS))
  moved[1, :, 0] = 0  # warmup 1: nothing moves in round 1
  rows = []
  for rnd in range(ROUNDS):
    for g, (condition, warmup) in enumerate(SWAP_GROUPS):
      for seed in range(SEEDS):
        row = {
          "round": rnd + 1,
          "run": g * SEEDS + seed,
          "condition": condition,
          "warmup": warmup,
          "seed": seed,
          "learning_rate": 0.01,
          "swap/moved": int(moved[g, seed, rnd]),
        }
        row.update(zip(SWAP_METRICS, values[g, seed, rnd].tolist(), strict=True))
        rows.append(row)
  return rows, values, moved


def test_swap_table_every_cell_is_the_final_round_over_seeds(tmp_path, monkeypatch):
  """Guards: the table showing round 1 (or any round but the last), a spread with another ddof or
  over another group's runs, and `moved in total` summing only some rounds."""
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  rows, values_GxSxRxK, moved_GxSxR = _swap_study()
  lines = swap.swap_report({}, rows, tmp_path)
  assert lines[0].startswith(f"## Final accuracies (round {ROUNDS};")
  table = rt.table(lines, "group")
  assert [r["group"] for r in table] == [f"condition={c}, warmup={w}" for c, w in SWAP_GROUPS]
  columns = {f"{m.split('/')[0]} {m.split('/')[1].removesuffix('_acc')}": m for m in SWAP_ACC}
  assert set(columns) | {"group", "seeds", "moved in total"} == set(table[0])
  for g, row in enumerate(table):
    assert int(row["seeds"]) == SEEDS
    for column, metric in columns.items():
      rt.assert_stat(row[column], values_GxSxRxK[g, :, -1, SWAP_METRICS.index(metric)])
    rt.assert_stat(row["moved in total"], moved_GxSxR[g].sum(axis=1), integral=True)


@pytest.fixture
def band_calls(monkeypatch):
  """(label, x, mean, lower, upper) of every `Axes.plot` followed by `Axes.fill_between`."""
  calls, last_plot = [], []
  plot, fill_between = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.fill_between

  def recording_plot(self, *args, **kwargs):
    last_plot[:] = [(kwargs.get("label"), np.asarray(args[0]), np.asarray(args[1]))]
    return plot(self, *args, **kwargs)

  def recording_fill_between(self, x, y1, y2, **kwargs):
    calls.append((*last_plot[0], np.asarray(y1), np.asarray(y2)))
    return fill_between(self, x, y1, y2, **kwargs)

  monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)
  monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", recording_fill_between)
  return calls


def _assert_bands(calls, expected):
  """`calls` and `expected` hold the same (label, x, mean, lower, upper) series, in any order."""
  left = list(calls)
  for label, x, mean, lower, upper in expected:
    match = [
      i
      for i, (lab, xs, ys, lo, hi) in enumerate(left)
      if lab == label
      and len(xs) == len(x)
      and np.allclose(xs, x)
      and np.allclose(ys, mean)
      and np.allclose(lo, lower)
      and np.allclose(hi, upper)
    ]
    assert match, f"no band {label} with x {x}, mean {mean}; drawn: {[c[:3] for c in calls]}"
    left.pop(match[0])
  assert not left, f"bands drawn but not expected: {[c[:3] for c in left]}"


def test_swap_plots_draw_the_per_round_mean_and_std_over_seeds(tmp_path, band_calls):
  """Guards: plotted curves that are not the per-round mean ± std (ddof 0) of their own group."""
  rows, values_GxSxRxK, _ = _swap_study()
  swap.swap_report({}, rows, tmp_path)
  labels = {f"{m}_{s}": (m, s) for s in ("test", "train") for m in ("AtoB", "BtoA")}
  expected = []
  for g in range(len(SWAP_GROUPS)):

    def band(label, metric, g=g):
      ys_SxR = values_GxSxRxK[g, :, :, SWAP_METRICS.index(metric)]
      mean, std = ys_SxR.mean(0), ys_SxR.std(0, ddof=rt.SPREAD_DDOF)
      return label, np.arange(1, ROUNDS + 1), mean, mean - std, mean + std

    for kind in ("acc", "loss"):
      expected += [band(label, f"{m}/{s}_{kind}") for label, (m, s) in labels.items()]
    honest = [m for m in SWAP_ACC if "train" not in m]
    expected += [band(metric, metric) for metric in honest]
  _assert_bands(band_calls, expected)
  for name in ("accuracy", "loss", "honest_accuracy"):
    assert (tmp_path / f"{name}.png").stat().st_size > 0


# Memorize: early stop freezes a fitted run, so its later rows repeat its fit epoch's row.
EPOCHS = 7
TEST_EPOCHS = (1, 3, 6, 7)  # test_every=3: the first, every third and the last epoch
MEMORIZE_FITS = {  # (input corruption, label corruption, learning rate) -> fit epoch per seed
  ("none", 0.0, 1e-3): (3, None, 6),  # seed 0 stops at a test epoch, repeating its test loss
  ("none", 1.0, 1e-3): (5, None, 7),  # seed 0 stops between test epochs: last test at epoch 3
  ("none", 0.0, 1e-4): (2, 4, 3),
  ("none", 1.0, 1e-4): (None, None, None),
  ("gaussian", 0.0, 1e-3): (2, 5, None),  # not a clean-image group: outside the ordering table
}
MEMORIZE_METRICS = ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc")
TEST_LOSS = MEMORIZE_METRICS.index("test/loss")


def _memorize_study():
  """(rows, values_GxSxExK): each seed's values differ and change every epoch."""
  rng = np.random.default_rng(7)
  values = rng.uniform(0.05, 0.95, (len(MEMORIZE_FITS), SEEDS, EPOCHS, len(MEMORIZE_METRICS)))
  rows = []
  for epoch in range(1, EPOCHS + 1):
    for g, ((inputs, labels, lr), fits) in enumerate(MEMORIZE_FITS.items()):
      for seed, fit in enumerate(fits):
        shown = min(epoch, fit or EPOCHS)  # a stopped run repeats its fit epoch's row
        metrics = dict(zip(MEMORIZE_METRICS, values[g, seed, shown - 1].tolist(), strict=True))
        if shown not in TEST_EPOCHS:
          metrics["test/loss"] = metrics["test/acc"] = None
        rows.append(
          {
            "epoch": epoch,
            "run": g * SEEDS + seed,
            "seed": seed,
            "input_corruption": inputs,
            "label_corruption": labels,
            "learning_rate": lr,
            **metrics,
            "fit_epoch": fit if fit is not None and epoch >= fit else None,
          }
        )
  return rows, values


def _memorize_expected(values_GxSxExK):
  """Per group: fit epochs, and each run's last values and last test values (numpy, by index)."""
  expected = {}
  for g, (key, fits) in enumerate(MEMORIZE_FITS.items()):
    last = np.array([(fit or EPOCHS) - 1 for fit in fits])
    last_test = np.array([max(e for e in TEST_EPOCHS if e <= i + 1) - 1 for i in last])
    at = lambda i, metric, g=g: values_GxSxExK[
      g, np.arange(SEEDS), i, MEMORIZE_METRICS.index(metric)
    ]
    expected[key] = {
      "fits": [f for f in fits if f is not None],
      "train acc": at(last, "train/acc"),
      "val acc": at(last, "val/acc"),
      "test acc": at(last_test, "test/acc"),
      "test loss": at(last_test, "test/loss"),
    }
  return expected


def test_memorize_table_every_cell_over_seeds(tmp_path, monkeypatch):
  """Guards: test accuracy/loss from the first test epoch (or the last row, where a stopped run has
  none) instead of each run's last test epoch; wrong epochs to fit, fit counts or spreads."""
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  rows, values = _memorize_study()
  expected = _memorize_expected(values)
  lines = memorization.memorize_report(CONFIG, rows, tmp_path)
  assert lines[0].startswith(f"## Per run group (after epoch {EPOCHS};")
  table = {row["group"]: row for row in rt.table(lines, "group")}
  names = ("input_corruption", "label_corruption", "learning_rate")
  assert set(table) == {
    ", ".join(f"{n}={v}" for n, v in zip(names, key, strict=True)) for key in MEMORIZE_FITS
  }
  for key, want in expected.items():
    row = table[", ".join(f"{n}={v}" for n, v in zip(names, key, strict=True))]
    assert int(row["seeds"]) == SEEDS
    assert row["fit"] == f"{len(want['fits'])}/{SEEDS}"
    if want["fits"]:
      rt.assert_stat(row["epochs to fit"], want["fits"], integral=True)
    else:
      assert row["epochs to fit"] == "n/a"
    for column in ("train acc", "val acc", "test acc", "test loss"):
      rt.assert_stat(row[column], want[column])


def test_memorize_ordering_table_pools_clean_images_per_level(tmp_path, monkeypatch):
  """Guards: the ordering table's fit counts, mean epochs to fit and mean last test accuracy per
  (learning rate, label corruption), over clean-image runs only."""
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  rows, values = _memorize_study()
  expected = _memorize_expected(values)
  lines = memorization.memorize_report(CONFIG, rows, tmp_path)
  table = {(r["learning rate"], r["label corruption"]): r for r in rt.table(lines, "learning rate")}
  clean = {key: want for key, want in expected.items() if key[0] == "none"}
  assert set(table) == {(str(lr), str(level)) for _, level, lr in clean}
  for (_, level, lr), want in clean.items():
    row = table[(str(lr), str(level))]
    assert row["runs fit"] == f"{len(want['fits'])}/{SEEDS}"
    if len(want["fits"]) < SEEDS:
      assert row["mean epochs to fit"] == f"> {EPOCHS}"
    else:
      assert rt.close(row["mean epochs to fit"], np.mean(want["fits"]), 1)
    assert rt.close(row["mean test acc"], np.mean(want["test acc"]), 4)


def _figure_label(key):
  """A memorize group's legend label in the figures: its varying values, compact."""
  inputs, labels, lr = key
  return f"{'clean' if inputs == 'none' else inputs}, labels {labels}, lr {lr}"


def test_memorize_plots_draw_the_per_epoch_mean_over_seeds(tmp_path, plot_calls):
  """Guards: Figure 1a's curves not being each group's per-epoch mean training loss over seeds (a
  stopped run counting with its frozen loss)."""
  rows, values = _memorize_study()
  memorization.memorize_report(CONFIG, rows, tmp_path)
  drawn = dict(plot_calls)
  for g, (key, fits) in enumerate(MEMORIZE_FITS.items()):
    shown = np.minimum(np.arange(1, EPOCHS + 1)[None], [[fit or EPOCHS] for fit in fits]) - 1
    loss_SxE = values[g, np.arange(SEEDS)[:, None], shown, MEMORIZE_METRICS.index("train/loss")]
    label = _figure_label(key)
    np.testing.assert_allclose(drawn[label], loss_SxE.mean(0))


def test_memorize_bands_match_runs_by_epoch(tmp_path, band_calls):
  """Guards: the bands (loss grid, training vs test accuracy, Figure 1a) not being the per-epoch
  mean ± std over each group's runs, and runs averaged by position rather than by epoch. A run
  stopped at a test epoch repeats its test loss every later epoch while the others have it every
  third: by position, the band of ("none", 0.0, 0.001) would put the other seeds' epoch 6 and 7
  test losses at epochs 4 and 5."""
  rows, values = _memorize_study()
  memorization.memorize_report(CONFIG, rows, tmp_path)
  epochs = np.arange(1, EPOCHS + 1)
  steps_per_epoch = -(-int(300 * 0.9) // 32)
  expected = []

  def band(label, x, ys_SxE):
    mean, std = ys_SxE.mean(0), ys_SxE.std(0, ddof=rt.SPREAD_DDOF)
    return label, x, mean, mean - std, mean + std

  for g, (key, fits) in enumerate(MEMORIZE_FITS.items()):
    shown_SxE = np.minimum(epochs[None], [[fit or EPOCHS] for fit in fits])
    at = lambda metric, shown, g=g: values[
      g, np.arange(SEEDS)[:, None], shown - 1, MEMORIZE_METRICS.index(metric)
    ]
    tested = np.isin(shown_SxE, TEST_EPOCHS).all(0)  # epochs where every run has a test metric
    expected += [
      band("train loss", epochs, at("train/loss", shown_SxE)),
      band("val loss", epochs, at("val/loss", shown_SxE)),
      band("test loss", epochs[tested], at("test/loss", shown_SxE[:, tested])),
      band("train accuracy (its own labels)", epochs, at("train/acc", shown_SxE)),
      band("test accuracy (true labels)", epochs[tested], at("test/acc", shown_SxE[:, tested])),
      band(  # Figure 1a: training loss against steps
        _figure_label(key),
        epochs * steps_per_epoch,
        at("train/loss", shown_SxE),
      ),
    ]
  _assert_bands(band_calls, expected)
  for name in ("train_vs_test", "zhang_figure1", "loss"):
    assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_one_corruption_level_draws_no_time_to_fit_plot(tmp_path):
  """memorize_mnist (one group, label corruption 1.0): no Figure 1 (a one-point "time to fit"
  and one learning curve); its headline figure, training vs test accuracy, is drawn. With two
  groups at one level Figure 1 keeps only (a)."""
  stale = tmp_path / "zhang_figure1.png"
  stale.write_bytes(b"from a study with more levels")
  lines = memorization.memorize_report(CONFIG, _sweep_rows({(1e-4, 1.0): 2}), tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "train_vs_test.png"]
  assert "![training vs test accuracy](plots/train_vs_test.png)" in lines
  assert not any("zhang_figure1" in line for line in lines)
  rows = _sweep_rows({(1e-4, 1.0): 2, (1e-3, 1.0): 3})
  lines = memorization.memorize_report(CONFIG, rows, tmp_path)
  assert "![Zhang et al. Figure 1](plots/zhang_figure1.png)" in lines
  height, width, _ = matplotlib.image.imread(tmp_path / "zhang_figure1.png").shape
  assert width < 1.5 * height  # panel (a) alone, not three panels
