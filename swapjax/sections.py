"""The config's sections as a reader sees them: `--show_config` prints them nested, and `--set`
takes a key with its section (`--set optim.learning_rate=0.1,0.01`) or alone where the name
says which field it is (`--set rounds=3`, as in users' scripts and the docs).

Every field of swapjax.config.Config sits in exactly one section (tested). `variant` is not
among them: the engine sets it for each group's program, and `--set` refuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SECTIONS: dict[str, tuple[str, ...]] = {
  # What the study is: its kind, length, groups, the swap rule and what ends a run.
  "study": (
    "study",
    "description",
    "rounds",
    "conditions",
    "warmup",
    "swap_schedules",
    "shared_model",
    "exchange",
    "fit_target",
    "early_stop",
    "test_every",
    "on_nan",
    "variants",
    "groups",
    "group_by",
    "row_fields",
    "log_params",
    "report",
  ),
  # Which samples, from where, split how, and what is done to them.
  "data": (
    "dataset",
    "source",
    "pool_size",
    "holdout_size",
    "test_from_train",
    "validation_split",
    "split_per_seed",
    "normalize",
    "train_fraction",
    "label_corruption",
    "input_corruption",
    "input_corruption_true_labels",
    "target_noise",
    "augment_flip",
    "augment_rotation",
  ),
  # The network and its task (outputs, loss).
  "model": (
    "model",
    "layers",
    "dropout",
    "dropout_rate",
    "leaky_slope",
    "task",
    "loss",
    "rnn_unroll",
  ),
  "optim": (
    "optimizer",
    "learning_rate",
    "momentum",
    "adam_eps",
    "batch_size",
    "micro_batches",
  ),
  # The seeds and how runs are laid out on devices.
  "runs": ("num_seeds", "seed", "runs_per_device", "mesh_runs", "mesh_data"),
  # How the engine computes and writes, on any backend.
  "engine": (
    "driver",
    "compute_dtype",
    "eval_batch_size",
    "eval_population",
    "eval_shared_prefixes",
    "checkpoint_keep",
    "tensorboard",
  ),
  # Backend-specific kernels and devices (swapjax.backend): `auto` picks the measured default.
  "backend": ("conv_impl", "eval_conv_impl", "rnn_impl", "cpu_devices"),
}
INTERNAL = ("variant",)
SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}


def field_of(key: str, fields: Iterable[str]) -> str:
  """The field a `--set` key names: `section.name` or a bare `name`; a ValueError (one line
  for the user) for a key that names no settable field."""
  fields = tuple(fields)
  section, dot, name = key.rpartition(".")
  if name in INTERNAL:
    raise ValueError(f"--set {key}: set by the engine for each group, not a config key")
  if dot and section not in SECTIONS:
    raise ValueError(f"--set {key}: unknown section '{section}'; sections: {', '.join(SECTIONS)}")
  if name not in fields or name not in SECTION_OF:
    what = f"section {section} has no key" if dot else "unknown config key"
    raise ValueError(
      f"--set {key}: {what} '{name}'; valid keys: "
      + ", ".join(f"{SECTION_OF[f]}.{f}" for f in sorted(fields) if f in SECTION_OF)
    )
  if dot and SECTION_OF[name] != section:
    raise ValueError(f"--set {key}: '{name}' is in section {SECTION_OF[name]} ({full(name)})")
  return name


def full(name: str) -> str:
  """`section.name` of a field."""
  return f"{SECTION_OF[name]}.{name}"


def nested(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
  """A flat config (Config.to_json) as {section: {name: value}}, in the sections' order."""
  return {s: {n: flat[n] for n in names if n in flat} for s, names in SECTIONS.items()}
