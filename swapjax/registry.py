"""Finds the experiment registry: `swapjax.experiments` when installed (setup.cfg maps the
top-level `experiments/` folder there), the clone's `experiments/` folder otherwise."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def _experiments_module():
  try:
    return importlib.import_module("swapjax.experiments")
  except ModuleNotFoundError:
    pass
  folder = Path(__file__).resolve().parent.parent / "experiments"
  spec = importlib.util.spec_from_file_location(
    "swapjax.experiments", folder / "__init__.py", submodule_search_locations=[str(folder)]
  )
  module = importlib.util.module_from_spec(spec)
  sys.modules["swapjax.experiments"] = module
  spec.loader.exec_module(module)
  return module


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
