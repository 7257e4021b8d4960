"""The per-epoch report of single-model studies, runs grouped by name: loss and accuracy curves,
the last epoch's table, a ranking, fitted parameters, the source report's numbers beside ours,
and collapsed runs.

First used by `fashion_dropout` (report 003): a Fashion-MNIST CNN with and without Dropout(0.5)
on 20% and 100% of the training data, judged by training and validation curves over epochs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from swapjax.layers import chance_accuracy, collapse_bounds
from swapjax.report import files, plotting, stats

LOSSES = ("train/loss", "train/epoch_loss", "val/loss")
FINAL_COLUMNS = (
  ("train epoch_acc", "train/epoch_acc"),
  ("train acc", "train/acc"),
  ("val acc", "val/acc"),
  ("val loss", "val/loss"),
)


def _finite(value) -> bool:
  return value is not None and math.isfinite(value)


def _rows_by_group(rows) -> dict[str, list[dict]]:
  """{group: its rows as written}, groups in the order they first appear."""
  groups = defaultdict(list)
  for r in rows:
    groups[str(r.get("group", "all runs"))].append(r)
  return dict(groups)


def _runs(group_rows) -> dict[int, list[dict]]:
  """{run: its rows sorted by epoch}, runs in the order they first appear."""
  runs = defaultdict(list)
  for r in group_rows:
    runs[r["run"]].append(r)
  for run_rows in runs.values():
    run_rows.sort(key=lambda r: r["epoch"])
  return dict(runs)


def _epochs(epochs) -> str:
  if not epochs:
    return "n/a"
  lo, hi = min(epochs), max(epochs)
  return str(lo) if lo == hi else f"{lo}–{hi}"


def _last_test(run_rows) -> dict:
  """The run's last row with test metrics (holdout metrics come on the same rows), or {}."""
  with_test = [r for r in run_rows if r.get("test/acc") is not None]
  return with_test[-1] if with_test else {}


def _best(run_rows, metric: str):
  """The run's best (highest) value of `metric` over its epochs, or None."""
  values = [r[metric] for r in run_rows if _finite(r.get(metric))]
  return max(values) if values else None


def _final_table(groups, has_holdout: bool, has_test: bool = True) -> list[str]:
  """One row per group at its runs' last epoch; the test columns only where a row has a test
  evaluation (`has_test`; a data set without a test split has none)."""
  test_metrics = ["test/acc", "test/loss"] + (["holdout/acc"] if has_holdout else [])
  header = (
    ["group", "seeds", "last epoch"]
    + [name for name, _ in FINAL_COLUMNS]
    + ["best val acc"]
    + (["test epoch"] + [m.replace("/", " ") for m in test_metrics] if has_test else [])
    + (["best test acc", "seeds at test acc 1"] if has_test else [])
  )
  lines = [
    "| " + " | ".join(header) + " |",
    "| --- | ---: | ---: | " + " | ".join(["---"] * (len(header) - 3)) + " |",
  ]
  for group, runs in groups.items():
    last = [run_rows[-1] for run_rows in runs.values()]
    cells = [f"`{group}`", str(len(runs)), _epochs([r["epoch"] for r in last])]
    cells += [stats.mean_std([r.get(metric) for r in last]) for _, metric in FINAL_COLUMNS]
    cells.append(stats.mean_std([_best(run_rows, "val/acc") for run_rows in runs.values()]))
    cells += _test_cells(runs, test_metrics) if has_test else []
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def _test_cells(runs, test_metrics) -> list[str]:
  """A group's test columns: the runs' last test epochs, `test_metrics` there, the best test
  accuracy, and how many seeds got every test sample right."""
  tests = [_last_test(run_rows) for run_rows in runs.values()]
  cells = [_epochs([t["epoch"] for t in tests if t])]
  cells += [stats.mean_std([t.get(metric) for t in tests]) for metric in test_metrics]
  cells.append(stats.mean_std([_best(run_rows, "test/acc") for run_rows in runs.values()]))
  perfect = [t.get("test/acc") == 1.0 for t in tests if _finite(t.get("test/acc"))]
  return cells + [f"{sum(perfect)}/{len(perfect)}" if perfect else "n/a"]


