"""A round's metrics rows, one per run, as `metrics.jsonl` and TensorBoard take them.

A row is the round (`round`, or `epoch` for a single-network study), the run's fixed fields (its
study-wide index `run`, its `group`, its `variant`, the values of the run axes the experiment uses,
the experiment's row fields) and the run's metrics this round, then `time/round_s` (the seconds
from the previous round's results to this round's, the host's work included; a process's first
round: from its dispatch). The fixed fields are laid out once per study (`Layout`, their JSON text
included); a round adds its metric columns (`RoundRows`). The JSON lines are written from the
columns: a study of thousands of tiny networks writes thousands of rows a round, and a dict and a
`json.dumps` per row cost several times such a round; the text is written by C++ where
`swapjax.rows_text` is built, else in Python, the same bytes. `RoundRows.dicts()` gives the same
rows as dicts, in run order.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import orjson

from swapjax import rows_text
from swapjax.tensorboard import finite_mean, split_row


def clean(value):
  """A metric value as a JSON-able Python scalar; None for NaN and Inf."""
  value = value.item() if hasattr(value, "item") else value
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _finite(value: np.float64) -> float | None:
  """A float column's value as `clean_column` gives it."""
  return float(value) if math.isfinite(value) else None


def clean_column(values) -> list:
  """A metric's per-run values as `clean` makes each one, converted at once."""
  array = np.asarray(values)
  if array.ndim != 1:
    return [clean(v) for v in values]
  column = array.tolist()
  if array.dtype.kind == "f" and not (finite := np.isfinite(array)).all():
    if not finite.any():  # a metric no run has this round (no validation split)
      return [None] * len(column)
    for i in np.flatnonzero(~finite).tolist():
      column[i] = None
  return column


def _kind(values) -> str:
  """The numpy kind of a metric's per-run values ("b", "i", "u", "f"), "O" if not a vector."""
  array = np.asarray(values)
  return array.dtype.kind if array.ndim == 1 else "O"


def _encoded(column: list | None, kind: str, numbers: np.ndarray | None) -> list[str]:
  """Each value's JSON text, as `json.dumps` writes it: for a column of numbers, booleans and
  nulls one `orjson.dumps` (its float texts are Python's shortest ones), with `json.dumps`' own
  text for the floats orjson writes otherwise (exponents: `1e-05` there, `1e-5` or `0.00001` in
  orjson; below 1e-4 and from 1e16 on); one `json.dumps` per value for anything else (the
  non-float rule is `rows_text.values_text`, the C++ writer's too). A float
  column is written from `numbers`, its values as float64 (NaN and Inf for null: orjson writes
  null); its `column` is None (`Layout.rows` makes no list of it)."""
  if kind == "f":
    if not len(numbers):
      return []
    text = orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    texts = text.removeprefix("[").removesuffix("]").split(",")
    magnitude = np.abs(numbers)
    odd = (magnitude < 1e-4) & (magnitude > 0) | (magnitude >= 1e16) & np.isfinite(magnitude)
    for i in np.flatnonzero(odd).tolist():
      texts[i] = json.dumps(float(numbers[i]))
    return texts
  if not column:
    return []
  text, separator = rows_text.values_text(column, kind)
  return text.decode()[: -len(separator)].split(separator)


