"""Metrics rows built as columns (swapjax.rows) are the rows one dict per run gives: the same
dicts, the same JSON text (written by C++, swapjax.rows_text, and in Python), the same
TensorBoard group means."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from swapjax import rows as rowlib
from swapjax import rows_text
from swapjax import tensorboard as tb

needs_writer = pytest.mark.skipif(
  rows_text.library() is None, reason=f"no C++ rows writer: {rows_text.unavailable()}"
)


@pytest.fixture(params=["c++", "python"])
def writer(request, monkeypatch):
  """The rows' text written by the C++ library, or in Python as where it cannot be built."""
  if request.param == "python":
    monkeypatch.setattr(rows_text, "library", lambda: None)
  elif rows_text.library() is None:
    pytest.skip(f"no C++ rows writer: {rows_text.unavailable()}")
  return request.param


@pytest.mark.parametrize(
  "values",
  [
    np.array([0.5, np.nan, np.inf, -1.25], np.float32),
    np.array([3, 0, 7], np.int32),
    np.array([True, False]),
    np.array([1.0, 2.0], np.float64),
  ],
)
def test_metric_columns_clean_like_each_value(values):
  """A metric's per-run values are converted at once: the same Python values (None for NaN and
  Inf) and types as the per-value `clean`, so metrics.jsonl is unchanged."""
  got = rowlib.clean_column(values)
  want = [rowlib.clean(v) for v in values]
  assert got == want and [type(g) for g in got] == [type(w) for w in want]
  assert json.dumps(got) == json.dumps(want)


def reference_rows(built, metrics, rnd, previous, round_s, axes, round_key):
  """A row per run, one dict at a time: the rows as they are meant (see swapjax.rows)."""
  names = [k for k in metrics if k != "active"]
  stopped = ~np.asarray(metrics["active"], bool) if "active" in metrics and previous else None
  out = []
  for r, run in enumerate(built.runs_table):
    row = {round_key: rnd + 1, "run": built.run_ids[r], "group": built.groups[r]}
    row.update((k, run[k]) for k in run if axes is None or k in axes or k == "variant")
    row.update(tuple(f.split("=", 1)) for f in built.config.study.row_fields)
    values = {k: rowlib.clean(np.asarray(metrics[k])[r]) for k in names}
    if "fit_epoch" in values and not (values["fit_epoch"] or 0) > 0:
      values["fit_epoch"] = None
    if stopped is not None and stopped[r] and (prev := previous.get(built.run_ids[r])):
      values = {k: prev.get(k) for k in values}
    row.update(values)
    row["time/round_s"] = round(round_s, 4)
    out.append(row)
  return out


def program(run_ids, group, fields=()):
  runs = [{"variant": group, "seed": i % 3, "condition": "none", "unused": 1} for i in run_ids]
  config = SimpleNamespace(study=SimpleNamespace(row_fields=fields))
  return SimpleNamespace(run_ids=tuple(run_ids), groups=(group,) * len(run_ids), runs_table=runs,
                         config=config)  # fmt: skip


def metrics_of(rng, n, active=None):
  m = {
    "train/acc": rng.random(n).astype(np.float32),
    "train/loss": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)).astype(np.float32),
    "fit_epoch": rng.integers(0, 3, n).astype(np.int32),
    "flag%s": rng.random(n) < 0.5,
    "test/acc": np.full(n, np.inf, np.float32),
    # Magnitudes whose texts json and orjson write differently (1e-05 against 1e-5, 1e+16)
    "val/loss": (rng.choice([-1, 0, 1], n) * 10.0 ** rng.uniform(-9, 20, n)).astype(np.float32),
    # Texts with the writers' separators (commas, newlines), quotes and a non-ASCII letter
    "note/text": rng.choice(["a,b", "line\nbreak", 'say "hi"', "é"], n),
  }
  if active is not None:
    m["active"] = active
  return m


INTERLEAVED = ([0, 2, 4, 6, 8], [1, 3, 5], [7, 9, 10, 11])  # run order across the programs
IN_BLOCKS = ([0, 1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11])  # each program's runs in one block


