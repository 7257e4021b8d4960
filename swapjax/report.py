"""`report.md` and `plots/*.png`: a pure function of config.json, metrics.jsonl (and timing.json).

Rebuild one study's report without retraining, or compare several studies side by side:

    python -m swapjax.report WORKDIR
    python -m swapjax.report WORKDIR_A WORKDIR_B [...] [--out=DIR]
"""

from __future__ import annotations

import decimal
import itertools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from swapjax.workdir import Workdir, atomic_write_text

SWAP_GROUP = ("condition", "warmup", "learning_rate")
# The swap study's main accuracies: the report's leaky "test", the never-seen part, the holdout.
SWAP_ACCURACIES = (
  "AtoB/test_acc",
  "BtoA/test_acc",
  "AtoB/test_unseen_acc",
  "BtoA/test_unseen_acc",
  "AtoB/holdout_acc",
  "BtoA/holdout_acc",
)
MEMORIZE_GROUP = ("input_corruption", "label_corruption", "learning_rate")


def _group_key(row, keys):
  return tuple(row.get(k) for k in keys)


def _label(key, keys, varying):
  parts = [f"{k}={v}" for k, v in zip(keys, key, strict=True) if k in varying]
  return ", ".join(parts) or "all runs"


def _varying(rows, keys):
  # Nothing varies: name the one group by all its values (e.g. random labels on clean images).
  return [k for k in keys if len({r.get(k) for r in rows}) > 1] or list(keys)


def _rounded(value: float, decimals: int) -> str:
  """`value` rounded half away from zero (as printed, 24.5 -> 25) to `decimals` places; a
  negative `decimals` rounds to tens, hundreds, ..."""
  quantum = decimal.Decimal(1).scaleb(-decimals)
  shown = decimal.Decimal(str(float(value))).quantize(quantum, rounding=decimal.ROUND_HALF_UP)
  if shown == 0:
    shown = abs(shown)  # no "-0.000"
  return f"{shown:f}" if decimals > 0 else str(int(shown))


def format_stat(mean: float, std: float, integral: bool = False) -> str:
  """'mean ± std' to the precision the spread supports: the std at 2 significant digits and the
  mean at the same decimal place (275.5 ± 24.5 -> '276 ± 25', 0.8960 ± 0.0123 -> '0.896 ± 0.012').
  Without spread, the mean at 4 significant digits ('0.8960 ± 0'), or whole when `integral`."""
  if not std > 0:
    if integral or mean == 0:
      return f"{_rounded(mean, 0 if integral else 4)} ± 0"
    return f"{_rounded(mean, max(0, 3 - math.floor(math.log10(abs(mean)))))} ± 0"
  decimals = 1 - math.floor(math.log10(std))
  if float(_rounded(std, decimals)) >= 10 ** (2 - decimals):  # 0.0996 -> 0.10, not 0.100
    decimals -= 1
  return f"{_rounded(mean, decimals)} ± {_rounded(std, decimals)}"


def _stat(values) -> str:
  """Mean ± population std (ddof 0) of the finite values, formatted by `format_stat`."""
  vals = [v for v in values if v is not None and math.isfinite(v)]
  if not vals:
    return "n/a"
  integral = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in vals)
  if min(vals) == max(vals):  # exactly no spread (np.std can leave float noise here)
    return format_stat(vals[0], 0.0, integral)
  return format_stat(float(np.mean(vals)), float(np.std(vals)), integral)


def _per_round(rows, round_key, metric):
  """(rounds, values_RUNxROUND) at the rounds where every run has `metric`, or None if none has.

  Runs are matched by round, not by position: a run stopped early repeats its last row (its test
  metrics too) every later epoch, while the others have test metrics every few epochs only.
  """
  by_run = defaultdict(dict)
  for r in rows:
    if r.get(metric) is not None:
      by_run[r["run"]][r[round_key]] = r[metric]
  if not by_run:
    return None
  xs = sorted(set.intersection(*(set(values) for values in by_run.values())))
  return np.array(xs), np.array([[values[x] for x in xs] for values in by_run.values()])


def _band(ax, rows, round_key, metric, label, color, scale=1, alpha=0.2, **style):
  """The per-round mean over runs as a line, ± their std as a shaded band (x times `scale`)."""
  series = _per_round(rows, round_key, metric)
  if series is None:
    return
  xs, ys = series
  mean, std = ys.mean(0), ys.std(0)
  ax.plot(xs * scale, mean, color=color, label=label, **style)
  ax.fill_between(xs * scale, mean - std, mean + std, color=color, alpha=alpha, lw=0)


