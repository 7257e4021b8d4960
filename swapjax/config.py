"""The frozen study config: fields, typed `--set` overrides, validation and the run product.

One dataclass serves every experiment so that the keys users reach for (`rounds`, `num_seeds`,
`conditions`, `warmup`, `pool_size`, `batch_size`, `learning_rate`, `shared_model`,
`validation_split`) mean the same everywhere. Fields on the run axis are tuples: the runs of a
study are the product conditions x warmup x learning_rate x label_corruption x input_corruption
x seeds, and all of them train in one compiled program.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from swapjax import sections

# Data sets generated in the package (swapjax.generated.GENERATORS, the same names: tested),
# no download: float inputs and targets. Listed here so that the config stays pure Python.
GENERATED_DATASETS = (
  "binary_addition",
  "logic_or",
  "logic_and",
  "logic_xor",
  "line_a",
  "line_b",
  "cubic_a",
  "cubic_b",
  "iris",
)
IMAGE_DATASETS = ("cifar10", "mnist", "fashion_mnist")
# What the network's outputs mean (the loss and the accuracy): softmax over classes
# (integer labels); sigmoid outputs against 0/1 targets, each output an independent bit
# (Keras' binary accuracy, threshold 0.5); or plain regression (no accuracy).
TASKS = ("softmax", "sigmoid", "regression")
LOSSES = ("auto", "cross_entropy", "mean_squared_error")


class ConfigError(ValueError):
  """A config value that is not allowed; the message is one line meant for the user."""


@dataclasses.dataclass(frozen=True)
class StudyKind:
  """What a study kind is, as data: the engine reads these facts, never the kind's name."""

  halves: int  # disjoint parts of the pool (2: halves A and B exchange samples; 1: one set)
  members: int  # networks per run (1 with shared_model)
  round_key: str  # what a round is called in metrics.jsonl
  swaps: bool  # whether swap conditions apply
  tests_every_round: bool  # the holdout set every round (else every `test_every` rounds)


STUDY_KINDS = {
  "swap": StudyKind(halves=2, members=2, round_key="round", swaps=True, tests_every_round=True),
  # One network per run trained epoch by epoch (memorization, learning curves, fits).
  "epochs": StudyKind(halves=1, members=1, round_key="epoch", swaps=False, tests_every_round=False),
}
STUDIES = tuple(STUDY_KINDS)
# Earlier names of study kinds, read from old workdirs and users' `--set study=...`.
STUDY_ALIASES = {"memorize": "epochs"}
DATASETS = (*IMAGE_DATASETS, *GENERATED_DATASETS)
SOURCES = ("auto", "files", "tfds", "bundled", "synthetic")
MODELS = ("cifar_cnn", "cnn_004", "cnn_004_dropout")  # swapjax.layers.MODEL_SPECS
INPUT_CORRUPTIONS = ("none", "shuffled_pixels", "random_pixels", "gaussian")
CONV_IMPLS = ("auto", "patches", "lax", "hybrid", "onednn")
RNN_IMPLS = ("auto", "scan", "native", "fused")
DRIVERS = ("auto", "scan", "host")
DTYPES = ("float32", "bfloat16")
ON_NAN = ("stop", "freeze")
NORMALIZE = ("unit", "centered")
EXCHANGES = ("swap", "copy")  # swapjax.swap.EXCHANGES

