"""matplotlib for the report's figures: pyplot where installed, a grid of panels, mean ± std
bands over seeds, and one legend below the grid before saving."""

from __future__ import annotations

from pathlib import Path

NO_PLOTS = (
  "Plots skipped: matplotlib is not installed (`pip install matplotlib`, then "
  "`python -m swapjax.report WORKDIR`)."
)


def pyplot():
  """pyplot with the Agg backend, or None where matplotlib is missing (tables only)."""
  try:
    import matplotlib
  except ImportError:
    return None

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def grid(plt, groups, title, sharey=True):
  """One axes per group (3 to a row) under `title`; constrained layout, so `finish` can put the
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


def integer_x(ax):
  """Whole numbers only on the x axis (rounds, epochs)."""
  from matplotlib.ticker import MaxNLocator

  ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def style_panel(ax, title, xlabel, ylabel):
  """A grid panel's small title, axis labels, whole-number x ticks and grid lines."""
  ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
  ax.title.set_fontsize(9)
  integer_x(ax)
  ax.grid(True)


def finish(plt, fig, axes, used: int, path: Path, ncol: int | None = None):
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


def band(ax, series, metric, label, color, scale=1, alpha=0.2, **style):
  """`metric`'s per-round mean over runs (`series`: a `stats.RoundSeries`) as a line, ± their
  std as a shaded band (x times `scale`)."""
  found = series(metric)
  if found is None:
    return
  xs, ys = found
  mean, std = ys.mean(0), ys.std(0)
  ax.plot(xs * scale, mean, color=color, label=label, **style)
  ax.fill_between(xs * scale, mean - std, mean + std, color=color, alpha=alpha, lw=0)
