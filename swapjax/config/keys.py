"""The keys that name a config's fields: flat keys (config.json, variants, `--set rounds=3`) and
dotted ones (`--set optim.learning_rate=0.1,0.01`, `--show_config`).

Every field of every section has one flat key: its name, except the study kind (`study`,
`study.kind`) and the named network (`model`, `model.name`). A bare key works wherever it names
one field; a key that names none gets one line listing the valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any

from swapjax.config.errors import ConfigError
from swapjax.config.sections import SECTION_TYPES

# Section fields whose flat key is not their name.
RENAMED = {("study", "kind"): "study", ("model", "name"): "model"}
# {flat key: (section, field)}, in the sections' order.
FLAT = {
  RENAMED.get((section, f.name), f.name): (section, f.name)
  for section, cls in SECTION_TYPES.items()
  for f in dataclasses.fields(cls)
}
# {section: its flat keys}.
SECTIONS = {s: tuple(k for k, (section, _) in FLAT.items() if section == s) for s in SECTION_TYPES}
SECTION_OF = {key: section for key, (section, _) in FLAT.items()}
# Fields the engine sets (for each group's program); `--set` refuses them.
INTERNAL = ("variant",)
_DOTTED = {f"{section}.{name}": key for key, (section, name) in FLAT.items()}


def field_types() -> dict[str, Any]:
  """{flat key: its field's type}, in the sections' order, `variant` last."""
  hints = {name: typing.get_type_hints(cls) for name, cls in SECTION_TYPES.items()}
  return {**{key: hints[s][f] for key, (s, f) in FLAT.items()}, "variant": str}


def flat_defaults() -> dict[str, Any]:
  """{flat key: its default} (None for the conditions and warmup a study kind gives)."""
  fields = {
    (name, f.name): f.default
    for name, cls in SECTION_TYPES.items()
    for f in dataclasses.fields(cls)
  }
  return {key: fields[where] for key, where in FLAT.items()}


def full(key: str) -> str:
  """`section.name` of a flat key."""
  section, name = FLAT[key]
  return f"{section}.{name}"


def field_of(key: str) -> str:
  """The flat key a `--set` key names: `section.name` or a bare flat key; a ConfigError (one
  line for the user) for a key that names no settable field."""
  section, dot, name = key.rpartition(".")
  if name in INTERNAL:
    raise ConfigError(f"--set {key}: set by the engine for each group, not a config key")
  if not dot:
    if key in FLAT:
      return key
  elif key in _DOTTED:
    return _DOTTED[key]
  elif section not in SECTION_TYPES:
    raise ConfigError(
      f"--set {key}: unknown section '{section}'; sections: {', '.join(SECTION_TYPES)}"
    )
  elif name in FLAT:
    raise ConfigError(f"--set {key}: '{name}' is in section {SECTION_OF[name]} ({full(name)})")
  what = f"section {section} has no key" if dot else "unknown config key"
  valid = [k for k in (SECTIONS[section] if dot else FLAT) if k not in INTERNAL]
  close = difflib.get_close_matches(name, valid, n=1)
  hint = f"did you mean {full(close[0])}? " if close else ""
  raise ConfigError(
    f"--set {key}: {what} '{name}'; {hint}valid keys: " + ", ".join(full(k) for k in valid)
  )


def nested(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
  """A flat config (Config.to_json) as {section: {field: value}}, in the sections' order."""
  return {s: {FLAT[k][1]: flat[k] for k in keys if k in flat} for s, keys in SECTIONS.items()}