def _parameter_table(groups, truth: dict) -> list[str]:
  """The last epoch's parameters (`log_params`) per group, mean ± std over seeds, beside the
  experiment's true values where it gives them (TRUE_PARAMETERS: {group prefix: {name: v}})."""
  names = sorted({k for runs in groups.values() for rr in runs.values() for k in rr[-1]
                  if k.startswith("param/")})  # fmt: skip
  if not names:
    return []
  short = [n.removeprefix("param/") for n in names]
  lines = [
    "",
    "## Parameters at the last epoch (mean ± std over seeds; true values in brackets)",
    "",
    "| group | " + " | ".join(f"`{n}`" for n in short) + " |",
    "| --- | " + " | ".join("---" for _ in short) + " |",
  ]
  for group, runs in groups.items():
    true = next((v for prefix, v in truth.items() if group.split(",")[0] == prefix), {})
    cells = []
    for name, label in zip(names, short, strict=True):
      cell = stats.mean_std([rr[-1].get(name) for rr in runs.values()])
      cells.append(cell + (f" [{true[label]:g}]" if label in true else ""))
    lines.append(f"| `{group}` | " + " | ".join(cells) + " |")
  return lines


def _mean(values) -> float:
  values = [v for v in values if _finite(v)]
  return sum(values) / len(values) if values else -math.inf


def _ranking(groups) -> list[str]:
  """Groups ranked by their mean last-epoch validation accuracy (test accuracy where there is
  no validation split)."""
  metric = "val/acc"
  if not any(
    _finite(r.get(metric)) for runs in groups.values() for rr in runs.values() for r in rr
  ):
    metric = "test/acc"
  score = {
    group: _mean(
      [(_last_test(rr) if metric == "test/acc" else rr[-1]).get(metric) for rr in runs.values()]
    )
    for group, runs in groups.items()
  }
  ranked = sorted(groups, key=lambda g: -score[g])
  lines = ["", f"## Ranking (mean {metric} at the last epoch)", ""]
  for place, group in enumerate(ranked, 1):
    value = f"{score[group]:.4f}" if math.isfinite(score[group]) else "n/a"
    lines.append(f"{place}. `{group}`: {value}")
  return lines


def _reference_value(ref: dict, key: str) -> str:
  value = ref.get(key)
  return f"{value:.4f}" if _finite(value) else "n/a"


# The report's numbers a REFERENCE may give, and the metric each stands beside.
REFERENCE_METRICS = (
  ("train_acc", "train acc", "train/epoch_acc"),
  ("val_acc", "val acc", "val/acc"),
  ("val_loss", "val loss", "val/loss"),
  ("test_acc", "test acc", "test/acc"),
  ("test_loss", "test loss", "test/loss"),
)


def _entries(ref) -> list[dict]:
  """A group's reference: one dict of the report's numbers at its `epochs`, or a list of them
  (the report's numbers at several epoch counts)."""
  if isinstance(ref, dict):
    return [ref]
  return [r for r in ref if isinstance(r, dict)] if isinstance(ref, list) else []


def _comparison(groups, reference: dict, origin: str | None = None, dropout=True) -> list[str]:
  """The report's numbers at each of its epoch counts beside ours at that epoch (or our last);
  `origin` says where those numbers came from (`references.reference_origin`); `dropout`:
  whether a network of the study drops units in training (`files.drops_units`)."""
  refs = [entry for ref in reference.values() for entry in _entries(ref)]
  columns = [c for c in REFERENCE_METRICS if any(c[0] in ref for ref in refs)]
  header = "| group | report epochs | measured at epoch | " + " | ".join(
    f"report {label} | {metric.replace('/', ' ')}" for _, label, metric in columns
  )
  lines = [
    "",
    "## Compared with the report",
    "",
    "The report's training accuracy is Keras' running mean over the epoch"
    + (" with dropout active" if dropout else "")
    + ", so it stands beside `train/epoch_acc`. Measured: mean ± std over seeds at the report's "
    "epoch, or at the last epoch when the study stopped earlier (test columns: that epoch's "
    "test evaluation, or the last before it).",
    "",
    *([f"The report's numbers: {origin}.", ""] if origin else []),
    header + " |",
    "| --- | ---: | --- | " + " | ".join(["---: | ---"] * len(columns)) + " |",
  ]
  for group, runs in groups.items():
    lines += [_comparison_row(group, runs, ref, columns) for ref in _entries(reference.get(group))]
  absent = [group for group in reference if group not in groups]
  if absent:
    lines += ["", "In the report but not in this study: " + ", ".join(f"`{g}`" for g in absent)]
  return lines


