"""The files a report reads from a workdir: config.json, metrics.jsonl and timing.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swapjax.config import Config, ConfigError, from_json, variant_configs
from swapjax.layers import config_layers, parse_layer
from swapjax.workdir import Workdir, WorkdirError, upgrade_config


class StudyError(Exception):
  """A workdir that cannot be reported on; the message is one line meant for the user."""


def load_study(workdir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
  """(config.json, metrics rows) of a study with metrics; raises StudyError otherwise."""
  path = Path(workdir).expanduser()
  if not path.is_dir():
    raise StudyError(f"{path}: no such study (not a directory)")
  wd = Workdir(str(path))
  try:
    meta = wd.read_config()
  except WorkdirError as e:
    raise StudyError(str(e)) from None
  if meta is None:
    raise StudyError(f"{path}: not a swapjax study (no config.json)")
  rows = wd.read_metrics()
  if not rows:
    raise StudyError(f"{path}: no metrics yet (metrics.jsonl is missing or empty)")
  return meta, rows


# What a config.json that does not read raises (a hand-made or damaged file: an unknown key
# value, layer or model).
UNREADABLE = (ConfigError, ValueError, KeyError, TypeError)


def _read_configs(config: dict[str, Any]) -> tuple[Config, dict[str, Config]]:
  """(the study's Config, {variant: its Config}) from config.json's config, each network's
  layers read; raises one of UNREADABLE."""
  study = from_json(upgrade_config(config))
  variants = {c.variant: c for c in variant_configs(study)}
  for c in (study, *variants.values()):
    for layer in config_layers(c):
      parse_layer(layer)  # a layer the report's chance and rules could not read raises
  return study, variants


def study_configs(config: dict[str, Any]) -> tuple[Config, dict[str, Config]]:
  """`_read_configs`, or for a config.json that does not read the defaults' and no variants."""
  try:
    return _read_configs(config)
  except UNREADABLE:
    return from_json({}), {}


def drops_units(config: dict[str, Any]) -> bool:
  """Whether a network of the study drops units while it trains: a dropout layer at a rate
  above 0 (its own, or a run's `dropout_rate`) or a recurrent layer's dropout. A config.json
  that does not read counts as dropping (the report then says what holds either way)."""
  try:
    _, variants = _read_configs(config)
  except UNREADABLE:
    return True
  for c in variants.values():
    for kind, args in map(parse_layer, config_layers(c)):
      if kind == "rnn":  # rnn:N[:ACTIVATION[:DROPOUT[:RECURRENT]]]
        rates = [float(a) for a in args[2:]]
      elif kind == "dropout":
        rates = [float(a) for a in args] or list(c.dropout_rate)
      else:
        continue
      if any(rate > 0 for rate in rates):
        return True
  return False


def read_timing(path: Path) -> dict[str, Any] | None:
  """The workdir's timing.json, or None if it is missing or unreadable."""
  timing_path = path / "timing.json"
  try:
    return json.loads(timing_path.read_text()) if timing_path.exists() else None
  except (OSError, ValueError):
    return None
