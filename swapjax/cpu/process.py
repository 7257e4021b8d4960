"""Preparing a process for a CPU study: XLA:CPU flags and splitting the CPU into devices.

Both take effect only before JAX starts its backends, so the entry points call them (through
swapjax.backend.prepare_process) before anything else touches JAX.
"""

from __future__ import annotations

import os

import jax

from swapjax.config import program_configs
from swapjax.layers import config_layers

# XLA:CPU flags swapjax adds to XLA_FLAGS for a study with convolutions, unless XLA_FLAGS names
# them already (benchmarks/README.md, "XLA:CPU's scheduler"): the concurrency-optimised
# scheduler runs independent operations side by side, which on a small CPU slows the oneDNN
# convolutions that already use every core (measured 4-7% per round; within noise on the RNN
# study, so studies without convolutions keep XLA's default).
CPU_XLA_FLAGS = ("--xla_cpu_enable_concurrency_optimized_scheduler=false",)


def study_xla_flags(config) -> tuple[str, ...]:
  """The XLA flags swapjax sets for `config`'s study: CPU_XLA_FLAGS where any of its networks
  has a convolution, else none (the flags only affect XLA:CPU)."""
  layers = [layer for p in program_configs(config) for layer in config_layers(p)]
  return CPU_XLA_FLAGS if any(layer.startswith("conv:") for layer in layers) else ()


def set_xla_flags(flags=CPU_XLA_FLAGS) -> list[str]:
  """Adds `flags` to XLA_FLAGS, each unless XLA_FLAGS names it (a user's or a benchmark's
  choice wins), before JAX starts its backends (later they take no effect); returns those
  added."""
  current = os.environ.get("XLA_FLAGS", "")
  added = [f for f in flags if f.split("=", 1)[0] not in current]
  if added:
    os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added


def split_cpu(devices: int) -> int:
  """Splits the host's CPU into `devices` XLA devices (0: one per core the process may use)
  before JAX starts its backends; returns the count set, or 0 where nothing changed: 1 asked
  for, a count already forced in XLA_FLAGS (tests, users), or JAX already started (a notebook
  that ran JAX before; the study then runs on the devices it has)."""
  count = devices or len(os.sched_getaffinity(0))
  if count == 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
    return 0
  try:
    jax.config.update("jax_num_cpu_devices", count)
  except RuntimeError:  # backends already initialised
    return 0
  return count


def split_devices(config) -> list | None:
  """The single CPU devices a study's runs are spread over in equal chunks (`cpu_devices`
  split the host: one process, no `data` axis, no `runs_per_device` or `mesh_runs` asked
  for, more than one CPU device), or None."""
  local = jax.local_devices()
  split = (
    config.backend.cpu_devices != 1
    and jax.process_count() == 1
    and config.runs.mesh_data == 1
    and not (config.runs.runs_per_device or config.runs.mesh_runs)
    and local[0].platform == "cpu"
    and len(local) > 1
  )
  return local if split else None


def prepare_process(config, distributed: bool = False) -> None:
  """XLA:CPU's flags for `config`'s study and, in a single-process run, the CPU split into
  `cpu_devices` devices; both before JAX starts its backends."""
  set_xla_flags(study_xla_flags(config))
  if not distributed:
    split_cpu(config.backend.cpu_devices)