class Layout:
  """The fixed part of every round's rows: per program (in the study's order) each run's
  fixed fields as a dict (`heads`) and as JSON text, and the order of all runs by run id."""

  def __init__(self, programs, axes: tuple[str, ...] | None, round_key: str):
    self.round_key = round_key
    self.heads: list[list[dict[str, Any]]] = []
    for built in programs:
      fields = [tuple(field.split("=", 1)) for field in built.config.study.row_fields]
      heads = []
      for run_id, group, run in zip(built.run_ids, built.groups, built.runs_table, strict=True):
        head = {"run": run_id, "group": group}
        head.update((k, run[k]) for k in run if axes is None or k in axes or k == "variant")
        head.update(fields)
        heads.append(head)
      self.heads.append(heads)
    self.texts = [[json.dumps(h)[1:-1] for h in heads] for heads in self.heads]
    places = [(h["run"], b, i) for b, heads in enumerate(self.heads) for i, h in enumerate(heads)]
    self.order = [(b, i) for _, b, i in sorted(places)]
    self.in_blocks = self.order == [
      (b, i) for b, heads in enumerate(self.heads) for i in range(len(heads))
    ]
    self.place = {run_id: (b, i) for run_id, b, i in places}
    self.offsets = np.cumsum([0, *map(len, self.heads)])[:-1].tolist()
    self._groups: dict[str, list[tuple[int, int]]] | None = None
    self._shared: dict[tuple[str, str], bool] = {}
    self._flat: dict[str, np.ndarray | slice] = {}
    # Built (on the machine's first use) before the rounds, not in the first one.
    self._writer = rows_text.Writer(self.texts, self.order) if rows_text.library() else None

  def writer(self) -> rows_text.Writer | None:
    """The C++ writer of the rounds' text (`swapjax.rows_text`), None where it is not built."""
    return self._writer

  def groups(self) -> dict[str, list[tuple[int, int]]]:
    """{group: its runs' places (program, position)}, groups in order of appearance."""
    if self._groups is None:
      self._groups = {}
      for b, i in self.order:
        self._groups.setdefault(str(self.heads[b][i].get("group", "all")), []).append((b, i))
    return self._groups

  def flat(self, group: str) -> np.ndarray | slice:
    """The places of `group`'s runs in the programs' runs one after another: a slice where
    they follow each other (a view, not a copy, of a column)."""
    if group not in self._flat:
      places = np.array([self.offsets[b] + i for b, i in self.groups()[group]], int)
      consecutive = len(places) and (np.diff(places) == 1).all()
      self._flat[group] = slice(places[0], places[-1] + 1) if consecutive else places
    return self._flat[group]

  def shared(self, group: str, key: str) -> bool:
    """Whether every run of `group` has the first one's fixed field `key`."""
    if (group, key) not in self._shared:
      members = self.groups()[group]
      b0, i0 = members[0]
      value = self.heads[b0][i0][key]
      self._shared[group, key] = all(self.heads[b][i].get(key) == value for b, i in members)
    return self._shared[group, key]

  def rows(self, results, rnd: int, previous, round_s: float) -> RoundRows:
    """Round `rnd`'s rows from [(program, host metrics)] in the study's order. A run that
    stopped (`active` false) repeats its last row's metrics (`previous.get(run_id)`)."""
    blocks = []
    for b, (built, metrics) in enumerate(results):
      names = [k for k in metrics if k != "active"]
      kinds = [_kind(metrics[k]) for k in names]
      # A float column is kept as float64 only (its list is made when a row is read); the
      # numeric columns as float64 (NaN for None) serve TensorBoard's group means.
      columns = [
        None if kind == "f" else clean_column(metrics[k])
        for k, kind in zip(names, kinds, strict=True)
      ]
      if "fit_epoch" in names:
        j = names.index("fit_epoch")
        columns[j] = [v if v is not None and v > 0 else None for v in columns[j]]
      numbers = {
        k: np.array(metrics[k], np.float64)
        for k, kind in zip(names, kinds, strict=True)
        if kind in "iuf"
      }
      if "fit_epoch" in numbers:
        numbers["fit_epoch"] = np.where(numbers["fit_epoch"] > 0, numbers["fit_epoch"], np.nan)
      if "active" in metrics and previous:
        for r in np.flatnonzero(~np.asarray(metrics["active"], bool)).tolist():
          if prev := previous.get(built.run_ids[r]):  # stopped: metrics stay frozen
            for column, name in zip(columns, names, strict=True):
              value = prev.get(name)
              if column is not None:
                column[r] = value
              if name in numbers:
                numbers[name][r] = np.nan if value is None else value
      blocks.append((names, columns, kinds, numbers))
      assert len(self.heads[b]) == len(built.run_ids), "the programs changed"
    return RoundRows(self, rnd + 1, round(round_s, 4), blocks)