# The report's swap rules as threshold tables: `name=threshold:k,...`; k is that of the first
# (largest) threshold a_miss reaches, 0 if none. Users add rules with `--set swap_schedules=...`.
DEFAULT_SCHEDULES = "none=0:0;one=0:1;schedule=100:100,10:10,0:1"


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything a study needs; read when building, never inside jitted code."""

  study: str = "swap"
  description: str = ""
  # Data.
  dataset: str = "cifar10"
  source: str = "auto"
  pool_size: int = 10_000
  holdout_size: int = 1_000
  normalize: str = "unit"
  # Model and optimiser (Keras defaults of the reports).
  model: str = "cifar_cnn"
  # The network as a layer spec (swapjax.models.SpecNet), e.g. `conv:64,relu,maxpool,flatten,
  # dense:10`; empty: the named `model`'s.
  layers: tuple[str, ...] = ()
  dropout: bool = True
  task: str = "softmax"  # TASKS
  loss: str = "auto"  # cross-entropy of the task, or mean squared error of its outputs
  rnn_unroll: bool = False  # unroll the recurrent layers' time loop (same mathematics)
  # The recurrent layers' time loop: "scan" (lax.scan), "native" (one C++ call per pass, CPU,
  # float32: swapjax/cpu/rnn_kernel.py), "fused" (native, and the whole SGD training epoch of an
  # rnn-then-dense network as one C++ call: rnn_kernel.sgd_epoch), "auto" (fused where the
  # network allows it, else native, on a CPU where the C++ builds; else scan).
  rnn_impl: str = "auto"
  batch_size: int = 32
  learning_rate: tuple[float, ...] = (0.001,)
  optimizer: str = "adam"  # "adam" (Keras defaults) or "sgd" (Keras SGD, `momentum`)
  momentum: float = 0.0
  adam_eps: float = 1e-7
  validation_split: float = 0.1
  # Study shape.
  rounds: int = 50
  num_seeds: int = 10
  seed: int = 0
  conditions: tuple[str, ...] = ("none", "one", "schedule")
  warmup: tuple[int, ...] = (0, 10)
  swap_schedules: str = DEFAULT_SCHEDULES
  shared_model: bool = False
  # How a swap pair moves (swapjax/swap.py EXCHANGES): "swap" trades A's and B's pool indices;
  # "copy" is report 000's NumPy statement as it ran: A's position takes B's index, B unchanged.
  exchange: str = "swap"
  # Memorization study.
  label_corruption: tuple[float, ...] = (0.0,)
  input_corruption: tuple[str, ...] = ("none",)
  # Zhang et al. corrupt inputs with the true labels: such runs take label_corruption 0 only.
  input_corruption_true_labels: bool = True
  fit_target: float = 0.99
  early_stop: bool = False
  test_every: int = 5
  # Data fraction and dropout (seeds/003). `train_fraction` changes how many samples train, so
  # each value is its own compiled program; `dropout_rate` is traced (one program for all).
  train_fraction: tuple[float, ...] = (1.0,)
  dropout_rate: tuple[float, ...] = (0.0,)
  # Traced run-axis numbers of the network and the data (one program for all their values):
  # the slope of `leaky_relu` layers without their own; augmentation of training batches on the
  # device (seeds/001): random horizontal flips (1) and random rotation (Keras RandomRotation
  # factor: angles in +-factor x 360 degrees, corners filled by reflection).
  leaky_slope: tuple[float, ...] = (0.3,)
  # Gaussian noise (standard deviation) added to float targets, drawn per seed (seeds/002's
  # regression): data on the run axis.
  target_noise: tuple[float, ...] = (0.0,)
  augment_flip: tuple[int, ...] = (0,)
  augment_rotation: tuple[float, ...] = (0.0,)
  # > 0: the test set is this many training images after the pool (the report's own split), and
  # the dataset's official test images are evaluated as holdout/*.
  test_from_train: int = 0
  # Single-model studies: each seed orders the pool at random, so `validation_split` holds out
  # a random fraction per seed (scikit-learn's train_test_split per run, seeds/002's iris).
  split_per_seed: bool = False
  # `key=value` fields written into every row of the study (e.g. a variant's `gate=xor`).
  row_fields: tuple[str, ...] = ()
  log_params: bool = False  # single-model studies: every parameter of a small network per row
  report: str = ""  # "" (by study), or "curves": per-group learning curves
  # The run axes that name a run's group (e.g. `train_fraction=0.2,dropout_rate=0.5`); empty:
  # the axes that vary in this study. Seeds are never part of a group.
  group_by: tuple[str, ...] = ()
  # Named variants that change the program (architecture, batch size, optimiser...):
  # `name:key=value+key=value;name2:...`; each is a group of its own, its runs the product of
  # its own run axes and the seeds. Empty: one variant, the config itself.
  variants: str = ""
  variant: str = ""  # set by `program_configs`: the variant a program belongs to
  groups: tuple[str, ...] = ()  # the variants to run (empty: all of them)
  # Engine.
  conv_impl: str = "auto"
  driver: str = "auto"
  compute_dtype: str = "float32"
  eval_batch_size: int = 0  # 0: 500 on CPU, 1000 on accelerators
  eval_conv_impl: str = "lax"  # forward-only: plain convolutions, one model at a time
  eval_population: str = "map"  # "map": lax.map over models; "vmap": one batched program
  # A causal sequence network (recurrent layers, then per-step layers) evaluates each distinct
  # input prefix of an evaluation set once (swapjax/prefixes.py) when that is at most half the
  # per-sample work; false: every sample, every step.
  eval_shared_prefixes: bool = True
  checkpoint_keep: int = 3
  tensorboard: bool = True  # event files in WORKDIR/tensorboard/ (one series per run and metric)
  on_nan: str = "stop"
  mesh_runs: int = 0
  # 0: each program's runs in one compiled call, split evenly over the `runs` devices (fastest;
  # XLA compiles another program for another device count, so near ties can flip). N: chunks of
  # N runs per device per call, so every device runs the same N-run program whatever the
  # device count: results are bitwise independent of it (tested), and memory is bounded.
  runs_per_device: int = 0
  # N > 1: each training batch in N slices one after another, gradients accumulated (the same
  # update up to float order; dropout and augmentation draw per slice), so a run whose batch
  # does not fit the device still trains. 0: only when the memory estimate says so.
  micro_batches: int = 0
  mesh_data: int = 1
  # XLA CPU devices the host's cores are split into (0: one per core), set before JAX starts;
  # with several, each program's runs go in equal chunks to single devices (no mesh), one
  # chunk per device at a time. Tiny models run faster so (a 16-unit RNN at 100 seeds 1.9x on 2
  # cores: XLA:CPU runs their small operations on one core); big convolutions do not (they use
  # every core already). 1: one CPU device. Ignored on accelerators and in multi-process runs.
  cpu_devices: int = 1

  # ---------------------------------------------------------------- derived
  @property
  def kind(self) -> StudyKind:
    return STUDY_KINDS[self.study]

  @property
  def members(self) -> int:
    """Networks per run: 2 (A and B), 1 for a shared model or a single-model study."""
    return 1 if self.shared_model else self.kind.members

  @property
  def train_pool(self) -> int:
    """Pool samples a program uses: the first round(train_fraction x pool_size) of the pool
    (a study of several fractions is several programs, see `program_configs`)."""
    fraction = self.train_fraction[0] if len(self.train_fraction) == 1 else 1.0
    return max(1, round(self.pool_size * fraction))

  @property
  def half_size(self) -> int:
    return self.train_pool // self.kind.halves

  @property
  def data_size(self) -> int:
    """Training images the study reads: its pool and, if any, the test split after it."""
    return self.pool_size + self.test_from_train

  @property
  def num_train(self) -> int:
    """Samples of a member's half that train each round (Keras `validation_split` rule)."""
    return int(self.half_size * (1.0 - self.validation_split))

  def schedules(self) -> dict[str, tuple[tuple[int, int], ...]]:
    return parse_schedules(self.swap_schedules)

  def to_json(self) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value