NO_PLOTS = (
  "Plots skipped: matplotlib is not installed (`pip install matplotlib`, then "
  "`python -m swapjax.report WORKDIR`)."
)


def _plt():
  """pyplot with the Agg backend, or None where matplotlib is missing (tables only)."""
  try:
    import matplotlib
  except ImportError:
    return None

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def _grid(plt, groups, title, sharey=True):
  """One axes per group (3 to a row) under `title`; constrained layout, so `_finish` can put the
  legend outside the axes."""
  n = len(groups)
  cols = min(3, n)
  nrows = -(-n // cols)
  fig, axes = plt.subplots(
    nrows,
    cols,
    figsize=(max(6.4, 4.6 * cols), 3.4 * nrows),  # one panel: still room for the title
    squeeze=False,
    sharey=sharey,
    layout="constrained",
  )
  fig.suptitle(title, fontsize=11)
  return fig, axes.ravel()


def _integer_x(ax):
  from matplotlib.ticker import MaxNLocator

  ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(plt, fig, axes, used: int, path: Path, ncol: int | None = None):
  """Hides the grid's empty cells, draws one legend below the axes (it never covers a curve) and
  saves the figure."""
  for ax in axes[used:]:
    ax.set_visible(False)
  for ax in axes[:used]:  # shared y: keep the tick labels on every panel
    ax.tick_params(labelleft=True)
  legend = {}
  for ax in axes[:used]:
    for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
      legend.setdefault(label, handle)
  if legend:  # below the grid, as many entries to a row as its width holds
    ncol = ncol or min(len(legend), 2 * min(3, used))
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=ncol, fontsize=8)
  fig.savefig(path, dpi=100)
  plt.close(fig)


SWAP_COLORS = {  # report 000's figures: AtoB/BtoA test in blue/green, train in red/black
  "AtoB_test": "tab:blue",
  "BtoA_test": "tab:green",
  "AtoB_train": "tab:red",
  "BtoA_train": "black",
}
HONEST = tuple(  # colour: the member, as in accuracy.png; line style: the split
  (f"{member}/{split}_acc", color, style)
  for split, style in (("test", "-"), ("test_unseen", "--"), ("holdout", ":"))
  for member, color in (("AtoB", "tab:blue"), ("BtoA", "tab:green"))
)


