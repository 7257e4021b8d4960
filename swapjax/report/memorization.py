"""The memorization study's report (Zhang et al. 2017, report 004): per run group the runs that fit
their (possibly random) labels, when, and their test accuracy on true labels; Zhang et al.'s
ordering by label corruption checked; training vs test accuracy, Figure 1 and loss per epoch."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from swapjax.layers import chance_accuracy
from swapjax.report import files, grouping, plotting, stats
from swapjax.report.grouping import MEMORIZE_GROUP

SHORT = {"input_corruption": "{}", "label_corruption": "labels {}", "learning_rate": "lr {}"}


def memorize_report(config, rows, plots: Path) -> list[str]:
  """Markdown lines (per-group table, the ordering check) and, with matplotlib, the figures."""
  plt = plotting.pyplot()
  groups = grouping.by_key(rows, MEMORIZE_GROUP)
  varying = grouping.varying(rows, MEMORIZE_GROUP)
  last_epoch = max(r["epoch"] for r in rows)
  steps_per_epoch = -(
    -int(config["pool_size"] * (1 - config["validation_split"])) // config["batch_size"]
  )
  lines, summary = _group_table(config, groups, varying, last_epoch)
  ordering = _by_level(summary)
  lines += ordering_lines(ordering, last_epoch)
  if plt is None:
    lines += ["", plotting.NO_PLOTS]
    return lines
  chance = chance_accuracy(files.study_configs(config)[0]) or 0.1
  _train_vs_test(plt, groups, varying, round(1 / chance), plots / "train_vs_test.png")
  figures = [("training vs test accuracy", "train_vs_test")]
  if _zhang_figure1(
    plt, groups, ordering, varying, last_epoch, steps_per_epoch, plots / "zhang_figure1.png"
  ):
    figures.append(("Zhang et al. Figure 1", "zhang_figure1"))
  _loss_figure(plt, groups, varying, plots / "loss.png")
  figures.append(("loss", "loss"))
  for alt, name in figures:
    lines += ["", f"![{alt}](plots/{name}.png)"]
  return lines


def _group_table(config, groups, varying, last_epoch: int):
  """(markdown lines of the per-group table, [(group key, fit epochs, test accuracies, runs not
  fit)]), groups sorted by their values."""
  lines = [
    f"## Per run group (after epoch {last_epoch}; mean ± std over seeds)",
    "",
    f"Fit = training accuracy >= {config['fit_target']}. Test accuracy is on the "
    "test set with true labels (chance = 0.10).",
    "",
    "| group | seeds | fit | epochs to fit | train acc | val acc | test acc | test loss |",
    "| --- | ---: | ---: | --- | --- | --- | --- | --- |",
  ]
  summary = []
  for key, grows in sorted(groups.items(), key=lambda kv: [str(x) for x in kv[0]]):
    finals, fits, tests, test_losses = _last_per_run(grows)
    fitted = [f for f in fits if f is not None]
    lines.append(
      f"| {grouping.label(key, MEMORIZE_GROUP, varying)} | {len(finals)} | "
      f"{len(fitted)}/{len(fits)} | {stats.mean_std(fitted)} | "
      f"{stats.mean_std([r.get('train/acc') for r in finals])} | "
      f"{stats.mean_std([r.get('val/acc') for r in finals])} | {stats.mean_std(tests)} | "
      f"{stats.mean_std(test_losses)} |"
    )
    summary.append((key, fitted, tests, len(fits) - len(fitted)))
  return lines, summary


def _last_per_run(grows):
  """Per run: its last row, its fit epoch (None if not fit) and its last test accuracy and loss
  (None if never tested)."""
  by_run = defaultdict(list)
  for r in grows:
    by_run[r["run"]].append(r)
  finals, fits, tests, test_losses = [], [], [], []
  for run_rows in by_run.values():
    run_rows.sort(key=lambda r: r["epoch"])
    finals.append(run_rows[-1])
    fits.append(run_rows[-1].get("fit_epoch"))
    with_test = [r for r in run_rows if r.get("test/acc") is not None]
    tests.append(with_test[-1]["test/acc"] if with_test else None)
    test_losses.append(with_test[-1]["test/loss"] if with_test else None)
  return finals, fits, tests, test_losses


def _by_level(summary):
  """{learning rate: {label corruption: fits, tests, unfit}} over the clean-image groups."""
  levels = defaultdict(lambda: defaultdict(lambda: {"fits": [], "tests": [], "unfit": 0}))
  for (input_corruption, level, lr), fitted, tests, unfit in summary:
    if input_corruption == "none":
      entry = levels[lr][level]
      entry["fits"].extend(fitted)
      entry["tests"].extend(t for t in tests if t is not None)
      entry["unfit"] += unfit
  return levels


def _compare(values, rises: bool):
  """Adjacent pairs (i, i + 1) that break a strict rise (or fall), and those not yet known.

  A pair is not yet known when a value is missing or both runs are unfit (inf == inf).
  """
  broken, unknown = [], []
  for i, (a, b) in enumerate(itertools.pairwise(values)):
    if math.isnan(a) or math.isnan(b) or (a == b == math.inf):
      unknown.append(i)
    elif (b <= a) if rises else (b >= a):
      broken.append(i)
  return broken, unknown


def _shown(value: float) -> str:
  return "not fit" if value == math.inf else f"{value:.3g}"


def ordering_lines(by_level, last_epoch: int) -> list[str]:
  """Zhang et al.'s ordering checked: more label corruption, longer to fit and worse test."""
  if not by_level or max(len(levels) for levels in by_level.values()) < 2:
    return []
  lines = [
    "",
    "## Zhang et al. ordering (clean images, by label corruption)",
    "",
    "Zhang et al. (Figure 1b, c): more corrupted labels take longer to fit and test worse. A run "
    f"not fit by epoch {last_epoch} counts as taking longer than every fitted one.",
    "",
    "| learning rate | label corruption | runs fit | mean epochs to fit | mean test acc |",
    "| ---: | ---: | ---: | ---: | ---: |",
  ]
  verdicts = []
  for lr, levels in sorted(by_level.items()):
    xs = sorted(levels)
    fit = [math.inf if levels[x]["unfit"] else float(np.mean(levels[x]["fits"])) for x in xs]
    test = [float(np.mean(levels[x]["tests"])) if levels[x]["tests"] else math.nan for x in xs]
    for x, fit_x, test_x in zip(xs, fit, test, strict=True):
      entry = levels[x]
      runs = len(entry["fits"]) + entry["unfit"]
      shown = f"> {last_epoch}" if entry["unfit"] else f"{fit_x:.1f}"
      lines.append(
        f"| {lr} | {x} | {len(entry['fits'])}/{runs} | {shown} | "
        f"{'n/a' if math.isnan(test_x) else f'{test_x:.4f}'} |"
      )
    verdicts.append(_verdict(lr, xs, "time to fit rises", fit, rises=True))
    verdicts.append(_verdict(lr, xs, "test accuracy falls", test, rises=False))
  return lines + [""] + verdicts