def field_types() -> dict[str, Any]:
  hints = typing.get_type_hints(Config)
  return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


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


def field_of(key: str) -> str:
  """The field a `--set` key names (`section.name` or `name`); ConfigError if none."""
  try:
    return sections.field_of(key, field_types())
  except ValueError as e:
    raise ConfigError(str(e)) from None


def parse_value(key: str, text: str):
  """Parses `text` as the type of the field `key` names (`section.name` or `name`,
  swapjax.sections); tuples take comma-separated values."""
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
  value = _parse_scalar(kind, text, key)
  return STUDY_ALIASES.get(value, value) if key == "study" else value


def apply_overrides(config: Config, overrides: Sequence[str]) -> Config:
  """Applies `key=value` strings with type checking, then validates the result."""
  changes: dict[str, Any] = {}
  for item in overrides:
    if "=" not in item:
      raise ConfigError(f"--set {item}: expected key=value")
    key, text = item.split("=", 1)
    changes[field_of(key.strip())] = parse_value(key.strip(), text)
  config = dataclasses.replace(config, **changes)
  validate(config)
  return config


def from_json(data: Mapping[str, Any]) -> Config:
  types = field_types()
  values = {}
  for key, value in data.items():
    if key in types:
      values[key] = tuple(value) if typing.get_origin(types[key]) is tuple else value
  if "study" in values:
    values["study"] = STUDY_ALIASES.get(values["study"], values["study"])
  return Config(**values)