@pytest.mark.parametrize("run_ids", [INTERLEAVED, IN_BLOCKS])
@pytest.mark.parametrize("axes", [None, ("seed",)])
def test_columns_give_the_rows_of_one_dict_per_run(axes, run_ids, writer):
  rng = np.random.default_rng(0)
  programs = [
    program(run_ids[0], "a, b", ("task=x",)),
    program(run_ids[1], "é%d"),
    program(run_ids[2], "a, b"),
  ]
  assert rowlib.Layout(programs, axes, "epoch").in_blocks == (run_ids == IN_BLOCKS)
  layout = rowlib.Layout(programs, axes, "epoch")
  previous = {}
  for rnd in range(3):
    active = None if rnd == 0 else [rng.random(len(p.run_ids)) < 0.6 for p in programs]
    results = [
      (p, metrics_of(rng, len(p.run_ids), None if active is None else active[i]))
      for i, p in enumerate(programs)
    ]
    del results[2][1]["test/acc"]  # a program without one metric: its group means lack it
    results[1][1]["fit_epoch"][:] = 0  # null in every run of one program
    got = layout.rows(results, rnd, previous, 0.123456)
    rows = [reference_rows(p, m, rnd, previous, 0.123456, axes, "epoch") for p, m in results]
    want = sorted((row for program_rows in rows for row in program_rows), key=lambda r: r["run"])
    # Text, group means and one row first: a float column's list is made only for dicts()
    assert got.text() == "".join(json.dumps(row) + "\n" for row in want)
    assert got.group_means() == tb.group_means(want, "epoch")
    assert got.get(5) == next(row for row in want if row["run"] == 5) and got.get(99) is None
    assert got.dicts() == want
    assert [json.loads(line) for line in got.text().splitlines()] == json.loads(json.dumps(want))
    assert len(got) == 12
    assert (got.layout.writer() is None) == (writer == "python")
    assert bytes(got.encoded()) == got.text().encode()  # what metrics.jsonl is appended
    if active is not None:
      assert any((~a).any() for a in active), "the test needs a stopped run"
    previous = got


def test_a_stopped_run_repeats_its_last_metrics():
  p = program([0, 1], "g")
  layout = rowlib.Layout([p], None, "round")
  first = layout.rows([(p, {"a/x": np.array([0.5, 0.25])})], 0, {}, 1.0)
  second = layout.rows(
    [(p, {"a/x": np.array([0.75, 0.125]), "active": np.array([True, False])})], 1, first, 1.0
  )
  assert [row["a/x"] for row in second.dicts()] == [0.75, 0.25]
  assert [row["round"] for row in second.dicts()] == [2, 2]


@needs_writer
def test_the_cxx_float_text_is_python_repr():
  """The C++ writer's float text is `repr` (json.dumps'): random doubles of every exponent,
  float32 values widened (the metrics' own), and the edges of fixed and exponent notation."""
  rng = np.random.default_rng(1)
  bits = np.frombuffer(rng.bytes(8 * 40_000), np.float64)
  with np.errstate(invalid="ignore"):  # NaN's bit patterns
    single = np.frombuffer(rng.bytes(4 * 40_000), np.float32).astype(np.float64)
  normal = rng.standard_normal(20_000).astype(np.float32).astype(np.float64)
  edges = [0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e-05, 1e16, 9999999999999998.0, 1e15]
  edges += [5e-324, 2.2250738585072014e-308, -1.7976931348623157e308, 0.1, 1 / 3, 100.0, 1e22]
  powers = [s * 10.0**k for k in range(-30, 31) for s in (1.0, -1.5, 2.5)]
  values = [float(v) for v in (*bits, *single, *normal, *edges, *powers) if np.isfinite(v)]
  got = [rows_text.float_text(v) for v in values]
  want = [json.dumps(v) for v in values]
  assert got == want
  assert max(map(len, got)) <= rows_text.FLOAT_TEXT


def test_without_a_compiler_the_text_is_written_in_python(monkeypatch, tmp_path):
  """Where the library cannot be built the rows' text is Python's, and `unavailable` says why."""
  monkeypatch.setenv("CXX", "/nonexistent/c++")
  monkeypatch.setenv("SWAPJAX_KERNEL_CACHE", str(tmp_path))
  rows_text._load.cache_clear()
  try:
    assert rows_text.library() is None
    assert "building the metrics rows' text failed" in rows_text.unavailable()
    p = program([0, 1], "g")
    layout = rowlib.Layout([p], None, "round")
    got = layout.rows([(p, {"a/x": np.array([0.5, 1e-5])})], 0, {}, 1.0)
    assert layout.writer() is None
    assert got.text() == '{"round": 1, "run": 0, "group": "g", "variant": "g", "seed": 0, ' \
      '"condition": "none", "unused": 1, "a/x": 0.5, "time/round_s": 1.0}\n' \
      '{"round": 1, "run": 1, "group": "g", "variant": "g", "seed": 1, ' \
      '"condition": "none", "unused": 1, "a/x": 1e-05, "time/round_s": 1.0}\n'  # fmt: skip
  finally:
    rows_text._load.cache_clear()