def _verdict(lr, xs, what: str, values, rises: bool) -> str:
  """Whether `values` (at corruption levels `xs`) rise (fall) with every step, and where not."""
  broken, unknown = _compare(values, rises)
  pairs = broken or unknown
  detail = ", ".join(
    f"{xs[i]} -> {xs[i + 1]}: {_shown(values[i])} -> {_shown(values[i + 1])}" for i in pairs
  )
  verdict = "no" if broken else "not yet known" if unknown else "yes"
  return f"- learning rate {lr}: {what} with every step of corruption: {verdict}" + (
    f" ({detail})" if pairs else ""
  )


def _short_label(key, varying) -> str:
  """A group's varying values, compact for a crowded legend: `clean, labels 0.2, lr 0.001`."""
  values = dict(zip(MEMORIZE_GROUP, key, strict=True))
  if values["input_corruption"] == "none":
    values["input_corruption"] = "clean"
  return ", ".join(SHORT[k].format(values[k]) for k in MEMORIZE_GROUP if k in varying)


def _legend_below(fig, cell, ax, ncol):
  """`ax`'s legend in a blank axes under it (`cell` of the grid), clear of its curves and labels."""
  holder = fig.add_subplot(cell)
  holder.axis("off")
  holder.legend(*ax.get_legend_handles_labels(), loc="upper center", ncol=ncol, fontsize=7)


