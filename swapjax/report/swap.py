"""The swap study's report: final accuracies per condition group (mean ± std over seeds) and
report 000's figures, accuracy and loss per round for AtoB and BtoA, with the honest test splits."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from swapjax.report import grouping, plotting, stats
from swapjax.report.grouping import SWAP_GROUP

# The swap study's main accuracies: the report's leaky "test", the never-seen part, the holdout.
SWAP_ACCURACIES = (
  "AtoB/test_acc",
  "BtoA/test_acc",
  "AtoB/test_unseen_acc",
  "BtoA/test_unseen_acc",
  "AtoB/holdout_acc",
  "BtoA/holdout_acc",
)
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
FIGURES = (
  "",
  "![accuracy](plots/accuracy.png)",
  "",
  "![loss](plots/loss.png)",
  "",
  "![honest accuracy](plots/honest_accuracy.png)",
)


def swap_report(config, rows, plots: Path) -> list[str]:
  """Markdown lines (the final round's table) and, with matplotlib, the figures in `plots`."""
  plt = plotting.pyplot()
  groups = grouping.by_key(rows, SWAP_GROUP)
  varying = grouping.varying(rows, SWAP_GROUP)
  lines = _final_table(groups, varying, final_round=max(r["round"] for r in rows))
  if plt is None:
    return lines + ["", plotting.NO_PLOTS]
  titles = [grouping.label(key, SWAP_GROUP, varying) for key in groups]
  # Report 000's two figures (accuracy and loss per round, AtoB and BtoA), one panel per group.
  for kind, what in (("acc", "accuracy"), ("loss", "loss")):
    _per_round_figure(plt, groups, titles, kind, what, plots / f"{what}.png")
  _honest_figure(plt, groups, titles, plots / "honest_accuracy.png")
  return lines + list(FIGURES)


def _final_table(groups, varying, final_round: int) -> list[str]:
  """Each group's accuracies at `final_round` and the samples its runs moved in all rounds."""
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
      stats.mean_std([r.get(m) for r in last])
      for m in (*SWAP_ACCURACIES, "AtoB/train_acc", "BtoA/train_acc")
    ]
    lines.append(
      f"| {grouping.label(key, SWAP_GROUP, varying)} | {len(last)} | "
      + " | ".join(cells)
      + f" | {stats.mean_std(list(moved.values()))} |"
    )
  return lines


def _per_round_figure(plt, groups, titles, kind: str, what: str, path: Path):
  """AtoB's and BtoA's train and test `kind` (acc or loss) per round, one panel per group."""
  fig, axes = plotting.grid(plt, groups, f"{what} per round (mean ± std over seeds)")
  for ax, grows, title in zip(axes, groups.values(), titles, strict=False):
    series = stats.RoundSeries(grows, "round")
    for name, color in SWAP_COLORS.items():
      member, split = name.split("_")
      plotting.band(ax, series, f"{member}/{split}_{kind}", name, color)
    plotting.style_panel(ax, title, "round", what)
  plotting.finish(plt, fig, axes, len(groups), path)


def _honest_figure(plt, groups, titles, path: Path):
  """The three test splits' accuracy per round (HONEST), one panel per group."""
  fig, axes = plotting.grid(plt, groups, "honest test accuracy per round (mean ± std over seeds)")
  for ax, grows, title in zip(axes, groups.values(), titles, strict=False):
    series = stats.RoundSeries(grows, "round")
    for metric, color, style in HONEST:
      plotting.band(ax, series, metric, metric, color, ls=style)
    plotting.style_panel(ax, title, "round", "accuracy")
  plotting.finish(plt, fig, axes, len(groups), path, ncol=3)  # a row per member
