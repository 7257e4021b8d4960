"""Runs grouped by their condition values (the run-axis keys of a metrics row), and the groups'
labels: the values that vary between groups."""

from __future__ import annotations

from collections import defaultdict

SWAP_GROUP = ("condition", "warmup", "learning_rate")
MEMORIZE_GROUP = ("input_corruption", "label_corruption", "learning_rate")


def by_key(rows, keys) -> dict[tuple, list[dict]]:
  """{the rows' values of `keys`: those rows}, groups in the order they first appear."""
  groups = defaultdict(list)
  for r in rows:
    groups[tuple(r.get(k) for k in keys)].append(r)
  return dict(groups)


def label(key, keys, varying) -> str:
  """`k=v, ...` of the group's varying keys; `all runs` when none varies."""
  parts = [f"{k}={v}" for k, v in zip(keys, key, strict=True) if k in varying]
  return ", ".join(parts) or "all runs"


def varying(rows, keys) -> list[str]:
  """The keys whose value differs between rows."""
  # Nothing varies: name the one group by all the values its rows carry (e.g. random labels).
  present = [k for k in keys if any(k in r for r in rows)]
  return [k for k in keys if len({r.get(k) for r in rows}) > 1] or present
