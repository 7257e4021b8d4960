"""`report.md` and `plots/*.png`: a pure function of config.json, metrics.jsonl (and timing.json).

Rebuild without retraining: `python -m swapjax.report WORKDIR`.
"""

from __future__ import annotations

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
MEMORIZE_GROUP = ("input_corruption", "label_corruption", "learning_rate")


def _group_key(row, keys):
  return tuple(row.get(k) for k in keys)


def _label(key, keys, varying):
  parts = [f"{k}={v}" for k, v in zip(keys, key, strict=True) if k in varying]
  return ", ".join(parts) or "all runs"


def _varying(rows, keys):
  return [k for k in keys if len({r.get(k) for r in rows}) > 1] or [keys[0]]


def _stat(values, fmt: str = ".4f"):
  vals = [v for v in values if v is not None and math.isfinite(v)]
  if not vals:
    return "n/a"
  return f"{np.mean(vals):{fmt}} ± {np.std(vals):{fmt}}"


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


def _band(ax, rows, round_key, metric, label, color):
  series = _per_round(rows, round_key, metric)
  if series is None:
    return
  xs, ys = series
  mean, std = ys.mean(0), ys.std(0)
  ax.plot(xs, mean, color=color, label=label)
  ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2)


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


def _grid(plt, groups, title):
  n = len(groups)
  cols = min(3, n)
  nrows = -(-n // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
  fig.suptitle(title)
  return fig, axes.ravel()


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
      for m in (
        "AtoB/test_acc",
        "BtoA/test_acc",
        "AtoB/test_unseen_acc",
        "BtoA/test_unseen_acc",
        "AtoB/holdout_acc",
        "BtoA/holdout_acc",
        "AtoB/train_acc",
        "BtoA/train_acc",
      )
    ]
    lines.append(
      f"| {_label(key, SWAP_GROUP, varying)} | {len(last)} | "
      + " | ".join(cells)
      + f" | {_stat(list(map(float, moved.values())))} |"
    )
  if plt is None:
    lines += ["", NO_PLOTS]
    return lines
  colors = {
    "AtoB_test": "tab:blue",
    "BtoA_test": "tab:green",
    "AtoB_train": "tab:red",
    "BtoA_train": "tab:gray",
  }
  for kind in ("acc", "loss"):
    fig, axes = _grid(plt, groups, f"{kind} against rounds (mean ± std over seeds)")
    for ax, (key, grows) in zip(axes, groups.items(), strict=False):
      for name, color in colors.items():
        member, split = name.split("_")
        _band(ax, grows, "round", f"{member}/{split}_{kind}", name, color)
      ax.set_title(_label(key, SWAP_GROUP, varying), fontsize=9)
      ax.set_xlabel("round")
      ax.set_ylabel(kind)
      ax.grid(True)
      ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plots / f"{'accuracy' if kind == 'acc' else 'loss'}.png", dpi=90)
    plt.close(fig)
  fig, axes = _grid(plt, groups, "honest test accuracy (mean ± std over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    for metric, color in [
      ("AtoB/test_acc", "tab:blue"),
      ("AtoB/test_unseen_acc", "tab:cyan"),
      ("AtoB/holdout_acc", "tab:purple"),
      ("BtoA/test_acc", "tab:green"),
      ("BtoA/test_unseen_acc", "tab:olive"),
      ("BtoA/holdout_acc", "tab:brown"),
    ]:
      _band(ax, grows, "round", metric, metric, color)
    ax.set_title(_label(key, SWAP_GROUP, varying), fontsize=9)
    ax.set_xlabel("round")
    ax.grid(True)
    ax.legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(plots / "honest_accuracy.png", dpi=90)
  plt.close(fig)
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
      f"{len(fitted)}/{len(fits)} | {_stat(map(float, fitted), '.1f')} | "
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
  # Zhang et al. Figure 1: (a) training loss against steps per corruption kind.
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
  cmap = plt.get_cmap("viridis")
  for i, (key, grows) in enumerate(sorted(groups.items(), key=lambda kv: [str(x) for x in kv[0]])):
    series = _per_round(grows, "epoch", "train/loss")
    if series is None:
      continue
    epochs, losses = series
    axes[0].plot(
      epochs * steps_per_epoch,
      losses.mean(0),
      color=cmap(i / max(1, len(groups) - 1)),
      label=_label(key, MEMORIZE_GROUP, varying),
    )
  axes[0].set(xlabel="training steps", ylabel="training loss", title="(a) learning curves")
  axes[0].legend(fontsize=7)
  axes[0].grid(True)
  for i, (lr, levels) in enumerate(sorted(ordering.items())):
    xs = sorted(levels)
    name = f"lr={lr}, " if len(ordering) > 1 else ""
    color = f"C{i}"
    fit_mean = [np.mean(levels[x]["fits"]) if levels[x]["fits"] else np.nan for x in xs]
    err = [1 - np.mean(levels[x]["tests"]) if levels[x]["tests"] else np.nan for x in xs]
    axes[1].plot(xs, fit_mean, "o-", color=color, label=f"{name}mean epochs to fit (fitted runs)")
    unfit = [x for x in xs if levels[x]["unfit"]]
    if unfit:  # a lower bound: these runs had not fit when the metrics end
      axes[1].plot(
        unfit,
        [last_epoch] * len(unfit),
        "^",
        mfc="none",
        color=color,
        label=f"{name}some runs not fit by epoch {last_epoch}",
      )
    axes[2].plot(xs, err, "o-", color=color, label=f"lr={lr}")
  if ordering:
    axes[1].legend(fontsize=7)
    if len(ordering) > 1:
      axes[2].legend(fontsize=7)
  axes[1].set(xlabel="label corruption", ylabel="epochs to fit", title="(b) time to fit")
  axes[2].set(xlabel="label corruption", ylabel="test error", title="(c) test error")
  axes[2].axhline(0.9, color="gray", ls="--", lw=1)
  for ax in axes[1:]:
    ax.grid(True)
  fig.tight_layout()
  fig.savefig(plots / "zhang_figure1.png", dpi=90)
  plt.close(fig)
  fig, axes = _grid(plt, groups, "loss per epoch (mean over seeds)")
  for ax, (key, grows) in zip(axes, groups.items(), strict=False):
    _band(ax, grows, "epoch", "train/loss", "train loss", "tab:blue")
    _band(ax, grows, "epoch", "val/loss", "val loss", "tab:green")
    _band(ax, grows, "epoch", "test/loss", "test loss", "tab:red")
    ax.set_title(_label(key, MEMORIZE_GROUP, varying), fontsize=9)
    ax.set_xlabel("epoch")
    ax.grid(True)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(plots / "loss.png", dpi=90)
  plt.close(fig)
  lines += ["", "![Zhang et al. Figure 1](plots/zhang_figure1.png)", "", "![loss](plots/loss.png)"]
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
    f"- conv formulation {timing.get('conv_impl')}, step driver {timing.get('driver')}",
  ]


REPORTS = {"swap": swap_report, "memorize": memorize_report}  # per config.STUDY_KINDS


def write(workdir: str | Path) -> Path:
  """Writes report.md and plots/ from the workdir's files; returns the report path."""
  wd = Workdir(str(workdir))
  meta = wd.read_config() or {}
  config = meta.get("config", {})
  rows = wd.read_metrics()
  timing_path = wd.path / "timing.json"
  timing = json.loads(timing_path.read_text()) if timing_path.exists() else None
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
    lines += curves_report({**config, "reference": reference or {}}, rows, plots)
  else:
    lines += REPORTS[config.get("study", "swap")](config, rows, plots)
  lines += timing_lines(timing)
  path = wd.path / "report.md"
  atomic_write_text(path, "\n".join(lines) + "\n")
  return path


if __name__ == "__main__":
  print(write(sys.argv[1]))
