"""Validation of a config: a one-line ConfigError for any value outside what the study can run.

`validate` runs its checks in a fixed order (each section's own, swapjax.config.sections, then
those across sections), so that the first error a user sees for a config with several faults is
always the same one.
"""

from __future__ import annotations

from swapjax.config.choices import IMAGE_DATASETS
from swapjax.config.fields import Config
from swapjax.config.runs import program_configs, run_table, variant_configs
from swapjax.config.sections import SECTION_TYPES, check


def validate(config: Config, sizes_known: bool = False) -> None:
  """Raises ConfigError (one line) for any value outside what the study can run: each section
  checks itself, in the sections' order, then the sections are checked against each other.
  The checks of the pool's and the holdout's sizes wait for the data where either is 0 (all
  the data has), unless `sizes_known` (the sizes are the data's: `runner.run` after
  `pool.resolve_sizes`)."""
  if config.study.variants:
    for variant in variant_configs(config):
      validate(variant, sizes_known)
    return
  for name in SECTION_TYPES:
    getattr(config, name).validate()
  _check_kernels(config)
  _check_task(config)
  _check_devices(config)
  if sizes_known or (config.data.pool_size and config.data.holdout_size):
    _check_sizes(config)
    _check_schedules(config)
    _check_image_model(config)


def _check_kernels(config: Config) -> None:
  """The native kernels (oneDNN convolutions, C++ recurrent layers) compute in float32."""
  for key in ("conv_impl", "eval_conv_impl"):
    if getattr(config, key) != "onednn":
      continue
    check(
      config.engine.compute_dtype == "float32",
      f"{key}=onednn computes in float32, not compute_dtype={config.engine.compute_dtype}",
    )
  if config.backend.rnn_impl in ("native", "fused"):
    impl = config.backend.rnn_impl
    check(
      config.engine.compute_dtype == "float32",
      f"rnn_impl={impl} computes in float32, not compute_dtype={config.engine.compute_dtype}",
    )
    check(not config.model.rnn_unroll, "rnn_unroll unrolls the lax.scan: use it with rnn_impl=scan")


def _check_task(config: Config) -> None:
  """The swap study's task is softmax; only regression targets take noise."""
  check(
    config.model.task == "softmax" or config.study.kind != "swap",
    f"task={config.model.task}: the swap study judges samples by softmax classification",
  )
  check(
    config.data.target_noise == (0.0,) or config.model.task == "regression",
    f"target_noise={','.join(map(str, config.data.target_noise))}: "
    "only regression targets take noise",
  )


def _check_devices(config: Config) -> None:
  """Chunks of runs that divide every program's runs."""
  for program in program_configs(config) if config.runs.runs_per_device else ():
    count = len(run_table(program))
    check(
      count % config.runs.runs_per_device == 0,
      f"runs_per_device={config.runs.runs_per_device} does not divide the {count} runs of a "
      "program",
    )


def _check_sizes(config: Config) -> None:
  """Test samples where the study needs them; a pool that splits into the study's parts, and
  every program's training samples and batch slices."""
  halves = config.kind.halves
  check(
    config.data.holdout_size >= 1 or not config.kind.tests_every_round,
    f"holdout_size={config.data.holdout_size}: the {config.study.kind} study needs test samples",
  )
  check(
    config.data.pool_size >= 2 * halves and config.data.pool_size % halves == 0,
    f"pool_size={config.data.pool_size}: the {config.study.kind} study needs a pool of at least "
    f"{2 * halves} that splits into {halves} equal part(s)",
  )
  check(
    config.num_train >= 1,
    f"validation_split={config.data.validation_split} leaves no training samples of "
    f"{config.half_size}",
  )
  for program in program_configs(config):
    check(
      program.num_train >= 1,
      f"train_fraction={program.data.train_fraction[0]} leaves no training sample of the "
      f"{config.data.pool_size} in the pool",
    )
    batch = min(program.optim.batch_size, program.num_train)
    check(
      batch % max(1, program.optim.micro_batches) == 0,
      f"micro_batches={program.optim.micro_batches} does not divide the batch of {batch}",
    )


def _check_schedules(config: Config) -> None:
  """Every condition names a defined swap schedule whose k fits a half."""
  tables = config.schedules()
  for name in config.study.conditions:
    check(
      name in tables, f"conditions: '{name}' is not a swap schedule; defined: {', '.join(tables)}"
    )
    biggest = max(k for _, k in tables[name])
    check(
      biggest <= config.half_size,
      f"swap schedule '{name}': k={biggest} does not fit halves of {config.half_size}",
    )


def _check_image_model(config: Config) -> None:
  """A named model fits the dataset's images: the 28x28 ones take the cnn_004 models."""
  check(
    bool(config.model.layers)
    or config.data.dataset not in IMAGE_DATASETS
    or config.model.name.startswith("cnn_004")
    or config.data.dataset == "cifar10",
    f"model={config.model.name}: 28x28 datasets take cnn_004 or cnn_004_dropout",
  )
