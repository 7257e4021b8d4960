"""`--set key=value` overrides applied to a config, then validated: how users change a study.

How one key and its text read is swapjax.config.values; what is allowed, swapjax.config.validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swapjax.config.errors import ConfigError
from swapjax.config.fields import Config
from swapjax.config.validation import validate
from swapjax.config.values import field_of, parse_value


def apply_overrides(config: Config, overrides: Sequence[str]) -> Config:
  """Applies `key=value` strings with type checking, then validates the result."""
  changes: dict[str, Any] = {}
  for item in overrides:
    if "=" not in item:
      raise ConfigError(f"--set {item}: expected key=value")
    key, text = item.split("=", 1)
    changes[field_of(key.strip())] = parse_value(key.strip(), text)
  config = config.replace(**changes)
  validate(config)
  return config
