"""A round's metrics.jsonl text written by C++ (`csrc/rows_text.cc`) from the rows' columns.

A study of thousands of tiny networks writes thousands of rows a round; in Python their JSON
text (each value's text, then each line joined) takes most of a compiled round, and holds the
interpreter's lock all that time. The C++ routine writes the same bytes into a buffer of the
round's own, the lock released: a float column from its float64 values (Python's repr, as
`json.dumps` writes it; null for NaN and Inf), any other column from its values' JSON texts made
in Python; metrics.jsonl is appended that buffer as it is. `rows.RoundRows.encoded` (and
`text`) use it where it is built and write the text in Python where it is not (no C++
compiler: `unavailable()` says why); the tests hold both to the same bytes.
The library is built on first use into `~/.cache/swapjax/rows_text` (or `$SWAPJAX_KERNEL_CACHE`),
keyed by its source, the compiler and its version and the flags.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import orjson

from swapjax import cxx

SOURCE = Path(__file__).resolve().parent / "csrc" / "rows_text.cc"
FLAGS = ["-O2"]
FLOAT_TEXT = 24  # the longest float text: -2.2250738585072014e-308
_P = ctypes.c_void_p


class _Block(ctypes.Structure):
  _fields_ = [
    ("n", ctypes.c_int64),
    ("heads", _P),
    ("head_offsets", _P),
    ("columns", ctypes.c_int64),
    ("keys", _P),
    ("key_lengths", _P),
    ("kinds", _P),
    ("data", _P),
    ("offsets", _P),
  ]


def _key(compiler: str) -> str:
  """The build's cache key: the source, the compiler's path and version, the flags."""
  parts = [SOURCE.read_bytes(), compiler.encode(), cxx.compiler_version(compiler)]
  return hashlib.sha256(b"\0".join([*parts, *(f.encode() for f in FLAGS)])).hexdigest()[:16]


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
  """(the library, "") or (None, why not)."""
  try:
    compiler = cxx.compiler("the metrics rows' text")
    key = _key(compiler)
    folder = cxx.cache_dir("rows_text", "SWAPJAX_KERNEL_CACHE")
    path = cxx.build(SOURCE, "the metrics rows' text", compiler, FLAGS, key, folder)
    library = ctypes.CDLL(str(path))
  except (cxx.BuildError, OSError) as e:
    return None, str(e).splitlines()[0] if str(e) else type(e).__name__
  library.swapjax_rows_text.restype = ctypes.c_int64
  library.swapjax_rows_text.argtypes = [
    ctypes.c_char_p,
    ctypes.c_int64,
    ctypes.c_char_p,
    ctypes.c_int64,
    _P,
    ctypes.c_int64,
    _P,
    _P,
    _P,
  ]
  library.swapjax_float_text.restype = ctypes.c_int64
  library.swapjax_float_text.argtypes = [ctypes.c_double, ctypes.c_char_p]
  return library, ""


def library() -> ctypes.CDLL | None:
  """The built library, or None where it cannot be built here (`unavailable` says why)."""
  return _load()[0]


def unavailable() -> str:
  """Why the library cannot be built or loaded here; "" where it can."""
  return _load()[1]


def float_text(value: float) -> str:
  """A finite float's text as the library writes it (for tests: it is `repr(value)`)."""
  out = ctypes.create_string_buffer(64)
  length = library().swapjax_float_text(value, out)
  return out.raw[:length].decode()


def values_text(column: list, kind: str) -> tuple[bytes, str]:
  """A non-float column's values' JSON texts (numpy `kind`), each ended by a separator that no
  value's text holds, and that separator: `,` after orjson's integers, booleans and nulls, a
  newline after `json.dumps`' text of anything else (it writes no raw newline). The one rule of
  both writers (`rows._encoded` splits it)."""
  if kind in "biu":
    return orjson.dumps(column)[1:-1] + b",", ","
  return "".join(json.dumps(v) + "\n" for v in column).encode(), "\n"