def parse_schedules(text: str) -> dict[str, tuple[tuple[int, int], ...]]:
  """`name=thr:k,thr:k;name=...` -> {name: ((thr, k), ...)} sorted by descending threshold."""
  tables = {}
  for entry in filter(None, (e.strip() for e in text.split(";"))):
    name, sep, body = entry.partition("=")
    if not sep or not name.strip():
      raise ConfigError(f"swap_schedules: '{entry}' is not name=threshold:k,...")
    rows = []
    for pair in filter(None, (p.strip() for p in body.split(","))):
      thr, colon, k = pair.partition(":")
      try:
        row = (int(thr), int(k))
      except ValueError:
        row = None
      if not colon or row is None or row[0] < 0 or row[1] < 0:
        raise ConfigError(
          f"swap_schedules: '{pair}' in '{name}' is not threshold:k with integers >= 0"
        )
      rows.append(row)
    if not rows:
      raise ConfigError(f"swap_schedules: '{name}' has no threshold:k pairs")
    tables[name.strip()] = tuple(sorted(rows, reverse=True))
  return tables


def _check(ok: bool, message: str):
  if not ok:
    raise ConfigError(message)


def _choice(config: Config, key: str, allowed: Sequence[str]):
  value = getattr(config, key)
  values = value if isinstance(value, tuple) else (value,)
  for v in values:
    _check(v in allowed, f"{key}={v}: allowed values are {', '.join(allowed)}")


