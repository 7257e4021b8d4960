"""The runs of a study: the run axes, the variants, one config per compiled program, and the
run table (one dict per run, in run order) with each run's group name.

A study's runs are the product of its run-axis fields (tuples) and the seeds. Traced axes are
numbers the compiled program reads per run; a static axis's values, and each variant, are
programs of their own (those whose rounds trace to one computation compile once:
swapjax.programs).
"""

from __future__ import annotations

import itertools
from typing import Any

from swapjax.config.choices import RUN_AXES
from swapjax.config.errors import ConfigError
from swapjax.config.fields import Config
from swapjax.config.keys import flat_defaults
from swapjax.config.text import KEY_SEPARATOR, variant_entries
from swapjax.config.values import field_of, parse_value


def run_table(config: Config) -> list[dict[str, Any]]:
  """One dict per run, in run order: the product of the run-axis fields and the seeds; with
  `variants`, each variant's runs in turn, named by a `variant` entry."""
  if config.study.variants:
    return [run for v in variant_configs(config) for run in run_table(v)]
  product = itertools.product(
    *(_axis_values(config, axis) for axis in RUN_AXES[:-1]), range(config.runs.num_seeds)
  )
  table = [dict(zip(RUN_AXES, values, strict=True)) for values in product]
  if config.data.input_corruption_true_labels and len(config.data.label_corruption) > 1:
    lowest = min(config.data.label_corruption)
    table = [r for r in table if r["input_corruption"] == "none" or r["label_corruption"] == lowest]
  if config.variant:
    table = [{"variant": config.variant, **r} for r in table]
  return table


def axis_defaults(config: Config) -> dict[str, Any]:
  """{run axis: the one value a run takes when the experiment leaves the axis alone}: the
  engine's default, and the study kind's first condition and warmup."""
  fields = flat_defaults()
  fields.update(condition=config.kind.conditions, warmup=config.kind.warmup)
  return {a: fields[a][0] for a in RUN_AXES if isinstance(fields.get(a), tuple) and fields[a]}


def row_axes(config: Config) -> tuple[str, ...]:
  """The run axes a metrics row carries: the seed and the learning rate; a swap study's
  `condition` and `warmup`; `leaky_slope` where a layer is `leaky_relu`; every other axis the
  study varies, groups by, or sets to a value other than the engine's default (an axis at its
  default in every run says nothing of the runs: a swap study's `target_noise`)."""
  table = run_table(config)
  defaults = axis_defaults(config)
  always = ("learning_rate", "seed") + (("condition", "warmup") if config.kind.swaps else ())
  if any("leaky_relu" in v.layers for v in variant_configs(config)):  # reads the run's slope
    always += ("leaky_slope",)
  kept = []
  for axis in RUN_AXES:
    values = {repr(run[axis]) for run in table}
    at_default = axis in defaults and values == {repr(defaults[axis])}
    if axis in always or axis in config.study.group_by or len(values) > 1 or not at_default:
      kept.append(axis)
  return tuple(kept)


def group_names(config: Config, table: list[dict[str, Any]]) -> list[str]:
  """`group_name` of every run of `table` (the variants parsed once)."""
  variants = {v.variant: v for v in variant_configs(config)} if config.study.variants else {}
  return [_group_name(variants.get(run.get("variant"), config), run) for run in table]


def group_name(config: Config, run: dict[str, Any]) -> str:
  """The group a run belongs to, e.g. `vgg_like` or `train_fraction=0.2,dropout_rate=0.5`: its
  variant's name, then its values of `config.study.group_by` and of the other run axes (seed aside)
  that vary in its variant; `all` if none."""
  if run.get("variant") and config.study.variants:
    config = {v.variant: v for v in variant_configs(config)}[run["variant"]]
  return _group_name(config, run)


def _group_name(config: Config, run: dict[str, Any]) -> str:
  axes = [
    axis
    for axis in RUN_AXES
    if axis in config.study.group_by or (axis != "seed" and len(_axis_values(config, axis)) > 1)
  ]
  values = ",".join(f"{axis}={run[axis]}" for axis in axes)
  return ",".join(filter(None, (run.get("variant"), values))) or "all"


def _axis_values(config: Config, axis: str) -> tuple:
  return config.study.conditions if axis == "condition" else getattr(config, axis)


def program_configs(config: Config) -> list[Config]:
  """One config per compiled program: each variant narrowed to one value of each static axis."""
  return [v.replace(train_fraction=(f,)) for v in variant_configs(config) for f in v.train_fraction]


# Keys a variant may not change: they are the study's, shared by all its programs.
STUDY_KEYS = (
  "tensorboard",
  "study",
  "rounds",
  "num_seeds",
  "seed",
  "variants",
  "variant",
  "groups",
  "test_every",
  "early_stop",
  "on_nan",
  "checkpoint_keep",
  "source",
  "pool_size",
  "holdout_size",
  "test_from_train",
  "mesh_runs",
  "mesh_data",
  "runs_per_device",
  "cpu_devices",
  "report",
)


# A '+' separates a variant's keys, except the exponent sign of a number (`1e+3`).


def parse_variants(text: str) -> list[tuple[str, dict[str, Any]]]:
  """`name:key=value+key=value;name2:...` -> [(name, {key: typed value})]."""

  def bad(why: str) -> ConfigError:
    return ConfigError(f"variants={text}: each variant is name:key=value+...; {why}")

  out = []
  for name, entry in variant_entries(text):
    _, sep, body = entry.partition(":")
    if not sep and "=" in entry:
      raise bad(f"'{entry}' has no name (name:{entry})")
    if not sep:
      raise bad(f"'{entry}' has no ':' after its name ('{entry}:' keeps the study's values)")
    if not name:
      raise bad(f"'{entry}' has no name before its ':'")
    if any(c in name for c in "=,+"):
      raise bad(f"'{name}' is not a name (no '=', ',' or '+')")
    changes = {}
    for item in filter(None, (i.strip() for i in KEY_SEPARATOR.split(body))):
      key, eq, value = item.partition("=")
      if not eq:
        raise ConfigError(f"variants: '{item}' in '{name}' is not key=value")
      key = field_of(key.strip())
      if key in STUDY_KEYS:
        raise ConfigError(f"variants: '{name}' sets {key}, which is the whole study's")
      changes[key] = parse_value(key, value)
    out.append((name, changes))
  names = [n for n, _ in out]
  if len(set(names)) != len(names):
    raise bad(f"names repeat ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
  if not out:
    raise bad("none given")
  return out


def variant_configs(config: Config) -> list[Config]:
  """One config per variant (the config itself if it has none)."""
  if not config.study.variants:
    return [config]
  variants = parse_variants(config.study.variants)
  unknown = set(config.study.groups) - {name for name, _ in variants}
  if unknown:
    raise ConfigError(
      f"groups={','.join(sorted(unknown))}: not a variant of this study; variants: "
      + ", ".join(name for name, _ in variants)
    )
  return [
    config.replace(variants="", groups=(), variant=name, **changes)
    for name, changes in variants
    if not config.study.groups or name in config.study.groups
  ]