def _comparison_row(group: str, runs, ref: dict, columns) -> str:
  """One line of the comparison: the report's numbers at `ref["epochs"]` beside ours."""
  target = ref.get("epochs")
  picked, tested = [], []
  for run_rows in runs.values():
    upto = [r for r in run_rows if target is None or r["epoch"] <= target] or run_rows[-1:]
    picked.append(upto[-1])
    tested.append(_last_test(upto))
  measured_at = _epochs([r["epoch"] for r in picked])
  if target is not None and max(r["epoch"] for r in picked) < target:
    measured_at += f" (report's {target} not reached)"
  cells = [f"`{group}`", str(target if target is not None else "n/a"), measured_at]
  for key, _, metric in columns:
    rows = tested if metric.startswith("test/") else picked
    cells += [_reference_value(ref, key), stats.mean_std([r.get(metric) for r in rows])]
  return "| " + " | ".join(cells) + " |"


class CollapseRule:
  """A variant's collapse rule (`layers.collapse_bounds`, the study's health check's): training
  accuracy above `above`, then at or below `floor`; `chance` the task's, None if it has none.
  Without bounds (chance of 1/3 or more: a poor fit reaches 1.5 x chance) only losses count."""

  def __init__(self, config):
    self.chance = chance_accuracy(config)
    self.above, self.floor = collapse_bounds(config) or (None, None)

  def text(self) -> str:
    losses = "a loss becomes null or non-finite"
    if self.above is None:
      if self.chance is None:
        return f"when {losses} (the task has no accuracy)"
      return (
        f"when {losses} (training accuracy is not checked where chance is 1/3 or more, here "
        f"{self.chance:.3g}: a poor fit reaches 1.5 x chance)"
      )
    return (
      f"when its training accuracy, once above {self.above:.3g}, falls to <= {self.floor:.3g} "
      f"(1.5 x chance, {self.chance:.3g}), or when {losses}"
    )


def collapse_rules(config: dict) -> tuple[CollapseRule, dict[str, CollapseRule]]:
  """The study's rule and each variant's, from config.json's config (`files.study_configs`;
  a network it cannot read: the defaults' rule, 10 classes)."""
  study, variants = files.study_configs(config)
  return CollapseRule(study), {name: CollapseRule(c) for name, c in variants.items()}


def _collapse(run_rows, rule: CollapseRule) -> tuple[int, str] | None:
  """(epoch, why) where a run that had learned falls to chance or its loss stops being finite.

  Report 003's 4000-epoch run ended at acc 0.0977 and loss 14.5: training had broken down, which
  the final-epoch means alone would hide.
  """
  best = {}
  seen_loss = set()
  for r in run_rows:
    for key in LOSSES:
      if key not in r:
        continue
      value = r[key]
      if value is None:
        if key in seen_loss:
          return r["epoch"], f"{key} became null"
      elif not math.isfinite(value):
        return r["epoch"], f"{key} = {value}"
      else:
        seen_loss.add(key)
    for key in ("train/epoch_acc", "train/acc") if rule.above is not None else ():
      value = r.get(key)
      if not _finite(value):
        continue
      if best.get(key, 0.0) > rule.above and value <= rule.floor:
        return r["epoch"], f"{key} {value:.4f} after {best[key]:.4f}"
      best[key] = max(best.get(key, value), value)
  return None


def _fall(run_rows) -> str | None:
  """How a run's training accuracy (after the epoch) fell below half its best, a best above
  0.5, without collapsing: training that diverged and partly recovered, which the last epoch's
  numbers show only as a poor network."""
  best, best_epoch = 0.0, 0
  for r in run_rows:
    value = r.get("train/acc")
    if not _finite(value):
      continue
    if best > 0.5 and value < best / 2:
      at = f"{value:.3f} at epoch {r['epoch']}"
      return f"training accuracy fell from {best:.3f} (epoch {best_epoch}) to {at}"
    if value > best:
      best, best_epoch = value, r["epoch"]
  return None


# A breakdown: training accuracy (after the epoch) at FITTED or above, then below BROKEN.
FITTED, BROKEN = 0.999, 0.99
MAX_BREAKDOWNS = 10  # listed per run; the rest counted


def breakdowns(run_rows) -> list[tuple[int, float, int | None]]:
  """(epoch, lowest training accuracy, epoch back at FITTED or None) of each time a run that had
  fit its training set (accuracy after the epoch >= FITTED) fell below BROKEN: a late
  instability that the run recovered from (or not yet), which no last-epoch number shows."""
  found, fitted, start, low = [], False, None, 1.0
  for r in run_rows:
    value = r.get("train/acc")
    if not _finite(value):
      continue
    if start is not None:
      low = min(low, value)
      if value >= FITTED:
        found.append((start, low, r["epoch"]))
        start = None
    elif fitted and value < BROKEN:
      start, low = r["epoch"], value
    fitted = fitted or value >= FITTED
  return found + ([(start, low, None)] if start is not None else [])