def swap_report(config, rows, plots: Path) -> list[str]:
  plt = _plt()
  groups = defaultdict(list)
  for r in rows:
    groups[_group_key(r, SWAP_GROUP)].append(r)
  varying = _varying(rows, SWAP_GROUP)
  final_round = max(r["round"] for r in rows)
  lines = [
    f"## Final accuracies (round {final_round}; mean ± std over seeds)",
    "",
    "`test` is the other half (leaks after swaps: the partner trained on the samples "
    "moved in); `test_unseen` is the other half's samples this member never trained on; "
    "`holdout` is outside the pool (CIFAR-10 test images).",
    "",
    "| group | seeds | AtoB test | BtoA test | AtoB test_unseen | BtoA test_unseen | "
    "AtoB holdout | BtoA holdout | AtoB train | BtoA train | moved in total |",
    "| --- | ---: | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for key, grows in groups.items():
    last = [r for r in grows if r["round"] == final_round]
    moved = defaultdict(int)
    for r in grows:
      moved[r["run"]] += r.get("swap/moved") or 0
    cells = [
      _stat([r.get(m) for r in last])
      for m in (*SWAP_ACCURACIES, "AtoB/train_acc", "BtoA/train_acc")
    ]
    lines.append(
      f"| {_label(key, SWAP_GROUP, varying)} | {len(last)} | "
      + " | ".join(cells)
      + f" | {_stat(list(moved.values()))} |"
    )
  if plt is None:
    lines += ["", NO_PLOTS]
    return lines
  # Report 000's two figures (accuracy and loss per round, AtoB and BtoA), one panel per group.
  for kind, what in (("acc", "accuracy"), ("loss", "loss")):
    fig, axes = _grid(plt, groups, f"{what} per round (mean ± std over seeds)")
    for ax, (key, grows) in zip(axes, groups.items(), strict=False):
      for name, color in SWAP_COLORS.items():
        member, split = name.split("_")
        _band(ax, grows, "round", f"{member}/{split}_{kind}", name, color)
      ax.set(title=_label(key, SWAP_GROUP, varying), xlabel="round", ylabel=what)
      ax.title.set_fontsize(9)
      _integer_x(ax)
      ax.grid(True)
    _finish(plt, fig, axes, len(groups), plots / f"{what}.png")
  fig, axes = _grid(plt, groups, "honest test accuracy per round (mean ± std over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    for metric, color, style in HONEST:
      _band(ax, grows, "round", metric, metric, color, ls=style)
    ax.set(title=_label(key, SWAP_GROUP, varying), xlabel="round", ylabel="accuracy")
    ax.title.set_fontsize(9)
    _integer_x(ax)
    ax.grid(True)
  _finish(plt, fig, axes, len(groups), plots / "honest_accuracy.png", ncol=3)  # a row per member
  lines += [
    "",
    "![accuracy](plots/accuracy.png)",
    "",
    "![loss](plots/loss.png)",
    "",
    "![honest accuracy](plots/honest_accuracy.png)",
  ]
  return lines


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
    fit, test = [], []
    for x in xs:
      entry = levels[x]
      runs = len(entry["fits"]) + entry["unfit"]
      fit.append(math.inf if entry["unfit"] else float(np.mean(entry["fits"])))
      test.append(float(np.mean(entry["tests"])) if entry["tests"] else math.nan)
      shown = f"> {last_epoch}" if entry["unfit"] else f"{fit[-1]:.1f}"
      lines.append(
        f"| {lr} | {x} | {len(entry['fits'])}/{runs} | {shown} | "
        f"{'n/a' if math.isnan(test[-1]) else f'{test[-1]:.4f}'} |"
      )
    for what, values, rises in (
      ("time to fit rises", fit, True),
      ("test accuracy falls", test, False),
    ):
      broken, unknown = _compare(values, rises)
      pairs = broken or unknown
      detail = ", ".join(
        f"{xs[i]} -> {xs[i + 1]}: {_shown(values[i])} -> {_shown(values[i + 1])}" for i in pairs
      )
      verdict = "no" if broken else "not yet known" if unknown else "yes"
      verdicts.append(
        f"- learning rate {lr}: {what} with every step of corruption: {verdict}"
        + (f" ({detail})" if pairs else "")
      )
  return lines + [""] + verdicts


SHORT = {"input_corruption": "{}", "label_corruption": "labels {}", "learning_rate": "lr {}"}


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
    ordered = sorted(groups.items(), key=lambda kv: [str(x) for x in kv[0]])
    kinds = list(dict.fromkeys(key[:2] for key, _ in ordered))  # (input, label corruption)
    rates = sorted({key[2] for key, _ in ordered})
    for key, grows in ordered:
      color = plt.get_cmap("tab10")(kinds.index(key[:2]) % 10)
      style = ("-", "--", ":", "-.")[rates.index(key[2]) % 4]
      label = _short_label(key, varying)
      alpha = 0.2 if len(groups) <= 4 else 0.06  # many bands: faint, so the means stay legible
      _band(ax["a"], grows, "epoch", "train/loss", label, color, steps_per_epoch, alpha, ls=style)
    ax["a"].set(xlabel="training steps", ylabel="training loss", title="(a) learning curves")
    _integer_x(ax["a"])
    ax["a"].grid(True)
    _legend_below(fig, grid[1, 0], ax["a"], ncol=2)
  if levels:
    for i, (lr, by_level) in enumerate(sorted(ordering.items())):
      xs = sorted(by_level)
      name = f"lr={lr}, " if len(ordering) > 1 else ""
      color = f"C{i}"
      fits = [by_level[x]["fits"] for x in xs]
      errors = [[1 - t for t in by_level[x]["tests"]] for x in xs]
      fit_mean = [np.mean(f) if f else np.nan for f in fits]
      err_mean = [np.mean(e) if e else np.nan for e in errors]
      ax["b"].plot(xs, fit_mean, "o-", color=color, label=f"{name}mean epochs to fit (fitted runs)")
      ax["b"].errorbar(xs, fit_mean, [np.std(f) if f else 0 for f in fits], fmt="none", color=color)
      unfit = [x for x in xs if by_level[x]["unfit"]]
      if unfit:  # a lower bound: these runs had not fit when the metrics end
        ax["b"].plot(
          unfit,
          [last_epoch] * len(unfit),
          "^",
          mfc="none",
          ms=8 + 4 * i,  # nested, so every learning rate's marker shows
          color=color,
          label=f"{name}some runs not fit by epoch {last_epoch}",
        )
      ax["c"].plot(xs, err_mean, "o-", color=color, label=f"lr={lr}")
      errs = [np.std(e) if e else 0 for e in errors]
      ax["c"].errorbar(xs, err_mean, errs, fmt="none", color=color)
    ax["b"].set(xlabel="label corruption", ylabel="epochs to fit", title="(b) time to fit")
    ax["c"].set(xlabel="label corruption", ylabel="test error", title="(c) test error")
    ax["c"].axhline(0.9, color="gray", ls="--", lw=1, label="chance (0.9)")
    for panel in "bc":
      ax[panel].grid(True)
      _legend_below(fig, grid[1, panels.index(panel)], ax[panel], ncol=1)
  fig.suptitle("Zhang et al. Figure 1 (mean ± std over seeds)")
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def _train_vs_test(plt, groups, varying, num_classes, path):
  """Report 004's headline: training accuracy (random labels) against test accuracy (true
  labels) per epoch, chance dashed."""
  fig, axes = _grid(plt, groups, "training vs test accuracy per epoch (mean ± std over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    _band(ax, grows, "epoch", "train/acc", "train accuracy (its own labels)", "tab:blue")
    _band(ax, grows, "epoch", "test/acc", "test accuracy (true labels)", "tab:red", marker=".")
    ax.axhline(1 / num_classes, color="gray", ls="--", lw=1, label=f"chance (1/{num_classes})")
    title = _short_label(key, varying)
    last = [_per_round(grows, "epoch", m) for m in ("train/acc", "test/acc")]
    if all(series is not None and series[0].size for series in last):
      (train_at, train), (test_at, test) = ((xs[-1], ys[:, -1].mean()) for xs, ys in last)
      title += (
        f"\ntrain {100 * train:.3g}% (epoch {train_at}), test {100 * test:.3g}% (epoch {test_at})"
      )
    ax.set(title=title, xlabel="epoch", ylabel="accuracy")
    ax.title.set_fontsize(9)
    _integer_x(ax)
    ax.grid(True)
  _finish(plt, fig, axes, len(groups), path)


def memorize_report(config, rows, plots: Path) -> list[str]:
  plt = _plt()
  groups = defaultdict(list)
  for r in rows:
    groups[_group_key(r, MEMORIZE_GROUP)].append(r)
  varying = _varying(rows, MEMORIZE_GROUP)
  last_epoch = max(r["epoch"] for r in rows)
  steps_per_epoch = -(
    -int(config["pool_size"] * (1 - config["validation_split"])) // config["batch_size"]
  )
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
    fitted = [f for f in fits if f is not None]
    lines.append(
      f"| {_label(key, MEMORIZE_GROUP, varying)} | {len(finals)} | "
      f"{len(fitted)}/{len(fits)} | {_stat(fitted)} | "
      f"{_stat([r.get('train/acc') for r in finals])} | "
      f"{_stat([r.get('val/acc') for r in finals])} | {_stat(tests)} | "
      f"{_stat(test_losses)} |"
    )
    summary.append((key, fitted, tests, len(fits) - len(fitted)))
  ordering = _by_level(summary)
  lines += ordering_lines(ordering, last_epoch)
  if plt is None:
    lines += ["", NO_PLOTS]
    return lines
  figures = []
  _train_vs_test(plt, groups, varying, config.get("num_classes", 10), plots / "train_vs_test.png")
  figures.append(("training vs test accuracy", "train_vs_test"))
  if _zhang_figure1(
    plt, groups, ordering, varying, last_epoch, steps_per_epoch, plots / "zhang_figure1.png"
  ):
    figures.append(("Zhang et al. Figure 1", "zhang_figure1"))
  fig, axes = _grid(plt, groups, "loss per epoch (mean ± std over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    _band(ax, grows, "epoch", "train/loss", "train loss", "tab:blue")
    _band(ax, grows, "epoch", "val/loss", "val loss", "tab:green")
    _band(ax, grows, "epoch", "test/loss", "test loss", "tab:red", marker=".")
    ax.set(title=_short_label(key, varying), xlabel="epoch", ylabel="loss")
    ax.title.set_fontsize(9)
    _integer_x(ax)
    ax.grid(True)
  _finish(plt, fig, axes, len(groups), plots / "loss.png")
  figures.append(("loss", "loss"))
  for alt, name in figures:
    lines += ["", f"![{alt}](plots/{name}.png)"]
  return lines


def timing_lines(timing: dict[str, Any] | None) -> list[str]:
  if not timing:
    return []
  return [
    "",
    "## Timing",
    "",
    f"- device: {timing.get('device')} ({timing.get('backend')}), jax {timing.get('jax')}",
    f"- compile: {timing.get('compile_s', float('nan')):.2f} s; rounds timed: "
    f"{timing.get('rounds_timed')}",
    f"- seconds per round: median {timing.get('round_s_median', float('nan')):.3f}, "
    f"min {timing.get('round_s_min', float('nan')):.3f}, "
    f"max {timing.get('round_s_max', float('nan')):.3f}",
    f"- conv formulation {timing.get('conv_impl')}, step driver {timing.get('driver')}"
    + (f", recurrences {timing['rnn_impl']}" if timing.get("rnn_impl") else ""),
  ] + _program_lines(timing.get("programs") or [])


def format_bytes(value) -> str:
  """`45 MiB`, or `486 KiB` below a MiB (tiny models' runs); `n/a` when not known."""
  if not value:
    return "n/a"
  return f"{value / 2**20:,.0f} MiB" if value >= 2**20 else f"{value / 2**10:,.0f} KiB"


def _program_lines(programs: list[dict[str, Any]]) -> list[str]:
  """Which groups shared which compiled program, its memory and its seconds per round."""
  if not programs:
    return []
  lines = [
    "",
    "Compiled programs (memory: the engine's estimate per run, and XLA's figure for one call: "
    "arguments, outputs and temporaries; seconds: until the program's results each round, "
    "median over rounds after the first):",
    "",
    "| program | groups | runs | runs per call | compile s | s per round | memory per run "
    "(estimate) | memory per call (XLA) |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for p in programs:
    seconds = p.get("round_s_median")
    lines.append(
      f"| {p.get('program')} | {', '.join(f'`{g}`' for g in p.get('groups', []))} | "
      f"{p.get('runs')} | {p.get('runs_per_call')} | {p.get('compile_s', 0.0):.1f} | "
      + (f"{seconds:.2f}" if seconds is not None else "n/a")
      + f" | {format_bytes(p.get('memory_estimate_bytes_per_run'))} | "
      f"{format_bytes(p.get('xla_peak_bytes_per_call'))} |"
    )
  return lines


REPORTS = {"swap": swap_report, "memorize": memorize_report}  # per config.STUDY_KINDS


def read_timing(path: Path) -> dict[str, Any] | None:
  """The workdir's timing.json, or None if it is missing or unreadable."""
  timing_path = path / "timing.json"
  try:
    return json.loads(timing_path.read_text()) if timing_path.exists() else None
  except (OSError, ValueError):
    return None


def write(workdir: str | Path) -> Path:
  """Writes report.md and plots/ from the workdir's files; returns the report path."""
  wd = Workdir(str(workdir))
  meta = wd.read_config() or {}
  config = meta.get("config", {})
  rows = wd.read_metrics()
  timing = read_timing(wd.path)
  plots = wd.path / "plots"
  plots.mkdir(exist_ok=True)
  lines = [
    f"# {meta.get('experiment', 'study')}",
    "",
    config.get("description", ""),
    "",
    f"- data: {meta.get('data_source')}",
    f"- runs: {meta.get('num_runs')}",
    f"- swapjax {meta.get('swapjax')}, jax {meta.get('jax')}, flax {meta.get('flax')}",
  ]
  lines += [f"- note: {n}" for n in meta.get("notes", [])]
  if meta.get("protocol"):
    lines += ["", "## Protocol and deviations from the report", "", "```", meta["protocol"], "```"]
  lines.append("")
  if not rows:
    lines.append("No completed rounds yet.")
  elif config.get("report") == "curves":
    from swapjax import registry
    from swapjax.report_curves import curves_report

    module = registry.registry().get(meta.get("experiment", ""))
    reference = getattr(module, "REFERENCE", None) if module else None
    truth = getattr(module, "TRUE_PARAMETERS", None) if module else None
    extra = {"reference": reference or {}, "true_parameters": truth or {}}
    lines += curves_report({**config, **extra}, rows, plots)
  else:
    lines += REPORTS[config.get("study", "swap")](config, rows, plots)
  lines += timing_lines(timing)
  path = wd.path / "report.md"
  atomic_write_text(path, "\n".join(lines) + "\n")
  return path


# ---------------------------------------------------------------- comparing studies


def main(argv: list[str] | None = None) -> int:
  """`python -m swapjax.report WORKDIR [WORKDIR ...]` (see report_compare.py)."""
  from swapjax import report_compare

  return report_compare.main(argv)


if __name__ == "__main__":
  sys.exit(main())
