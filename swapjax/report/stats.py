"""Numbers as the report prints them: mean ± std over seeds, to the precision the spread supports,
and per-round series matched across runs."""

from __future__ import annotations

import decimal
import math

import numpy as np


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


def mean_std(values) -> str:
  """Mean ± population std (ddof 0) of the finite values, formatted by `format_stat`."""
  vals = [v for v in values if v is not None and math.isfinite(v)]
  if not vals:
    return "n/a"
  integral = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in vals)
  if min(vals) == max(vals):  # exactly no spread (np.std can leave float noise here)
    return format_stat(vals[0], 0.0, integral)
  return format_stat(float(np.mean(vals)), float(np.std(vals)), integral)


def round_key(rows) -> str:
  """The rows' round field: `round` (swap studies) or `epoch` (single-network studies)."""
  return "round" if "round" in rows[0] else "epoch"


class RoundSeries:
  """Rows' metrics per run, matched by round: `series(metric)` is (rounds, values_RUNxROUND) at
  the rounds where every run with the metric has it, or None if no row has it.

  Runs are matched by round, not by position: a run stopped early repeats its last row (its test
  metrics too) every later epoch, while the others have test metrics every few epochs only.
  Only runs with the metric count, each a row of the values, in the order of their first rows; a
  round a run has twice keeps its later row. Each row's run and round are read once, then each
  metric in one pass over the rows (in the order they were written, a pass touches the rows
  where they lie in memory), kept for the next call.
  """

  def __init__(self, rows, round_key: str):
    self.rows = rows
    ids, first, run_of = np.unique([r["run"] for r in rows], return_index=True, return_inverse=True)
    place = np.empty(len(ids), int)  # each run's place in the order of its first row
    place[np.argsort(first, kind="stable")] = np.arange(len(ids))
    self.run_of, self.num_runs = place[run_of.ravel()], len(ids)
    self.xs, round_of = np.unique([r[round_key] for r in rows], return_inverse=True)
    self.round_of = round_of.ravel()
    self._found: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

  def __call__(self, metric: str):
    """(rounds, values_RUNxROUND) of `metric`, or None if no row has it."""
    if metric not in self._found:
      self._found[metric] = self._series(metric)
    return self._found[metric]

  def _series(self, metric: str):
    values = [r.get(metric) for r in self.rows]
    where = np.flatnonzero([v is not None for v in values])
    if not where.size:
      return None
    try:  # numbers as float64 (None: NaN, dropped here); anything else as numpy reads it
      found = np.array(values, np.float64)[where]
    except (TypeError, ValueError):
      found = np.array([values[i] for i in where.tolist()])
    run_of = self.run_of[where]
    has_metric = np.bincount(run_of, minlength=self.num_runs) > 0
    runs = np.cumsum(has_metric) - 1  # a run's row of the table: runs without the metric skipped
    cell = runs[run_of] * len(self.xs) + self.round_of[where]
    latest = np.full(has_metric.sum() * len(self.xs), -1)  # per (run, round): its last row
    np.maximum.at(latest, cell, np.arange(len(where)))
    latest = latest.reshape(-1, len(self.xs))
    common = (latest >= 0).all(0)
    # C order, as a table made row by row: a std over runs sums in the same order
    return self.xs[common], np.ascontiguousarray(found[latest[:, common]])