def _breakdown_text(found) -> str:
  """A run's breakdowns (`breakdowns`) as one line's text, the first MAX_BREAKDOWNS told."""
  told = [
    f"epoch {e} (down to {low:.3f}, "
    + (f"back from epoch {back})" if back is not None else "not yet back)")
    for e, low, back in found[:MAX_BREAKDOWNS]
  ]
  more = f"; {len(found) - MAX_BREAKDOWNS} more" if len(found) > MAX_BREAKDOWNS else ""
  return "; ".join(told) + more


MAX_LISTED = 20  # runs named per list of the collapse section; the rest counted per group


def _listed(found: list[tuple[str, str]], runs: int) -> list[str]:
  """[(group, line)] as lines, the first MAX_LISTED of them, then how many of the study's
  `runs` the list holds per group."""
  lines = [line for _, line in found[:MAX_LISTED]]
  if len(found) > MAX_LISTED:
    per_group = defaultdict(int)
    for group, _ in found:
      per_group[group] += 1
    counts = ", ".join(f"`{group}` {n}" for group, n in per_group.items())
    lines.append(f"- and {len(found) - MAX_LISTED} more: {len(found)} of {runs} runs ({counts})")
  return lines


def _collapse_lines(groups, rules: tuple[CollapseRule, dict[str, CollapseRule]]) -> list[str]:
  study_rule, by_variant = rules
  lines, found, fell, broke, rules_of = ["", "## Collapse", ""], [], [], [], {}
  for group, runs in groups.items():
    for run, run_rows in runs.items():
      rule = by_variant.get(run_rows[0].get("variant"), study_rule)
      rules_of.setdefault(rule.text(), {})[group] = None  # the groups judged by it, in order
      name = f"- `{group}`, seed {run_rows[0].get('seed')}, run {run}:"
      if (collapse := _collapse(run_rows, rule)) is not None:
        found.append((group, f"{name} collapsed at epoch {collapse[0]} ({collapse[1]})"))
      elif (why := _fall(run_rows)) is not None:
        fell.append((group, f"{name} {why}"))
      if run_breakdowns := breakdowns(run_rows):
        broke.append((group, f"{name} {_breakdown_text(run_breakdowns)}"))
  for text, members in rules_of.items():
    whose = "" if len(rules_of) == 1 else f" ({', '.join(f'`{g}`' for g in members)})"
    lines.append(f"A run collapses {text}{whose}.")
  lines.append("")
  runs = sum(len(r) for r in groups.values())
  lines += _listed(found, runs) or ["No run collapsed."]
  if fell:
    title = "Fell back without collapsing (training accuracy below half its best):"
    lines += ["", title, "", *_listed(fell, runs)]
  if broke:
    lines += [
      "",
      f"Broke down after fitting (training accuracy after the epoch, once >= {FITTED}, below "
      f"{BROKEN}; back: the first epoch at >= {FITTED} again):",
      "",
      *_listed(broke, runs),
    ]
  return lines


# At most this many test markers per panel: a long run's test epochs (4,000 epochs, a test
# every 5) would otherwise make one band of markers.
MAX_MARKERS = 40
# The markers go beneath the curves (matplotlib draws lines at zorder 2): where validation and
# test agree to a marker's height, the validation curve still shows across them.
MARKER_ZORDER = 1.5


def thinned(xs: np.ndarray) -> tuple[np.ndarray, int]:
  """(positions of `xs` to mark, the step between them): every `step`-th of more than
  MAX_MARKERS points, counted back from the last, so the last test epoch is always marked."""
  step = max(1, math.ceil(len(xs) / MAX_MARKERS))
  return np.arange(len(xs) - 1, -1, -step)[::-1], step


def _figure_label(series_of, metric: str, label: str) -> str:
  """One legend entry for `metric`'s markers in every panel of a figure: `label`, with the
  steps `thinned` takes in the panels (`1 in 3`, or `1 in 1-3` where panels differ)."""
  found = [series(metric) for series in series_of.values()]
  steps = sorted({thinned(f[0])[1] for f in found if f is not None and f[0].size})
  if not steps or steps[-1] == 1:
    return label
  span = str(steps[0]) if steps[0] == steps[-1] else f"{steps[0]}-{steps[-1]}"
  return f"{label} (1 in {span} test epochs)"


