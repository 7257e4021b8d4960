"""The config's seven sections: frozen dataclasses of typed fields, each checking its own values.

A section's `validate` raises a one-line ConfigError for a value outside its range or its
choices; checks that read two sections at once (a kernel and the compute dtype, the sizes of
the pool and the swap schedules) are swapjax.config.validation's. Fields on the run axis are
tuples: the runs of a study are the product of their values and the seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from swapjax.config.choices import (
  CONV_IMPLS,
  DATASETS,
  DEFAULT_SCHEDULES,
  DRIVERS,
  DTYPES,
  EXCHANGES,
  IMAGE_DATASETS,
  INPUT_CORRUPTIONS,
  LOSSES,
  MODELS,
  NORMALIZE,
  ON_NAN,
  RNN_IMPLS,
  RUN_AXES,
  SOURCES,
  STUDIES,
  STUDY_ALIASES,
  STUDY_KINDS,
  TASKS,
)
from swapjax.config.errors import ConfigError
from swapjax.config.text import row_fields_text, schedules_text
from swapjax.layers import layers_text, network_layers, parse_layer


def check(ok: bool, message: str) -> None:
  """A ConfigError with `message` (one line) unless `ok`."""
  if not ok:
    raise ConfigError(message)


def choice(key: str, value, allowed: Sequence[str]) -> None:
  """`value` (each value of a tuple) is one of `allowed`."""
  for v in value if isinstance(value, tuple) else (value,):
    check(v in allowed, f"{key}={v}: allowed values are {', '.join(allowed)}")


@dataclasses.dataclass(frozen=True)
class Study:
  """What the study is: its kind, length, groups, the swap rule and what ends a run."""

  kind: str = "swap"  # STUDY_KINDS: "swap" (halves A and B exchange samples) or "epochs"
  description: str = ""
  rounds: int = 50
  # The swap rules each run uses and the rounds before its first swap (None: the study kind's,
  # StudyKind.conditions and .warmup: every rule with and without 10 rounds of warm-up for the
  # swap study, `none` and 0 for a study without swaps).
  conditions: tuple[str, ...] = None
  warmup: tuple[int, ...] = None
  # {name: ((threshold, k), ...)}, stored as text (DEFAULT_SCHEDULES, text.parse_schedules).
  swap_schedules: str = DEFAULT_SCHEDULES
  shared_model: bool = False
  # How a swap pair moves (swapjax/swap.py EXCHANGES): "swap" trades A's and B's pool indices;
  # "copy" is report 000's NumPy statement as it ran: A's position takes B's index, B unchanged.
  exchange: str = "swap"
  fit_target: float = 0.99  # the training accuracy at which a run counts as fit
  early_stop: bool = False  # end the study when every run is fit
  test_every: int = 5  # rounds between test evaluations of a study without per-round tests
  on_nan: str = "stop"  # ON_NAN: stop the study, or freeze the run that went NaN
  # Named variants that change the program (architecture, batch size, optimiser...), a mapping
  # {name: {key: value}} of overrides, stored as text `name:key=value+key=value;name2:...`
  # (text.variants_text, runs.parse_variants); each is a group of its own, its runs the product of
  # its own run axes and the seeds. Empty: one variant, the config itself.
  variants: str = ""
  groups: tuple[str, ...] = ()  # the variants to run (empty: all of them)
  # The run axes that name a run's group (e.g. `train_fraction=0.2,dropout_rate=0.5`); empty:
  # the axes that vary in this study. Seeds are never part of a group.
  group_by: tuple[str, ...] = ()
  # Fields written into every row of the study ({"gate": "xor"}, stored as `gate=xor`).
  row_fields: tuple[str, ...] = ()
  log_params: bool = False  # single-model studies: every parameter of a small network per row
  report: str = ""  # "" (by study), or "curves": per-group learning curves

  def __post_init__(self):
    """The kind's other name read as today's; None conditions and warmup the kind's; mappings
    the text the config stores (so that config.json reads the same whichever form wrote it)."""
    kind_name = STUDY_ALIASES.get(self.kind, self.kind)
    kind = STUDY_KINDS.get(kind_name, STUDY_KINDS["swap"])
    stored = {
      "kind": kind_name,
      "conditions": kind.conditions if self.conditions is None else self.conditions,
      "warmup": kind.warmup if self.warmup is None else self.warmup,
    }
    if isinstance(self.swap_schedules, Mapping):
      stored["swap_schedules"] = schedules_text(self.swap_schedules)
    if isinstance(self.row_fields, Mapping):
      stored["row_fields"] = row_fields_text(self.row_fields)
    for name, value in stored.items():
      object.__setattr__(self, name, value)

  def validate(self) -> None:
    choice("study", self.kind, STUDIES)
    choice("on_nan", self.on_nan, ON_NAN)
    choice("exchange", self.exchange, EXCHANGES)
    check(self.rounds >= 1, f"rounds={self.rounds}: must be >= 1")
    check(self.test_every >= 1, f"test_every={self.test_every}: must be >= 1")
    check(0.0 < self.fit_target <= 1.0, f"fit_target={self.fit_target}: must be in (0, 1]")
    choice("report", self.report, ("", "curves"))
    choice("group_by", self.group_by, [a for a in RUN_AXES if a != "seed"])
    for field in self.row_fields:
      check("=" in field, f"row_fields: '{field}' is not key=value")
    for w in self.warmup:
      check(w >= 0, f"warmup={w}: must be >= 0")
    check(
      len(set(self.conditions)) == len(self.conditions),
      f"conditions={','.join(self.conditions)}: names repeat",
    )
    check(
      STUDY_KINDS[self.kind].swaps or self.conditions in (("none",), ()),
      f"conditions={','.join(self.conditions)}: the {self.kind} study has no swaps; use none",
    )


@dataclasses.dataclass(frozen=True)
class Data:
  """Which samples, from where, split how, and what is done to them."""

  dataset: str = "cifar10"  # DATASETS
  source: str = "auto"  # SOURCES: where the images come from (auto: files, then tfds...)
  pool_size: int = 10_000  # training samples of the study (0: all the data has)
  holdout_size: int = 1_000  # test samples (0: all)
  # > 0: the test set is this many training images after the pool (the report's own split), and
  # the dataset's official test images are evaluated as holdout/*.
  test_from_train: int = 0
  validation_split: float = 0.1  # Keras' rule: the last fraction of each half validates
  # Single-model studies: each seed orders the pool at random, so `validation_split` holds out
  # a random fraction per seed (scikit-learn's train_test_split per run, seeds/002's iris).
  split_per_seed: bool = False
  normalize: str = "unit"  # NORMALIZE: pixels in [0, 1], or centred
  # The samples a program trains on (seeds/003): the first round(train_fraction x pool_size) of
  # the pool; each value is its own compiled program.
  train_fraction: tuple[float, ...] = (1.0,)
  # The memorization study's corruptions (Zhang et al.): a fraction of random labels, inputs
  # replaced by noise or shuffled pixels.
  label_corruption: tuple[float, ...] = (0.0,)
  input_corruption: tuple[str, ...] = ("none",)
  # Zhang et al. corrupt inputs with the true labels: such runs take label_corruption 0 only.
  input_corruption_true_labels: bool = True
  # Gaussian noise (standard deviation) added to float targets, drawn per seed (seeds/002's
  # regression): data on the run axis.
  target_noise: tuple[float, ...] = (0.0,)
  # Augmentation of training batches on the device (seeds/001): random left-right flips (1; 2:
  # upside-down flips too) and random rotation (Keras RandomRotation factor: angles in
  # +-factor x 360 degrees, corners filled by reflection).
  augment_flip: tuple[int, ...] = (0,)
  augment_rotation: tuple[float, ...] = (0.0,)

  def validate(self) -> None:
    choice("dataset", self.dataset, DATASETS)
    choice("source", self.source, SOURCES)
    choice("input_corruption", self.input_corruption, INPUT_CORRUPTIONS)
    choice("normalize", self.normalize, NORMALIZE)
    check(
      0.0 <= self.validation_split < 1.0,
      f"validation_split={self.validation_split}: must be in [0, 1)",
    )
    check(self.holdout_size >= 0, f"holdout_size={self.holdout_size}: must be >= 0 (0: all)")
    check(self.test_from_train >= 0, f"test_from_train={self.test_from_train}: must be >= 0")
    check(self.pool_size >= 0, f"pool_size={self.pool_size}: must be >= 0 (0: all the data)")
    for fraction in self.train_fraction:
      check(0.0 < fraction <= 1.0, f"train_fraction={fraction}: must be in (0, 1]")
    for p in self.label_corruption:
      check(0.0 <= p <= 1.0, f"label_corruption={p}: must be in [0, 1]")
    for noise in self.target_noise:
      check(noise >= 0.0, f"target_noise={noise}: must be >= 0")
    for flip in self.augment_flip:
      check(
        flip in (0, 1, 2), f"augment_flip={flip}: must be 0, 1 (left-right) or 2 (and upside down)"
      )
    for factor in self.augment_rotation:
      check(0.0 <= factor <= 0.5, f"augment_rotation={factor}: must be in [0, 0.5]")
    check(
      self.dataset in IMAGE_DATASETS
      or (self.augment_flip == (0,) and self.augment_rotation == (0.0,)),
      f"augment_flip/augment_rotation: dataset {self.dataset} has no images to augment",
    )


@dataclasses.dataclass(frozen=True)
class Model:
  """The network and its task (outputs, loss)."""

  name: str = "cifar_cnn"  # MODELS: a named network of the reports (`--set model=...`)
  # The network as layers (swapjax.layers values, e.g. `(Conv(64), relu, maxpool, flatten,
  # Dense(10))`, stored as their compact text `conv:64,relu,maxpool,flatten,dense:10`); empty:
  # the named model's.
  layers: tuple[str, ...] = ()
  dropout: bool = True  # the named model's dropout layers
  # Traced run-axis numbers of the network (one program for all their values): the rate of
  # dropout layers without their own, the slope of `leaky_relu` layers without their own.
  dropout_rate: tuple[float, ...] = (0.0,)
  leaky_slope: tuple[float, ...] = (0.3,)
  # What the network's outputs mean (TASKS): softmax over classes (integer labels); sigmoid
  # outputs against 0/1 targets (Keras' binary accuracy); or plain regression (no accuracy).
  task: str = "softmax"
  loss: str = "auto"  # cross-entropy of the task, or mean squared error of its outputs
  rnn_unroll: bool = False  # unroll the recurrent layers' time loop (same mathematics)

  def __post_init__(self):
    if not (isinstance(self.layers, tuple) and all(isinstance(x, str) for x in self.layers)):
      object.__setattr__(self, "layers", layers_text(self.layers))

  def validate(self) -> None:
    """The choices, the layer spec parses, and the network has the layers that the
    dropout_rate and leaky_slope axes set."""
    choice("model", self.name, MODELS)
    choice("task", self.task, TASKS)
    choice("loss", self.loss, LOSSES)
    check(
      self.loss != "keras_cross_entropy" or self.task != "regression",
      "loss=keras_cross_entropy: needs task=softmax or task=sigmoid (probabilities)",
    )
    for rate in self.dropout_rate:
      check(0.0 <= rate < 1.0, f"dropout_rate={rate}: must be in [0, 1)")
    for slope in self.leaky_slope:
      check(0.0 <= slope < 1.0, f"leaky_slope={slope}: must be in [0, 1)")
    try:
      layers = network_layers(self)
      for text in layers:
        parse_layer(text)
    except ValueError as e:
      raise ConfigError(f"layers: {e}") from None
    model = "layers" if self.layers else f"model {self.name}"
    for axis, layer, default in [
      ("dropout_rate", "dropout", (0.0,)),
      ("leaky_slope", "leaky_relu", (0.3,)),
    ]:
      check(
        getattr(self, axis) == default or layer in layers,
        f"{axis}={','.join(map(str, getattr(self, axis)))}: {model} has no {layer} layer "
        "without its own rate (a condition on no axis)",
      )


@dataclasses.dataclass(frozen=True)
class Optim:
  """The optimiser (Keras defaults of the reports) and the batches it steps on."""

  optimizer: str = "adam"  # "adam" (Keras defaults) or "sgd" (Keras SGD, `momentum`)
  learning_rate: tuple[float, ...] = (0.001,)
  momentum: float = 0.0
  adam_eps: float = 1e-7
  batch_size: int = 32
  # N > 1: each training batch in N slices one after another, gradients accumulated (the same
  # update up to float order; dropout and augmentation draw per slice), so a run whose batch
  # does not fit the device still trains. 0: only when the memory estimate says so.
  micro_batches: int = 0

  def validate(self) -> None:
    check(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
    check(self.adam_eps > 0, f"adam_eps={self.adam_eps}: must be > 0")
    choice("optimizer", self.optimizer, ("adam", "sgd"))
    check(0.0 <= self.momentum < 1.0, f"momentum={self.momentum}: must be in [0, 1)")
    for lr in self.learning_rate:
      check(0.0 < lr < 10.0, f"learning_rate={lr}: must be in (0, 10)")
    check(self.micro_batches >= 0, f"micro_batches={self.micro_batches}: must be >= 0")


@dataclasses.dataclass(frozen=True)
class Runs:
  """The seeds and how runs are laid out on devices."""

  num_seeds: int = 10
  seed: int = 0  # the first seed (runs take seed, seed + 1, ...)
  # 0: chunks of the width the device kind and the program give (`study.runs_per_call`,
  # recorded in config.json). N: chunks of N runs per call. Either way every device, of one
  # process or of several, runs the same program whatever the device count, so results are
  # bitwise independent of it (tested). On a mesh (`mesh_runs`, `mesh_data`): N per device.
  runs_per_device: int = 0
  mesh_runs: int = 0  # devices on the mesh's `runs` axis (0: all that `mesh_data` leaves)
  mesh_data: int = 1  # devices each batch is split over

  def validate(self) -> None:
    check(1 <= self.num_seeds <= 100_000, f"num_seeds={self.num_seeds}: must be >= 1")
    check(self.runs_per_device >= 0, f"runs_per_device={self.runs_per_device}: must be >= 0")
    check(
      self.mesh_runs >= 0 and self.mesh_data >= 1,
      f"mesh_runs={self.mesh_runs}, mesh_data={self.mesh_data}: must be >= 0 and >= 1",
    )


@dataclasses.dataclass(frozen=True)
class Engine:
  """How the engine computes and writes, on any backend."""

  driver: str = "auto"  # DRIVERS: the epoch loop compiled (scan) or driven from the host
  compute_dtype: str = "float32"
  eval_batch_size: int = 0  # 0: 500 on CPU, 1000 on accelerators
  eval_population: str = "map"  # "map": lax.map over models; "vmap": one batched program
  # A causal sequence network (recurrent layers, then per-step layers) evaluates each distinct
  # input prefix of an evaluation set once (swapjax/prefixes.py) when that is at most half the
  # per-sample work; false: every sample, every step.
  eval_shared_prefixes: bool = True
  checkpoint_keep: int = 3
  tensorboard: bool = True  # event files in WORKDIR/tensorboard/ (one series per run and metric)

  def validate(self) -> None:
    choice("driver", self.driver, DRIVERS)
    choice("compute_dtype", self.compute_dtype, DTYPES)
    check(self.eval_batch_size >= 0, f"eval_batch_size={self.eval_batch_size}: must be >= 0")
    check(self.checkpoint_keep >= 1, f"checkpoint_keep={self.checkpoint_keep}: must be >= 1")


@dataclasses.dataclass(frozen=True)
class Backend:
  """Backend-specific kernels and devices (swapjax.backend): `auto` picks the measured default."""

  conv_impl: str = "auto"  # CONV_IMPLS: the training convolutions
  eval_conv_impl: str = "lax"  # forward-only: plain convolutions, one model at a time
  # The recurrent layers' time loop: "scan" (lax.scan), "native" (one C++ call per pass, CPU,
  # float32: swapjax/cpu/rnn_kernel.py), "fused" (native, and the whole SGD training epoch of an
  # rnn-then-dense network as one C++ call), "auto" (fused where the network allows it, else
  # native, on a CPU where the C++ builds; else scan).
  rnn_impl: str = "auto"
  # XLA CPU devices the host's cores are split into (0: one per core), set before JAX starts;
  # with several, each program's runs go in equal chunks to single devices (no mesh), one
  # chunk per device at a time. Tiny models run faster so (XLA:CPU runs their small operations
  # on one core); big convolutions do not (they use every core already). 1: one CPU device.
  # Ignored on accelerators and in multi-process runs.
  cpu_devices: int = 1

  def validate(self) -> None:
    choice("conv_impl", self.conv_impl, CONV_IMPLS)
    choice("eval_conv_impl", self.eval_conv_impl, CONV_IMPLS[1:])
    choice("rnn_impl", self.rnn_impl, RNN_IMPLS)
    check(self.cpu_devices >= 0, f"cpu_devices={self.cpu_devices}: must be >= 0")


# The sections in the order `--show_config` prints them.
SECTION_TYPES = {
  "study": Study,
  "data": Data,
  "model": Model,
  "optim": Optim,
  "runs": Runs,
  "engine": Engine,
  "backend": Backend,
}
