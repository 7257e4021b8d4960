"""Numbers as the report prints them: mean ± std over seeds, to the precision the spread supports,
and per-round series matched across runs."""

from __future__ import annotations

import decimal
import math
from collections import defaultdict

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


def per_round(rows, round_key, metric):
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