class RoundRows:
  """One round's rows as columns (see the module); `len` counts its runs."""

  def __init__(self, layout: Layout, round_value: int, seconds: float, blocks):
    self.layout, self.round_value, self.seconds = layout, round_value, seconds
    self.round_key = layout.round_key
    # Per program: metric names, their columns (None: a float column not yet made into a
    # list, see `_columns`), their numpy kinds, {numeric name: float64}
    self.blocks: list[tuple[list[str], list, list[str], dict[str, np.ndarray]]] = blocks

  def __len__(self) -> int:
    return len(self.layout.order)

  def _columns(self, b: int) -> list[list]:
    """Program `b`'s columns as lists, a float column's made once from its float64 values."""
    names, columns, _, numbers = self.blocks[b]
    for j, column in enumerate(columns):
      if column is None:
        columns[j] = clean_column(numbers[names[j]])
    return columns

  def _row(self, b: int, i: int, columns: list[list] | None = None) -> dict[str, Any]:
    names, lazy, _, numbers = self.blocks[b]
    row = {self.round_key: self.round_value, **self.layout.heads[b][i]}
    for name, column in zip(names, columns or lazy, strict=True):
      row[name] = _finite(numbers[name][i]) if column is None else column[i]
    row["time/round_s"] = self.seconds
    return row

  def dicts(self) -> list[dict[str, Any]]:
    columns = [self._columns(b) for b in range(len(self.blocks))]
    return [self._row(b, i, columns[b]) for b, i in self.layout.order]

  def get(self, run_id: int, default=None) -> dict[str, Any] | None:
    place = self.layout.place.get(run_id)
    return default if place is None else self._row(*place)

  def text(self) -> str:
    """The rows as JSON lines, in run order: `"".join(json.dumps(row) + "\\n")` of `dicts()`."""
    writer = self.layout.writer()
    return self.python_text() if writer is None else str(self.encoded(), "utf-8")

  def encoded(self) -> bytes | memoryview:
    """`text()` as UTF-8 bytes, as metrics.jsonl takes them: written by C++ where
    `swapjax.rows_text` is built, else in Python (`python_text`)."""
    writer = self.layout.writer()
    if writer is None:
      return self.python_text().encode()
    return writer.encoded(self._start(), self._end(), self.blocks)

  def _start(self) -> str:
    return f"{{{json.dumps(self.round_key)}: {json.dumps(self.round_value)}, "

  def _end(self) -> str:
    return f", {json.dumps('time/round_s')}: {json.dumps(self.seconds)}}}\n"

  def python_text(self) -> str:
    """`text()` written in Python: each value's text (`_encoded`), joined line by line."""
    start, end = self._start(), itertools.repeat(self._end())
    lines = []
    for b, (names, columns, kinds, numbers) in enumerate(self.blocks):
      heads = self.layout.texts[b]
      assert all(len(numbers.get(n, c)) == len(heads) for n, c in zip(names, columns, strict=True))
      parts = [itertools.repeat(start), heads]
      for name, column, kind in zip(names, columns, kinds, strict=True):
        values = _encoded(column, kind, numbers.get(name))
        parts += [itertools.repeat(f", {json.dumps(name)}: "), values]
      lines.append(list(map("".join, zip(*parts, end, strict=False))))  # repeat(): endless
    if self.layout.in_blocks:
      return "".join(itertools.chain.from_iterable(lines))
    return "".join(lines[b][i] for b, i in self.layout.order)

  def group_means(self) -> list[dict[str, Any]]:
    """`tensorboard.group_means(self.dicts())`, from the columns: one row per group, its
    fixed fields shared by all its runs, each metric's mean over its runs' finite values."""
    out, numbers_of = [], {}
    for index, (group, members) in enumerate(self.layout.groups().items()):
      first = self._row(*members[0])
      conditions, metrics = split_row(first)
      merged = {
        k: v
        for k, v in conditions.items()
        if k not in ("run", "seed") and self._shared(group, members, k, v)
      }
      merged.update({"run": index, "group": group, "runs": len(members)})
      merged[self.round_key] = self.round_value
      for key in metrics:
        if key not in numbers_of:
          numbers_of[key] = self._numbers(key)
        numbers = numbers_of[key]
        if numbers is None:
          mean = finite_mean(self._values(members, key))
        else:
          values = numbers[self.layout.flat(group)]
          finite = np.isfinite(values)
          if finite.all():  # the common case: no copy of the values
            mean = float(values.mean()) if values.size else None
          else:
            mean = float(values[finite].mean()) if finite.any() else None
        if mean is not None:
          merged[key] = mean
      out.append(merged)
    return out

  def _values(self, members, key: str) -> list:
    if key == "time/round_s":
      return [self.seconds] * len(members)
    columns = [
      self._columns(b)[names.index(key)] if key in names else None
      for b, (names, *_) in enumerate(self.blocks)
    ]
    return [None if columns[b] is None else columns[b][i] for b, i in members]

  def _numbers(self, key: str) -> np.ndarray | None:
    """A numeric metric's values (NaN where none) of every run, the programs one after
    another, as `finite_mean` reads them; None if some program's values are not numbers."""
    if key == "time/round_s":
      return np.full(len(self), self.seconds)
    parts = []
    for (names, _, kinds, numbers), heads in zip(self.blocks, self.layout.heads, strict=True):
      if key not in names:
        parts.append(np.full(len(heads), np.nan))
      elif kinds[names.index(key)] in "iuf":
        parts.append(numbers[key])
      else:
        return None
    return np.concatenate(parts)

  def _shared(self, group: str, members, key: str, value) -> bool:
    if key in self.layout.heads[members[0][0]][members[0][1]]:
      return self.layout.shared(group, key)
    return all(v == value for v in self._values(members, key))
