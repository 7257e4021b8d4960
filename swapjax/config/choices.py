"""The values a config's fields may take, the facts of each study kind, and the run axes.
Pure data: every other module of swapjax.config reads it.
"""

from __future__ import annotations

import dataclasses

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
# keras_cross_entropy: Keras 2's cross-entropy of probabilities (softmax or sigmoid outputs)
# clipped to [1e-7, 1 - 1e-7]: no gradient past the clip, a loss of at most -ln(1e-7) = 16.12
# per sample (report 003's 4,000-epoch loss of 14.54 is 0.90 of that).
LOSSES = ("auto", "cross_entropy", "mean_squared_error", "keras_cross_entropy")


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
