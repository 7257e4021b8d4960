"""The experiment registry: `swapjax.experiments`, which is the top-level `experiments/` folder
(mapped there by setup.cfg when installed, found through `swapjax.__path__` in a bare clone)."""

from __future__ import annotations

import importlib
import importlib.util


def _experiments_module():
  return importlib.import_module("swapjax.experiments")


def registry():
  """{name: module}; each module has `get_config()` and a docstring."""
  return _experiments_module().REGISTRY


def names() -> list[str]:
  return sorted(registry())


def describe(name: str) -> str:
  doc = (registry()[name].__doc__ or "").strip()
  return doc.splitlines()[0] if doc else ""


def get_config(name: str):
  return registry()[name].get_config()
