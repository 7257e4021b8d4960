"""Validation of a config: a one-line ConfigError for any value outside what the study can run.

`validate` runs its checks in a fixed order, one function per group of neighbouring checks, so
that the first error a user sees for a config with several faults is always the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

from swapjax.config.errors import ConfigError
from swapjax.config.fields import (
  CONV_IMPLS,
  DATASETS,
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
  SOURCES,
  STUDIES,
  TASKS,
  Config,
)
from swapjax.config.runs import RUN_AXES, program_configs, run_table, variant_configs

# The fields that take one of a fixed set of values (each value of a tuple field), checked first.
CHOICES = (
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
)


def validate(config: Config) -> None:
  """Raises ConfigError (one line) for any value outside what the study can run."""
  if config.variants:
    for variant in variant_configs(config):
      validate(variant)
    return
  for key, allowed in CHOICES:
    _choice(config, key, allowed)
  _check_kernels(config)
  _check_ranges(config)
  _check_model(config)
  _check_data_axes(config)
  _check_training_axes(config)
  _check_devices(config)
  _check_study(config)


def _check(ok: bool, message: str):
  if not ok:
    raise ConfigError(message)


def _choice(config: Config, key: str, allowed: Sequence[str]):
  value = getattr(config, key)
  values = value if isinstance(value, tuple) else (value,)
  for v in values:
    _check(v in allowed, f"{key}={v}: allowed values are {', '.join(allowed)}")


def _check_kernels(config: Config) -> None:
  """The native kernels (oneDNN convolutions, C++ recurrent layers) compute in float32."""
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


def _check_ranges(config: Config) -> None:
  """Counts, sizes and rates within their ranges; the optimizer, report and group_by known."""
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


def _check_model(config: Config) -> None:
  """The task and loss known, the layer spec parses, and the network has the layers that the
  dropout_rate and leaky_slope axes set."""
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


def _check_data_axes(config: Config) -> None:
  """Row fields as key=value; target noise, leaky slope and augmentation in range, the noise
  on regression targets only and the augmentation on images only."""
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
    _check(
      flip in (0, 1, 2), f"augment_flip={flip}: must be 0, 1 (left-right) or 2 (and upside down)"
    )
  for factor in config.augment_rotation:
    _check(0.0 <= factor <= 0.5, f"augment_rotation={factor}: must be in [0, 0.5]")
  _check(
    config.dataset in IMAGE_DATASETS
    or (config.augment_flip == (0,) and config.augment_rotation == (0.0,)),
    f"augment_flip/augment_rotation: dataset {config.dataset} has no images to augment",
  )


def _check_training_axes(config: Config) -> None:
  """The swap study's task is softmax; learning rates, label corruption and warmups in range,
  condition names distinct."""
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


def _check_devices(config: Config) -> None:
  """How runs and batches are laid out on devices: counts >= 0, chunks that divide a program's
  runs, a valid mesh."""
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


def _check_study(config: Config) -> None:
  """No swap conditions in a study without swaps; the pool and holdout sizes fit the study
  (when both are known: else again once the data says, in runner.run)."""
  _check(
    config.kind.swaps or config.conditions in (("none",), ()),
    f"conditions={','.join(config.conditions)}: the {config.study} study has no swaps; use none",
  )
  _check(config.pool_size >= 0, f"pool_size={config.pool_size}: must be >= 0 (0: all the data)")
  if config.pool_size and config.holdout_size:
    _check_sizes(config)
    _check_schedules(config)
    _check_image_model(config)


def _check_sizes(config: Config) -> None:
  """Test samples where the study needs them; a pool that splits into the study's parts, and
  every program's training samples and batch slices."""
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


def _check_schedules(config: Config) -> None:
  """Every condition names a defined swap schedule whose k fits a half."""
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


def _check_image_model(config: Config) -> None:
  """A named model fits the dataset's images: the 28x28 ones take the cnn_004 models."""
  _check(
    bool(config.layers)
    or config.dataset not in IMAGE_DATASETS
    or config.model.startswith("cnn_004")
    or config.dataset == "cifar10",
    f"model={config.model}: 28x28 datasets take cnn_004 or cnn_004_dropout",
  )
