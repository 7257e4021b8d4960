"""The frozen study config: its fields with their defaults, the allowed values, the facts of
each study kind, and the config's JSON form.

One dataclass serves every experiment so that the keys users reach for (`rounds`, `num_seeds`,
`conditions`, `warmup`, `pool_size`, `batch_size`, `learning_rate`, `shared_model`,
`validation_split`) mean the same everywhere. Fields on the run axis are tuples: the runs of a
study are the product conditions x warmup x learning_rate x label_corruption x input_corruption
x seeds, and all of them train in one compiled program. The field order and defaults are what
users' workdirs hold in config.json (compared field by field on resume).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from swapjax.config.text import parse_schedules, row_fields_text, schedules_text, variants_text
from swapjax.layers import layers_text

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


@dataclasses.dataclass(frozen=True)
class StudyKind:
  """What a study kind is, as data: the engine reads these facts, never the kind's name."""

  halves: int  # disjoint parts of the pool (2: halves A and B exchange samples; 1: one set)
  members: int  # networks per run (1 with shared_model)
  round_key: str  # what a round is called in metrics.jsonl
  swaps: bool  # whether swap conditions apply
  tests_every_round: bool  # the holdout set every round (else every `test_every` rounds)
  conditions: tuple[str, ...]  # the default `conditions` and `warmup` of a config of this kind
  warmup: tuple[int, ...]


STUDY_KINDS = {
  "swap": StudyKind(
    halves=2,
    members=2,
    round_key="round",
    swaps=True,
    tests_every_round=True,
    conditions=("none", "one", "schedule"),
    warmup=(0, 10),
  ),
  # One network per run trained epoch by epoch (memorization, learning curves, fits).
  "epochs": StudyKind(
    halves=1,
    members=1,
    round_key="epoch",
    swaps=False,
    tests_every_round=False,
    conditions=("none",),
    warmup=(0,),
  ),
}
STUDIES = tuple(STUDY_KINDS)
# Other names of study kinds, read from old workdirs and users' `--set study=...`.
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

# The report's swap rules as threshold tables {name: ((threshold, k), ...)}; k is that of the
# first (largest) threshold a_miss reaches, 0 if none. The config stores them as compact text,
# `name=threshold:k,...;...`, which users also give with `--set swap_schedules=...`.
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
  # The network as layers (swapjax.layers values, e.g. `(Conv(64), relu, maxpool, flatten,
  # Dense(10))`, stored as their compact text `conv:64,relu,maxpool,flatten,dense:10`); empty:
  # the named `model`'s.
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
  # The swap rules each run uses and the rounds before its first swap (None: the study kind's,
  # StudyKind.conditions and .warmup: every rule with and without 10 rounds of warm-up for the
  # swap study, `none` and 0 for a study without swaps).
  conditions: tuple[str, ...] = None
  warmup: tuple[int, ...] = None
  # {name: ((threshold, k), ...)}, stored as text (DEFAULT_SCHEDULES, parse_schedules).
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
  # device (seeds/001): random left-right flips (1; 2: upside-down flips too) and random rotation
  # (Keras RandomRotation factor: angles in +-factor x 360 degrees, corners filled by reflection).
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
  # Fields written into every row of the study ({"gate": "xor"}, stored as `gate=xor`).
  row_fields: tuple[str, ...] = ()
  log_params: bool = False  # single-model studies: every parameter of a small network per row
  report: str = ""  # "" (by study), or "curves": per-group learning curves
  # The run axes that name a run's group (e.g. `train_fraction=0.2,dropout_rate=0.5`); empty:
  # the axes that vary in this study. Seeds are never part of a group.
  group_by: tuple[str, ...] = ()
  # Named variants that change the program (architecture, batch size, optimiser...), a mapping
  # {name: {key: value}} of overrides, stored as text `name:key=value+key=value;name2:...`
  # (text.variants_text, runs.parse_variants); each is a group of its own, its runs the product of
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

  def __post_init__(self):
    """Python values (layer values, mappings, None for the study kind's default) become the
    form the config stores, so that config.json reads the same whichever form wrote it; text
    stays as given (validation checks it)."""
    kind = STUDY_KINDS.get(STUDY_ALIASES.get(self.study, self.study), STUDY_KINDS["swap"])
    stored = {
      "conditions": kind.conditions if self.conditions is None else self.conditions,
      "warmup": kind.warmup if self.warmup is None else self.warmup,
    }
    if not (isinstance(self.layers, tuple) and all(isinstance(x, str) for x in self.layers)):
      stored["layers"] = layers_text(self.layers)
    if isinstance(self.swap_schedules, Mapping):
      stored["swap_schedules"] = schedules_text(self.swap_schedules)
    if isinstance(self.row_fields, Mapping):
      stored["row_fields"] = row_fields_text(self.row_fields)
    if isinstance(self.variants, Mapping):
      stored["variants"] = variants_text(self.variants, field_types())
    for name, value in stored.items():
      object.__setattr__(self, name, value)

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
  """{field name: its type}, in the fields' order."""
  hints = typing.get_type_hints(Config)
  return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def from_json(data: Mapping[str, Any]) -> Config:
  """The Config of a config.json (unknown keys ignored, old study names read as today's)."""
  types = field_types()
  values = {}
  for key, value in data.items():
    if key in types:
      values[key] = tuple(value) if typing.get_origin(types[key]) is tuple else value
  if "study" in values:
    values["study"] = STUDY_ALIASES.get(values["study"], values["study"])
  return Config(**values)