def validate(config: Config) -> None:
  """Raises ConfigError (one line) for any value outside what the study can run."""
  if config.variants:
    for variant in variant_configs(config):
      validate(variant)
    return
  for key, allowed in [
    ("study", STUDIES),
    ("dataset", DATASETS),
    ("source", SOURCES),
    ("model", MODELS),
    ("input_corruption", INPUT_CORRUPTIONS),
    ("conv_impl", CONV_IMPLS),
    ("eval_conv_impl", CONV_IMPLS[1:]),
    ("rnn_impl", RNN_IMPLS),
    ("driver", DRIVERS),
    ("compute_dtype", DTYPES),
    ("on_nan", ON_NAN),
    ("normalize", NORMALIZE),
    ("exchange", EXCHANGES),
  ]:
    _choice(config, key, allowed)
  for key in ("conv_impl", "eval_conv_impl"):
    if getattr(config, key) != "onednn":
      continue
    _check(
      config.compute_dtype == "float32",
      f"{key}=onednn computes in float32, not compute_dtype={config.compute_dtype}",
    )
  if config.rnn_impl in ("native", "fused"):
    impl = config.rnn_impl
    _check(
      config.compute_dtype == "float32",
      f"rnn_impl={impl} computes in float32, not compute_dtype={config.compute_dtype}",
    )
    _check(not config.rnn_unroll, "rnn_unroll unrolls the lax.scan: use it with rnn_impl=scan")
  _check(config.rounds >= 1, f"rounds={config.rounds}: must be >= 1")
  _check(1 <= config.num_seeds <= 100_000, f"num_seeds={config.num_seeds}: must be >= 1")
  _check(config.batch_size >= 1, f"batch_size={config.batch_size}: must be >= 1")
  _check(
    0.0 <= config.validation_split < 1.0,
    f"validation_split={config.validation_split}: must be in [0, 1)",
  )
  _check(config.eval_batch_size >= 0, f"eval_batch_size={config.eval_batch_size}: must be >= 0")
  _check(config.checkpoint_keep >= 1, f"checkpoint_keep={config.checkpoint_keep}: must be >= 1")
  _check(config.test_every >= 1, f"test_every={config.test_every}: must be >= 1")
  _check(0.0 < config.fit_target <= 1.0, f"fit_target={config.fit_target}: must be in (0, 1]")
  _check(config.holdout_size >= 0, f"holdout_size={config.holdout_size}: must be >= 0 (0: all)")
  _check(config.adam_eps > 0, f"adam_eps={config.adam_eps}: must be > 0")
  _choice(config, "optimizer", ("adam", "sgd"))
  _check(0.0 <= config.momentum < 1.0, f"momentum={config.momentum}: must be in [0, 1)")
  _check(config.test_from_train >= 0, f"test_from_train={config.test_from_train}: must be >= 0")
  _choice(config, "report", ("", "curves"))
  _choice(config, "group_by", [a for a in RUN_AXES if a != "seed"])
  for rate in config.dropout_rate:
    _check(0.0 <= rate < 1.0, f"dropout_rate={rate}: must be in [0, 1)")
  for fraction in config.train_fraction:
    _check(0.0 < fraction <= 1.0, f"train_fraction={fraction}: must be in (0, 1]")
  _choice(config, "task", TASKS)
  _choice(config, "loss", LOSSES)
  from swapjax.layers import config_layers, parse_layer

  try:
    layers = config_layers(config)
    for text in layers:
      parse_layer(text)
  except ValueError as e:
    raise ConfigError(f"layers: {e}") from None
  model = "layers" if config.layers else f"model {config.model}"
  for axis, layer, default in [
    ("dropout_rate", "dropout", (0.0,)),
    ("leaky_slope", "leaky_relu", (0.3,)),
  ]:
    _check(
      getattr(config, axis) == default or layer in layers,
      f"{axis}={','.join(map(str, getattr(config, axis)))}: {model} has no {layer} layer "
      "without its own rate (a condition on no axis)",
    )
  for field in config.row_fields:
    _check("=" in field, f"row_fields: '{field}' is not key=value")
  for noise in config.target_noise:
    _check(noise >= 0.0, f"target_noise={noise}: must be >= 0")
  _check(
    config.target_noise == (0.0,) or config.task == "regression",
    f"target_noise={','.join(map(str, config.target_noise))}: only regression targets take noise",
  )
  for slope in config.leaky_slope:
    _check(0.0 <= slope < 1.0, f"leaky_slope={slope}: must be in [0, 1)")
  for flip in config.augment_flip:
    _check(flip in (0, 1), f"augment_flip={flip}: must be 0 or 1")
  for factor in config.augment_rotation:
    _check(0.0 <= factor <= 0.5, f"augment_rotation={factor}: must be in [0, 0.5]")
  _check(
    config.dataset in IMAGE_DATASETS
    or (config.augment_flip == (0,) and config.augment_rotation == (0.0,)),
    f"augment_flip/augment_rotation: dataset {config.dataset} has no images to augment",
  )
  _check(
    config.task == "softmax" or config.study != "swap",
    f"task={config.task}: the swap study judges samples by softmax classification",
  )
  for lr in config.learning_rate:
    _check(0.0 < lr < 10.0, f"learning_rate={lr}: must be in (0, 10)")
  for p in config.label_corruption:
    _check(0.0 <= p <= 1.0, f"label_corruption={p}: must be in [0, 1]")
  for w in config.warmup:
    _check(w >= 0, f"warmup={w}: must be >= 0")
  _check(
    len(set(config.conditions)) == len(config.conditions),
    f"conditions={','.join(config.conditions)}: names repeat",
  )
  _check(config.runs_per_device >= 0, f"runs_per_device={config.runs_per_device}: must be >= 0")
  _check(config.cpu_devices >= 0, f"cpu_devices={config.cpu_devices}: must be >= 0")
  _check(config.micro_batches >= 0, f"micro_batches={config.micro_batches}: must be >= 0")
  for program in program_configs(config) if config.runs_per_device else ():
    count = len(run_table(program))
    _check(
      count % config.runs_per_device == 0,
      f"runs_per_device={config.runs_per_device} does not divide the {count} runs of a program",
    )
  _check(
    config.mesh_runs >= 0 and config.mesh_data >= 1,
    f"mesh_runs={config.mesh_runs}, mesh_data={config.mesh_data}: must be >= 0 and >= 1",
  )
  _check(
    config.kind.swaps or config.conditions in (("none",), ()),
    f"conditions={','.join(config.conditions)}: the {config.study} study has no swaps; use none",
  )
  _check(config.pool_size >= 0, f"pool_size={config.pool_size}: must be >= 0 (0: all the data)")
  if config.pool_size and config.holdout_size:  # else again once the data says (runner.run)
    _validate_sizes(config)


