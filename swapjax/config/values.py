"""`--set key=text` read as a field and a typed value: `section.name` or a bare `name` names the
field (swapjax.config.keys), the field's type says how the text parses, tuples take
comma-separated values. Applying overrides to a config is swapjax.config.overrides.
"""

from __future__ import annotations

import typing

from swapjax.config import text
from swapjax.config.errors import ConfigError
from swapjax.config.keys import field_of, field_types


def parse_value(key: str, text: str):
  """Parses `text` as the type of the field `key` names (`section.name` or `name`,
  swapjax.config.keys); tuples take comma-separated values."""
  key = field_of(key)
  kind = field_types()[key]
  if typing.get_origin(kind) is tuple:
    inner = typing.get_args(kind)[0]
    parts = [p for p in text.split(",") if p.strip()]
    if not parts and not text.strip():
      return ()  # `--set key=`: the empty list (validation says if the key needs values)
    if not parts:
      raise ConfigError(f"--set {key}={text}: expected a comma-separated list")
    return tuple(_parse_scalar(inner, p, key) for p in parts)
  return _parse_scalar(kind, text, key)  # an old study name: Study reads it as today's


def _parse_scalar(kind: type, text: str, key: str):
  text = text.strip()
  if kind is bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
      return True
    if low in ("0", "false", "no", "off"):
      return False
    raise ConfigError(f"--set {key}={text}: expected true or false")
  if kind is int:
    try:
      return int(text.replace("_", ""))
    except ValueError:
      raise ConfigError(f"--set {key}={text}: expected an integer") from None
  if kind is float:
    try:
      return float(text)
    except ValueError:
      raise ConfigError(f"--set {key}={text}: expected a number") from None
  return text


def mapping_text(key: str, value) -> str:
  """The `--set` text of a mapping an experiment file writes for `key`: variants, swap
  schedules or row fields; ConfigError for another key."""
  field = field_of(key)
  if field == "variants":
    return text.variants_text(value, field_types(), field_of)
  if field == "swap_schedules":
    return text.schedules_text(value)
  if field == "row_fields":
    return ",".join(text.row_fields_text(value))
  raise ConfigError(f"{key}: takes a value, not a mapping")