class Writer:
  """Writes the rounds' text of one `rows.Layout`: its runs' fixed fields as JSON text per
  program (`texts`) and the order of the lines (`order`: (program, position) per run)."""

  def __init__(self, texts: list[list[str]], order: list[tuple[int, int]]):
    self._heads = []
    for block in texts:
      encoded = [t.encode() for t in block]
      offsets = np.zeros(len(encoded) + 1, np.int64)
      offsets[1:] = np.cumsum([len(t) for t in encoded])
      self._heads.append((b"".join(encoded), offsets))
    self._rows = len(order)
    self._row_block = np.array([b for b, _ in order], np.int32)
    self._row_index = np.array([i for _, i in order], np.int64)
    self._keys: dict[tuple[str, ...], tuple] = {}

  def _keys_of(self, names: tuple[str, ...]):
    if names not in self._keys:
      keys = [f", {json.dumps(name)}: ".encode() for name in names]
      array = (ctypes.c_char_p * len(keys))(*keys)
      lengths = np.array([len(k) for k in keys], np.int64)
      self._keys[names] = (keys, array, lengths, int(lengths.sum()))
    return self._keys[names]

  def encoded(self, start: str, end: str, blocks) -> memoryview:
    """The lines `start` + fixed fields + `, "name": value` per metric + `end` of each run, from
    `rows.RoundRows`' blocks: (names, columns, kinds, {name: float64 values}) per program, as
    UTF-8 bytes in a buffer of their own (the round's writes take it as it is)."""
    start_b, end_b = start.encode(), end.encode()
    keep, structs, size = [], (_Block * len(blocks))(), 0
    for b, (names, columns, kinds, numbers) in enumerate(blocks):
      heads, head_offsets = self._heads[b]
      n = len(head_offsets) - 1
      if not n:  # a program without runs here: no line refers to it
        continue
      keys, key_array, key_lengths, key_total = self._keys_of(tuple(names))
      size += n * (len(start_b) + len(end_b) + key_total) + len(heads)
      data, offsets, codes = [], [], []
      for name, column, kind in zip(names, columns, kinds, strict=True):
        if kind == "f":
          values = np.ascontiguousarray(numbers[name], np.float64)
          assert values.shape == (n,), "a float column per run"
          keep.append(values)
          data.append(values.ctypes.data)
          offsets.append(None)
          codes.append(0)
          size += FLOAT_TEXT * n
        else:
          text, separator = values_text(column, kind)
          ends = np.flatnonzero(np.frombuffer(text, np.uint8) == ord(separator))
          assert len(ends) == n, "a value per run"
          at = np.empty(n + 1, np.int64)
          at[0], at[1:] = 0, ends + 1
          keep += [text, at]
          data.append(ctypes.cast(ctypes.c_char_p(text), _P).value)
          offsets.append(at.ctypes.data)
          codes.append(1)
          size += len(text)
      kinds_array = np.array(codes, np.int32)
      data_array, offsets_array = (_P * len(data))(*data), (_P * len(offsets))(*offsets)
      keep += [keys, key_array, key_lengths, kinds_array, data_array, offsets_array]
      structs[b] = _Block(
        n,
        ctypes.cast(ctypes.c_char_p(heads), _P),
        head_offsets.ctypes.data,
        len(names),
        ctypes.cast(key_array, _P),
        key_lengths.ctypes.data,
        kinds_array.ctypes.data,
        ctypes.cast(data_array, _P),
        ctypes.cast(offsets_array, _P),
      )
    buffer = np.empty(size, np.uint8)
    written = library().swapjax_rows_text(
      start_b,
      len(start_b),
      end_b,
      len(end_b),
      ctypes.cast(structs, _P),
      self._rows,
      self._row_block.ctypes.data,
      self._row_index.ctypes.data,
      buffer.ctypes.data,
    )
    assert 0 <= written <= size
    return memoryview(buffer)[:written]
