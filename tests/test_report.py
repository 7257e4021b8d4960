"""report.md and plots from metrics rows alone (no training)."""

import matplotlib.axes
import pytest

from swapjax import report

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
  lines = report.memorize_report(CONFIG, _rows(), tmp_path)
  table = "\n".join(lines)
  assert "| label_corruption=0.0 | 1 | 1/1 | 2.0 ± 0.0 |" in table
  assert "| label_corruption=1.0 | 1 | 0/1 | n/a |" in table
  assert ("some runs not fit by epoch 3", [3]) in plot_calls
  assert (tmp_path / "zhang_figure1.png").stat().st_size > 0


def test_without_matplotlib_the_tables_are_still_written(tmp_path, monkeypatch):
  monkeypatch.setattr(report, "_plt", lambda: None)
  lines = report.memorize_report(CONFIG, _rows(), tmp_path)
  assert "| label_corruption=1.0 | 1 | 0/1 | n/a |" in "\n".join(lines)
  assert lines[-1] == report.NO_PLOTS and not list(tmp_path.iterdir())


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
  text = "\n".join(report.memorize_report(CONFIG, rows, tmp_path))
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
  monkeypatch.setattr(report, "_plt", lambda: None)
  rows = _sweep_rows({(1e-4, 0.0): 2, (1e-4, 0.5): None, (1e-4, 1.0): None})
  text = "\n".join(report.memorize_report(CONFIG, rows, tmp_path))
  assert (
    "time to fit rises with every step of corruption: not yet known "
    "(0.5 -> 1.0: not fit -> not fit)"
  ) in text


def test_one_level_has_no_ordering_section(tmp_path, monkeypatch):
  monkeypatch.setattr(report, "_plt", lambda: None)
  text = "\n".join(report.memorize_report(CONFIG, _sweep_rows({(1e-4, 1.0): 2}), tmp_path))
  assert "ordering" not in text
