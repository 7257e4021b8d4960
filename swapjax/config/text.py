"""The text forms config.json stores for values experiment files write as data: swap schedules
(`name=threshold:k,...;...`), row fields (`key=value`) and variants (`name:key=value+...;...`).
Experiment files write mappings; `--set` takes the text.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from swapjax.config.errors import ConfigError
from swapjax.layers import layers_text


def parse_schedules(text: str) -> dict[str, tuple[tuple[int, int], ...]]:
  """`name=thr:k,thr:k;name=...` -> {name: ((thr, k), ...)} sorted by descending threshold."""
  tables = {}
  for entry in filter(None, (e.strip() for e in text.split(";"))):
    name, sep, body = entry.partition("=")
    if not sep or not name.strip():
      raise ConfigError(f"swap_schedules: '{entry}' is not name=threshold:k,...")
    rows = []
    for pair in filter(None, (p.strip() for p in body.split(","))):
      thr, colon, k = pair.partition(":")
      try:
        row = (int(thr), int(k))
      except ValueError:
        row = None
      if not colon or row is None or row[0] < 0 or row[1] < 0:
        raise ConfigError(
          f"swap_schedules: '{pair}' in '{name}' is not threshold:k with integers >= 0"
        )
      rows.append(row)
    if not rows:
      raise ConfigError(f"swap_schedules: '{name}' has no threshold:k pairs")
    tables[name.strip()] = tuple(sorted(rows, reverse=True))
  return tables


def schedules_text(tables: Mapping[str, Any]) -> str:
  """{name: ((threshold, k), ...)} as the stored text `name=threshold:k,...;...`, rows in the
  order given; ConfigError (one line) for a table the text cannot hold."""
  for name, rows in tables.items():
    if not isinstance(name, str) or not name.strip() or any(c in name for c in "=;"):
      raise ConfigError(f"swap_schedules: '{name}' is not a name (no '=' or ';')")
    pairs = isinstance(rows, (tuple, list)) and all(
      isinstance(row, (tuple, list)) and len(row) == 2 and all(type(x) is int for x in row)
      for row in rows
    )
    if not pairs:
      raise ConfigError(f"swap_schedules: '{name}' is not ((threshold, k), ...) with integers")
  text = ";".join(
    f"{name}={','.join(f'{t}:{k}' for t, k in rows)}" for name, rows in tables.items()
  )
  parse_schedules(text)  # the checks of the text: counts >= 0, at least one row
  return text


def row_fields_text(fields: Mapping[str, Any]) -> tuple[str, ...]:
  """{key: value} as the stored `key=value` texts, in order (numbers as Python writes them)."""
  for key, value in fields.items():
    if not isinstance(key, str) or not key or any(c in key for c in "=,"):
      raise ConfigError(f"row_fields: '{key}' is not a name (no '=' or ',')")
    if "," in str(value):
      raise ConfigError(f"row_fields: {key}={value} holds a ','")
  return tuple(f"{key}={value}" for key, value in fields.items())


def variant_entries(text: str) -> list[tuple[str, str]]:
  """The stored variants text `name:key=value+...;...` as [(name, entry)], entries as written
  (empty ones dropped); the entry's name is the text before its first ':'."""
  entries = [e.strip() for e in text.split(";")]
  return [(e.partition(":")[0].strip(), e) for e in entries if e]


# `+` between a variant's keys; not the sign of an exponent (`1e+3`).
KEY_SEPARATOR = re.compile(r"(?<![0-9][eE])\+")


def variants_text(
  variants: Mapping[str, Mapping[str, Any]],
  types: Mapping[str, Any],
  field_of: Callable[[str], str],
) -> str:
  """{name: {key: value}} as the stored text `name:key=value+key=value;...`, in the order given.
  Values are Python values of the key's field (a scalar for a run axis is its one value; layer
  values, schedule tables and row-field mappings as in the config). A name or value the text
  cannot hold is a ConfigError (one line); `validate` parses the text as it parses `--set`.
  `types` are the fields' types and `field_of` the flat key a key names (swapjax.config.keys)."""
  if not variants:
    return ""
  entries = []
  for name, changes in variants.items():
    if not isinstance(name, str) or not name.strip() or any(c in name for c in ":;=,+"):
      raise ConfigError(f"variants: '{name}' is not a name (no ':', ';', '=', ',' or '+')")
    if not isinstance(changes, Mapping):
      raise ConfigError(f"variants: '{name}' is not a mapping of key: value")
    items = []
    for key, value in changes.items():
      stored = _variant_value(key, value, types, field_of)
      text = _text(stored)
      if ";" in text or KEY_SEPARATOR.search(text):
        raise ConfigError(f"variants: '{name}' sets {key}={value!r}, whose text holds ';' or '+'")
      items.append((key, value, stored, text))
    entries.append((name, items))
  return ";".join(
    f"{name}:" + "+".join(f"{key}={t}" for key, _, _, t in items) for name, items in entries
  )


def _variant_value(key: str, value: Any, types: Mapping[str, Any], field_of) -> Any:
  """A variant's value in its field's stored form (what `parse_value` gives for its text)."""
  try:
    field = field_of(key)
  except ConfigError as e:
    raise ConfigError(f"variants: {e}") from None
  if field == "layers":
    return layers_text(value)
  if field == "row_fields" and isinstance(value, Mapping):
    return row_fields_text(value)
  if field == "swap_schedules" and isinstance(value, Mapping):
    return schedules_text(value)
  kind = types[field]
  tuple_field = typing.get_origin(kind) is tuple
  stored = (
    (tuple(value) if isinstance(value, (tuple, list)) else (value,)) if tuple_field else value
  )
  inner = typing.get_args(kind)[0] if tuple_field else kind
  if not all(_is_a(inner, v) for v in (stored if tuple_field else (stored,))):
    raise ConfigError(f"variants: sets {key}={value!r}, which is not its type ({inner.__name__})")
  return stored


def _is_a(kind, value) -> bool:
  """Whether `value` is a `kind` as a field holds it (an int is a float; a bool is no number)."""
  if kind in (int, float) and isinstance(value, bool):
    return False
  return (
    isinstance(value, (int, float) if kind is float else kind) if isinstance(kind, type) else True
  )


def _text(value: Any) -> str:
  """A typed value as `--set` reads it back: tuples comma-separated, floats exact."""
  if isinstance(value, tuple):
    return ",".join(_text(v) for v in value)
  if isinstance(value, bool):
    return "true" if value else "false"
  return repr(value) if isinstance(value, float) else str(value)