def _validate_sizes(config: Config) -> None:
  halves = config.kind.halves
  _check(
    config.holdout_size >= 1 or not config.kind.tests_every_round,
    f"holdout_size={config.holdout_size}: the {config.study} study needs test samples",
  )
  _check(
    config.pool_size >= 2 * halves and config.pool_size % halves == 0,
    f"pool_size={config.pool_size}: the {config.study} study needs a pool of at least "
    f"{2 * halves} that splits into {halves} equal part(s)",
  )
  _check(
    config.num_train >= 1,
    f"validation_split={config.validation_split} leaves no training samples of {config.half_size}",
  )
  for program in program_configs(config):
    _check(
      program.num_train >= 1,
      f"train_fraction={program.train_fraction[0]} leaves no training sample of the "
      f"{config.pool_size} in the pool",
    )
    batch = min(program.batch_size, program.num_train)
    _check(
      batch % max(1, program.micro_batches) == 0,
      f"micro_batches={program.micro_batches} does not divide the batch of {batch}",
    )
  tables = config.schedules()
  for name in config.conditions:
    _check(
      name in tables, f"conditions: '{name}' is not a swap schedule; defined: {', '.join(tables)}"
    )
    biggest = max(k for _, k in tables[name])
    _check(
      biggest <= config.half_size,
      f"swap schedule '{name}': k={biggest} does not fit halves of {config.half_size}",
    )
  _check(
    bool(config.layers)
    or config.dataset not in IMAGE_DATASETS
    or config.model.startswith("cnn_004")
    or config.dataset == "cifar10",
    f"model={config.model}: 28x28 datasets take cnn_004 or cnn_004_dropout",
  )


# ------------------------------------------------------------------ runs
RUN_AXES = (
  "condition",
  "warmup",
  "learning_rate",
  "label_corruption",
  "input_corruption",
  "train_fraction",
  "dropout_rate",
  "leaky_slope",
  "augment_flip",
  "augment_rotation",
  "target_noise",
  "seed",
)
# Run axes whose values are numbers the compiled program reads per run (RunArrays.numbers).
TRACED_AXES = ("learning_rate", "dropout_rate", "leaky_slope", "augment_flip", "augment_rotation")
# Run axes whose values change shapes or loop lengths: each value is its own compiled program.
STATIC_AXES = ("train_fraction",)


