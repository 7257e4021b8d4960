"""Several studies side by side (`python -m swapjax.report W1 W2 [...] [--out=DIR]`): per group
present in every study, the main metrics' final mean ± spread, one column per study; the config
keys and the machines that differ."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from swapjax.report import files, plotting, stats
from swapjax.report.swap import SWAP_ACCURACIES
from swapjax.workdir import atomic_write_text

COMPARE_METRICS = (  # the main numbers: the single-model studies', then the swap study's
  "train/epoch_acc",
  "train/acc",
  "val/acc",
  "val/loss",
  "test/acc",
  *SWAP_ACCURACIES,
)
RUN_KEYS = ("experiment", "swapjax", "jax", "flax", "device", "backend", "device_count")
RUN_KEYS += ("data_source",)


def final_values(rows, group_of=lambda row: str(row.get("group", "all"))):
  """{group: {metric: each run's last value}} of COMPARE_METRICS; a metric measured every few
  epochs (test) counts at each run's last measurement."""
  key = stats.round_key(rows)
  last: dict[tuple[str, int], dict[str, float]] = {}
  for r in sorted(rows, key=lambda r: r[key]):
    values = last.setdefault((group_of(r), r["run"]), {})
    values.update({m: r[m] for m in COMPARE_METRICS if r.get(m) is not None})
  out: dict[str, dict[str, list[float]]] = {}
  for (group, _), values in last.items():
    for metric, value in values.items():
      out.setdefault(group, {}).setdefault(metric, []).append(value)
  return out


NOT_CONDITIONS = {"run", "seed", "group", "round", "epoch", "fit_epoch"}


def _group_matcher(studies_rows):
  """(row -> group name, note): groups matched by name when some name is in every study, else
  by their condition values (the run-axis keys all studies' rows hold, e.g. `dropout_rate`), so
  a study grouped by more axes (`train_fraction=0.2,dropout_rate=0.0`) still meets `dropout_rate
  =0.0`. Named then by the values that vary among all the studies' groups."""
  by_name = lambda row: str(row.get("group", "all"))  # noqa: E731
  names = [{by_name(r) for r in rows} for rows in studies_rows]
  if set.intersection(*names):  # some group in every study by name
    return by_name, None
  keys = sorted(
    set.intersection(
      *(
        {k for r in rows for k in r if "/" not in k and k not in NOT_CONDITIONS}
        for rows in studies_rows
      )
    )
  )
  values = lambda row: tuple(json.dumps(row.get(k), sort_keys=True) for k in keys)  # noqa: E731
  for rows in studies_rows:  # one condition tuple per group name, or the names must stay
    seen = defaultdict(set)
    for r in rows:
      seen[values(r)].add(by_name(r))
    if any(len(groups) > 1 for groups in seen.values()):
      return by_name, None
  all_values = {values(r) for rows in studies_rows for r in rows}
  varying = [i for i, _ in enumerate(keys) if len({v[i] for v in all_values}) > 1]

  def by_values(row):
    v = values(row)
    return ",".join(f"{keys[i]}={json.loads(v[i])}" for i in varying) or "all"

  shown = ", ".join(f"`{k}`" for k in keys)
  return by_values, f"The studies name their groups differently: matched by {shown}."


def _unique_names(workdirs) -> list[str]:
  """Each workdir's folder name; a repeated name gets `_2`, `_3`, ..."""
  names: list[str] = []
  for workdir in workdirs:
    base = Path(workdir).expanduser().resolve().name or str(workdir)
    name, n = base, 1
    while name in names:
      n += 1
      name = f"{base}_{n}"
    names.append(name)
  return names


def _cell(value) -> str:
  text = value if isinstance(value, str) else json.dumps(value)
  return text.replace("|", "\\|").replace("\n", " ")


def _row(cells) -> str:
  return "| " + " | ".join(cells) + " |"


def _seconds(value) -> str:
  return "n/a" if not isinstance(value, int | float) else f"{value:.3g}"


def _differences(names, metas, timings) -> list[str]:
  configs = [meta.get("config", {}) for meta in metas]
  keys = sorted({k for c in configs for k in c})
  differ = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]
  lines = ["", "## Config keys that differ", ""]
  if differ:
    lines += [_row(["key", *names]), _row(["---"] * (len(names) + 1))]
    lines += [_row([f"`{k}`", *(_cell(c.get(k, "(absent)")) for c in configs)]) for k in differ]
  else:
    lines.append("None: every study ran the same config.")
  lines += ["", "## Where and how they ran", ""]
  lines += [_row(["run", *names]), _row(["---"] * (len(names) + 1))]
  for key in RUN_KEYS:
    values = [meta.get(key) for meta in metas]
    if len({json.dumps(v) for v in values}) > 1:
      lines.append(_row([key, *(_cell(v) for v in values)]))
  for key, what in (("round_s_median", "seconds per round (median)"), ("compile_s", "compile s")):
    lines.append(_row([what, *(_seconds((t or {}).get(key)) for t in timings)]))
  return lines


def _compare_figure(plt, names, finals, groups, metrics, path: Path) -> None:
  """One panel per metric: each group's mean ± std per study, side by side."""
  swap = any(m.startswith("AtoB/") for m in metrics)
  cols = 2 if swap else min(3, len(metrics))  # swap: AtoB and BtoA side by side
  nrows = -(-len(metrics) // cols)
  height = 1.2 + 0.22 * len(groups) * max(2, len(names))
  fig, axes = plt.subplots(
    nrows,
    cols,
    figsize=(4.2 * cols + 1.5, height * nrows),
    squeeze=False,
    sharey=True,
    layout="constrained",
  )
  axes = axes.ravel()
  ys = np.arange(len(groups))
  offsets = (np.arange(len(names)) - (len(names) - 1) / 2) * 0.7 / len(names)
  for ax, metric in zip(axes, metrics, strict=False):
    for s, (name, final) in enumerate(zip(names, finals, strict=True)):
      stats = []
      for group in groups:
        vals = [v for v in final[group].get(metric, []) if math.isfinite(v)]
        stats.append((np.mean(vals), np.std(vals)) if vals else (np.nan, np.nan))
      means, stds = np.array(stats).T
      ax.errorbar(means, ys + offsets[s], xerr=stds, fmt="o", color=f"C{s}", capsize=3, label=name)
    ax.set_title(metric, fontsize=10)
    ax.set_yticks(ys, groups, fontsize=8)
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top, as in the table
    ax.grid(True, axis="x")
  fig.suptitle("final values per group (mean ± std over seeds)")
  plotting.finish(plt, fig, axes, len(metrics), path)


def compare(workdirs, out: str | Path | None = None) -> str:
  """Markdown comparing studies: per group present in all of them, the main metrics' final
  mean ± std, one column per study, then what differs between them. With `out`, also written
  as out/compare.md with the figure out/compare.png."""
  loaded = [files.load_study(w) for w in workdirs]
  names = _unique_names(workdirs)
  metas = [meta for meta, _ in loaded]
  group_of, matched = _group_matcher([rows for _, rows in loaded])
  finals = [final_values(rows, group_of) for _, rows in loaded]
  groups = [g for g in finals[0] if all(g in f for f in finals[1:])]
  metrics = [m for m in COMPARE_METRICS if any(m in f[g] for f in finals for g in groups)]
  lines = _studies_table(names, workdirs, loaded)
  lines += _finals_table(names, finals, groups, metrics, matched)
  timings = [files.read_timing(Path(w).expanduser()) for w in workdirs]
  lines += _differences(names, metas, timings)
  text = "\n".join(lines) + "\n"
  if out is not None:
    _write_out(Path(out).expanduser(), text, names, finals, groups, metrics)
  return text


def _studies_table(names, workdirs, loaded) -> list[str]:
  """One row per study: its workdir, experiment, last round (or epoch) and number of runs."""
  lines = [
    f"# Comparison of {len(workdirs)} studies",
    "",
    _row(["study", "workdir", "experiment", "last round", "runs"]),
    _row(["---", "---", "---", "---:", "---:"]),
  ]
  for name, workdir, (meta, rows) in zip(names, workdirs, loaded, strict=True):
    key = stats.round_key(rows)
    last = max(r[key] for r in rows)
    runs = len({r["run"] for r in rows})
    experiment = meta.get("experiment", "")
    lines.append(_row([name, f"`{workdir}`", experiment, f"{key} {last}", str(runs)]))
  return lines


def _finals_table(names, finals, groups, metrics, matched) -> list[str]:
  """Per group in every study: its seeds and each metric's final mean ± std, a column a study;
  then the groups some study lacks."""
  lines = [
    "",
    "## Final values per group (mean ± std over seeds)",
    "",
    "Each run's last value (metrics measured every few epochs, like test: its last measurement);"
    " groups present in every study.",
    "",
  ]
  if matched:
    lines += [matched, ""]
  if groups and metrics:
    lines += [_row(["group", "metric", *names]), _row(["---", "---"] + ["---"] * len(names))]
    for group in groups:
      lines.append(
        _row([f"`{group}`", "seeds", *(str(max(map(len, f[group].values()))) for f in finals)])
      )
      for metric in metrics:
        cells = (stats.mean_std(f[group].get(metric, [])) for f in finals)
        lines.append(_row([f"`{group}`", metric, *cells]))
  else:
    lines.append("No group with these metrics is present in every study.")
  only = [
    f"`{g}` ({name})" for name, f in zip(names, finals, strict=True) for g in f if g not in groups
  ]
  if only:
    lines += ["", "Groups not in every study: " + ", ".join(only)]
  return lines


def _write_out(out: Path, text: str, names, finals, groups, metrics) -> None:
  """out/compare.md and, with matplotlib and something to draw, out/compare.png."""
  out.mkdir(parents=True, exist_ok=True)
  plt = plotting.pyplot()
  figure = ""
  if plt is not None and groups and metrics:
    _compare_figure(plt, names, finals, groups, metrics, out / "compare.png")
    figure = "\n![final values per group](compare.png)\n"
  atomic_write_text(out / "compare.md", text + figure)