def _markers(ax, series, metric, label, color, marker, figure_label=None, **style):
  """Mean ± std over seeds at the epochs where every run has `metric` (the test epochs), every
  test epoch or, past MAX_MARKERS of them, 1 in `step` (the legend says so, or `figure_label`
  for all the figure's panels)."""
  found = series(metric)
  if found is None or not found[0].size:
    return
  xs, ys = found
  keep, step = thinned(xs)
  label = figure_label or (label if step == 1 else f"{label} (1 in {step} test epochs)")
  ax.errorbar(
    xs[keep],
    ys[:, keep].mean(0),
    yerr=ys[:, keep].std(0),
    fmt=marker,
    color=color,
    capsize=3,
    label=label,
    zorder=MARKER_ZORDER,
    **style,
  )


def _dashed_mean(ax, series, metric, label, color):
  if (found := series(metric)) is not None:
    xs, ys = found
    ax.plot(xs, ys.mean(0), "--", color=color, lw=1, label=label)


def _curves_figure(plt, groups, series_of, kind: str, path: Path, dropout=True):
  """Accuracy or loss (`kind`) per epoch, a panel per group (`series_of`: {group: its
  `stats.RoundSeries`}); `dropout`: whether the legend says dropout was on and off."""
  what = "accuracy" if kind == "acc" else "loss"
  # One y scale, so groups compare at a glance (report 003: mind the y axis).
  fig, axes = plotting.grid(plt, groups, f"{what} per epoch (mean ± std over seeds)")
  labels = {s: _figure_label(series_of, f"{s}/{kind}", s) for s in ("test", "holdout")}
  on, off = (", dropout on", ", dropout off") if dropout else ("", "")
  for ax, group in zip(axes, groups, strict=False):
    series = series_of[group]
    plotting.band(ax, series, f"train/epoch_{kind}", f"train (Keras: epoch mean{on})", "C0")
    _dashed_mean(ax, series, f"train/{kind}", f"train (after epoch{off})", "C0")
    plotting.band(ax, series, f"val/{kind}", "validation", "C1")
    _markers(ax, series, f"test/{kind}", "test", "C3", "o", labels["test"], ms=5)
    _markers(  # hollow: test shows through
      ax, series, f"holdout/{kind}", "holdout", "C4", "s", labels["holdout"], mfc="none", ms=9
    )
    plotting.style_panel(ax, group.replace(",", ", "), "epoch", what)
  plotting.finish(plt, fig, axes, len(groups), path)


def curves_report(config: dict, rows: list[dict], plots: Path) -> list[str]:
  """Markdown lines (final table, comparison with the report, collapses) and curve figures."""
  plt = plotting.pyplot()
  in_order = _rows_by_group(rows)  # a figure reads each metric in one pass, in memory order
  groups = {group: _runs(group_rows) for group, group_rows in in_order.items()}
  has_holdout = any(r.get("holdout/acc") is not None for r in rows)
  has_test = has_holdout or any(
    r.get("test/acc") is not None or r.get("test/loss") is not None for r in rows
  )
  dropout = config.get("drops_units", True)
  lines = [
    "## Last epoch per group (mean ± std over seeds)",
    "",
    "`train epoch_acc` is Keras' running mean over the epoch's batches"
    + (" with dropout active" if dropout else "")
    + " (the number in the report's logs); `train acc` is measured after the epoch"
    + (" with dropout off" if dropout else "")
    + (
      ". Test (and holdout) columns are from each run's last epoch with a test evaluation "
      "(`test epoch`)."
      if has_test
      else ". No row has a test evaluation (no test split, or none due yet): no test columns."
    ),
    "",
  ]
  lines += _final_table(groups, has_holdout, has_test)
  if len(groups) > 1:
    lines += _ranking(groups)
  lines += _parameter_table(groups, config.get("true_parameters") or {})
  reference = config.get("reference")
  if isinstance(reference, dict) and reference:
    lines += _comparison(groups, reference, config.get("reference_origin"), dropout)
  lines += _collapse_lines(groups, collapse_rules(config))
  if plt is None:
    return lines + ["", plotting.NO_PLOTS]
  series_of = {
    group: stats.RoundSeries(group_rows, "epoch") for group, group_rows in in_order.items()
  }
  _curves_figure(plt, groups, series_of, "acc", plots / "curves_accuracy.png", dropout)
  _curves_figure(plt, groups, series_of, "loss", plots / "curves_loss.png", dropout)
  return lines + [
    "",
    "![accuracy curves](plots/curves_accuracy.png)",
    "",
    "![loss curves](plots/curves_loss.png)",
  ]
