"""The published numbers a study is compared with: the source report's results per group and,
for fitted functions, the true parameters.

A workdir's config.json carries them under `reference` as
`{"reported": {group: {"epochs": 40, "val_acc": 0.91, ...}}, "true_parameters": {group prefix:
{parameter: value}}}`; a group the report gives at several epoch counts holds a list of such
dicts. Workdirs without that key take them from the experiment's module in the
registry (`REFERENCE`, `TRUE_PARAMETERS`), as long as it still registers the experiment; so does
`python -m swapjax.report WORKDIR --reference=experiment`, for a workdir that recorded numbers an
experiment file has since added to (a long run started before its later epoch counts were
entered).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from swapjax import registry

META_KEY = "reference"  # config.json's key
SOURCES = ("recorded", "experiment")  # config.json's numbers first, or the module's only
MODULE_ATTRIBUTES = {"reported": "REFERENCE", "true_parameters": "TRUE_PARAMETERS"}


def module_reference(module: ModuleType | None) -> dict[str, dict]:
  """An experiment module's reference numbers, as config.json's `reference` holds them."""
  return {key: getattr(module, attr, None) or {} for key, attr in MODULE_ATTRIBUTES.items()}


def _recorded(meta: dict[str, Any], source: str) -> dict | None:
  """config.json's recorded numbers, unless `source` asks for the experiment file's."""
  recorded = meta.get(META_KEY)
  return recorded if source == "recorded" and isinstance(recorded, dict) else None


def experiment_reference(meta: dict[str, Any], source: str = "recorded") -> dict[str, dict]:
  """{"reported": ..., "true_parameters": ...} from config.json's `reference` (unless `source`
  is "experiment"), else from the experiment's registered module; {} for each that neither
  gives."""
  if (recorded := _recorded(meta, source)) is not None:
    return {key: recorded.get(key) or {} for key in MODULE_ATTRIBUTES}
  return module_reference(registry.registry().get(meta.get("experiment", "")))


def reference_origin(meta: dict[str, Any], source: str = "recorded") -> str:
  """Where `experiment_reference(meta, source)` takes its numbers from, in words."""
  if _recorded(meta, source) is not None:
    return "config.json's, recorded when the study started"
  module = f"the experiment file's (`{meta.get('experiment', '')}`) as installed now"
  if source == "experiment":
    return module + " (`--reference=experiment`; config.json's recorded numbers not used)"
  return module + " (config.json records none)"