def run_table(config: Config) -> list[dict[str, Any]]:
  """One dict per run, in run order: the product of the run-axis fields and the seeds; with
  `variants`, each variant's runs in turn, named by a `variant` entry."""
  if config.variants:
    return [run for v in variant_configs(config) for run in run_table(v)]
  product = itertools.product(
    *(_axis_values(config, axis) for axis in RUN_AXES[:-1]), range(config.num_seeds)
  )
  table = [dict(zip(RUN_AXES, values, strict=True)) for values in product]
  if config.input_corruption_true_labels and len(config.label_corruption) > 1:
    lowest = min(config.label_corruption)
    table = [r for r in table if r["input_corruption"] == "none" or r["label_corruption"] == lowest]
  if config.variant:
    table = [{"variant": config.variant, **r} for r in table]
  return table


def group_names(config: Config, table: list[dict[str, Any]]) -> list[str]:
  """`group_name` of every run of `table` (the variants parsed once)."""
  variants = {v.variant: v for v in variant_configs(config)} if config.variants else {}
  return [_group_name(variants.get(run.get("variant"), config), run) for run in table]


def group_name(config: Config, run: dict[str, Any]) -> str:
  """The group a run belongs to, e.g. `vgg_like` or `train_fraction=0.2,dropout_rate=0.5`: its
  variant's name, then its values of `config.group_by` and of the other run axes (seed aside)
  that vary in its variant; `all` if none."""
  if run.get("variant") and config.variants:
    config = {v.variant: v for v in variant_configs(config)}[run["variant"]]
  return _group_name(config, run)


def _group_name(config: Config, run: dict[str, Any]) -> str:
  axes = [
    axis
    for axis in RUN_AXES
    if axis in config.group_by or (axis != "seed" and len(_axis_values(config, axis)) > 1)
  ]
  values = ",".join(f"{axis}={run[axis]}" for axis in axes)
  return ",".join(filter(None, (run.get("variant"), values))) or "all"


def _axis_values(config: Config, axis: str) -> tuple:
  return config.conditions if axis == "condition" else getattr(config, axis)


def program_configs(config: Config) -> list[Config]:
  """One config per compiled program: each variant narrowed to one value of each static axis."""
  return [
    dataclasses.replace(v, train_fraction=(f,))
    for v in variant_configs(config)
    for f in v.train_fraction
  ]


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


def parse_variants(text: str) -> list[tuple[str, dict[str, Any]]]:
  """`name:key=value+key=value;name2:...` -> [(name, {key: typed value})]."""

  def bad(why: str) -> ConfigError:
    return ConfigError(f"variants={text}: each variant is name:key=value+...; {why}")

  out = []
  for entry in filter(None, (e.strip() for e in text.split(";"))):
    name, sep, body = entry.partition(":")
    name = name.strip()
    if not sep and "=" in entry:
      raise bad(f"'{entry}' has no name (name:{entry})")
    if not sep:
      raise bad(f"'{entry}' has no ':' after its name ('{entry}:' keeps the study's values)")
    if not name:
      raise bad(f"'{entry}' has no name before its ':'")
    if any(c in name for c in "=,+"):
      raise bad(f"'{name}' is not a name (no '=', ',' or '+')")
    changes = {}
    for item in filter(None, (i.strip() for i in body.split("+"))):
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
  if not config.variants:
    return [config]
  variants = parse_variants(config.variants)
  unknown = set(config.groups) - {name for name, _ in variants}
  if unknown:
    raise ConfigError(
      f"groups={','.join(sorted(unknown))}: not a variant of this study; variants: "
      + ", ".join(name for name, _ in variants)
    )
  return [
    dataclasses.replace(config, variants="", groups=(), variant=name, **changes)
    for name, changes in variants
    if not config.groups or name in config.groups
  ]