def _zhang_figure1(plt, groups, ordering, varying, last_epoch, steps_per_epoch, path) -> bool:
  """Zhang et al. Figure 1: (a) training loss against steps per group, (b) epochs to fit and (c)
  test error against label corruption. (a) needs two groups, (b) and (c) two corruption levels
  at some learning rate (one point is no curve); False, and nothing drawn, if neither holds."""
  curves = len(groups) > 1
  levels = any(len(levels) > 1 for levels in ordering.values())
  if not (curves or levels):
    path.unlink(missing_ok=True)  # a previous build's, from more levels
    return False
  panels = (["a"] if curves else []) + (["b", "c"] if levels else [])
  legend_rows = max(-(-len(groups) // 2) if curves else 0, 2 * len(ordering) if levels else 0)
  fig = plt.figure(figsize=(5 * len(panels), 4 + 0.17 * legend_rows), layout="constrained")
  grid = fig.add_gridspec(2, len(panels), height_ratios=(4, 0.17 * legend_rows + 0.1))
  ax = {p: fig.add_subplot(grid[0, i]) for i, p in enumerate(panels)}
  if curves:
    _learning_curves(plt, ax["a"], groups, varying, steps_per_epoch)
    _legend_below(fig, grid[1, 0], ax["a"], ncol=2)
  if levels:
    _fit_and_error(ax["b"], ax["c"], ordering, last_epoch)
    for panel in "bc":
      ax[panel].grid(True)
      _legend_below(fig, grid[1, panels.index(panel)], ax[panel], ncol=1)
  fig.suptitle("Zhang et al. Figure 1 (mean ± std over seeds)")
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def _learning_curves(plt, ax, groups, varying, steps_per_epoch):
  """Figure 1a: each group's training loss against training steps; colour: the corruption,
  line style: the learning rate."""
  ordered = sorted(groups.items(), key=lambda kv: [str(x) for x in kv[0]])
  kinds = list(dict.fromkeys(key[:2] for key, _ in ordered))  # (input, label corruption)
  rates = sorted({key[2] for key, _ in ordered})
  for key, grows in ordered:
    color = plt.get_cmap("tab10")(kinds.index(key[:2]) % 10)
    style = ("-", "--", ":", "-.")[rates.index(key[2]) % 4]
    label = _short_label(key, varying)
    alpha = 0.2 if len(groups) <= 4 else 0.06  # many bands: faint, so the means stay legible
    series = stats.RoundSeries(grows, "epoch")
    plotting.band(ax, series, "train/loss", label, color, steps_per_epoch, alpha, ls=style)
  ax.set(xlabel="training steps", ylabel="training loss", title="(a) learning curves")
  plotting.integer_x(ax)
  ax.grid(True)


def _fit_and_error(ax_b, ax_c, ordering, last_epoch):
  """Figure 1b and c: per learning rate, mean ± std epochs to fit (a triangle at `last_epoch`
  where some runs had not fit) and test error against label corruption."""
  for i, (lr, by_level) in enumerate(sorted(ordering.items())):
    xs = sorted(by_level)
    name = f"lr={lr}, " if len(ordering) > 1 else ""
    color = f"C{i}"
    fits = [by_level[x]["fits"] for x in xs]
    errors = [[1 - t for t in by_level[x]["tests"]] for x in xs]
    fit_mean = [np.mean(f) if f else np.nan for f in fits]
    err_mean = [np.mean(e) if e else np.nan for e in errors]
    ax_b.plot(xs, fit_mean, "o-", color=color, label=f"{name}mean epochs to fit (fitted runs)")
    ax_b.errorbar(xs, fit_mean, [np.std(f) if f else 0 for f in fits], fmt="none", color=color)
    unfit = [x for x in xs if by_level[x]["unfit"]]
    if unfit:  # a lower bound: these runs had not fit when the metrics end
      ax_b.plot(
        unfit,
        [last_epoch] * len(unfit),
        "^",
        mfc="none",
        ms=8 + 4 * i,  # nested, so every learning rate's marker shows
        color=color,
        label=f"{name}some runs not fit by epoch {last_epoch}",
      )
    ax_c.plot(xs, err_mean, "o-", color=color, label=f"lr={lr}")
    errs = [np.std(e) if e else 0 for e in errors]
    ax_c.errorbar(xs, err_mean, errs, fmt="none", color=color)
  ax_b.set(xlabel="label corruption", ylabel="epochs to fit", title="(b) time to fit")
  ax_c.set(xlabel="label corruption", ylabel="test error", title="(c) test error")
  ax_c.axhline(0.9, color="gray", ls="--", lw=1, label="chance (0.9)")


def _train_vs_test(plt, groups, varying, num_classes, path):
  """Report 004's headline: training accuracy (random labels) against test accuracy (true
  labels) per epoch, chance dashed."""
  fig, axes = plotting.grid(
    plt, groups, "training vs test accuracy per epoch (mean ± std over seeds)"
  )
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    series = stats.RoundSeries(grows, "epoch")
    plotting.band(ax, series, "train/acc", "train accuracy (its own labels)", "tab:blue")
    plotting.band(ax, series, "test/acc", "test accuracy (true labels)", "tab:red", marker=".")
    ax.axhline(1 / num_classes, color="gray", ls="--", lw=1, label=f"chance (1/{num_classes})")
    plotting.style_panel(
      ax, _last_accuracies(_short_label(key, varying), series), "epoch", "accuracy"
    )
  plotting.finish(plt, fig, axes, len(groups), path)


def _last_accuracies(title: str, series) -> str:
  """`title` and, below it, the group's mean train and test accuracy at their last epochs
  (`series`: its `stats.RoundSeries`)."""
  last = [series(m) for m in ("train/acc", "test/acc")]
  if all(series is not None and series[0].size for series in last):
    (train_at, train), (test_at, test) = ((xs[-1], ys[:, -1].mean()) for xs, ys in last)
    title += (
      f"\ntrain {100 * train:.3g}% (epoch {train_at}), test {100 * test:.3g}% (epoch {test_at})"
    )
  return title


def _loss_figure(plt, groups, varying, path):
  """Train, validation and test loss per epoch, one panel per group."""
  fig, axes = plotting.grid(plt, groups, "loss per epoch (mean ± std over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    series = stats.RoundSeries(grows, "epoch")
    plotting.band(ax, series, "train/loss", "train loss", "tab:blue")
    plotting.band(ax, series, "val/loss", "val loss", "tab:green")
    plotting.band(ax, series, "test/loss", "test loss", "tab:red", marker=".")
    plotting.style_panel(ax, _short_label(key, varying), "epoch", "loss")
  plotting.finish(plt, fig, axes, len(groups), path)
