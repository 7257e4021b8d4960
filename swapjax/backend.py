"""The one door to backend-specific code: the engine asks here for its kernels and devices.

GPUs and TPUs run the engine's JAX code as it is. On a CPU, swapjax.cpu adds oneDNN's
convolutions and a C++ recurrence through jax.ffi, a whole-epoch C++ trainer, XLA:CPU flags
and a CPU split into several devices. This module
is the only one that imports swapjax.cpu, and only when the platform is the CPU, so a GPU or
TPU run never loads it (tests/test_backend.py). The engine (config, layers, models, train,
rounds, state, swap, policies) imports nothing of either: it receives functions.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable

import jax

from swapjax import models
from swapjax.config import Config, ConfigError
from swapjax.layers import config_layers

CPU_ONLY = {
  "conv_impl": ("onednn",),
  "eval_conv_impl": ("onednn",),
  "rnn_impl": ("native", "fused"),
}


def platform() -> str:
  """The platform the study runs on (JAX's default backend: cpu, gpu or tpu)."""
  return jax.default_backend()


def _cpu():
  """The CPU backend's module, on a CPU only (None elsewhere)."""
  if platform() != "cpu":
    return None
  from swapjax.cpu import backend as cpu

  return cpu


@functools.cache
def _say_once(text: str) -> None:
  print(text, flush=True)


@dataclasses.dataclass(frozen=True)
class Kernels:
  """What a program's networks compute with here, resolved from the config's `auto` choices."""

  conv_impl: str
  conv: Callable  # the training network's 3x3 convolution
  eval_conv: Callable  # the evaluation network's
  rnn_impl: str | None  # scan, native or fused; None for a network without recurrent layers
  recurrence: Callable | None  # the recurrent layers' time loop; None: the lax.scan
  train_epoch: Callable | None  # a whole-epoch implementation (train.make_train_epoch's `epoch`)

  def model(self, config: Config) -> models.SpecNet:
    return models.config_model(config, self.conv, self.recurrence)

  def eval_model(self, config: Config) -> models.SpecNet:
    return models.config_model(config, self.eval_conv, self.recurrence)


def check(config: Config) -> None:
  """Kernels a config names must run here (one-line ConfigError): the CPU's only on a CPU."""
  where = platform()
  for key, names in CPU_ONLY.items():
    if where != "cpu" and getattr(config, key) in names:
      raise ConfigError(f"{key}={getattr(config, key)} runs on the CPU only, not on {where}")
  if cpu := _cpu():
    cpu.check(config)


def conv_function(name: str) -> Callable:
  """The 3x3 convolution called `name` (models.CONV_FUNCTIONS, or the backend's own)."""
  if name in models.CONV_FUNCTIONS:
    return models.CONV_FUNCTIONS[name]
  cpu = _cpu()
  if cpu is None or name not in cpu.conv_functions():
    raise ConfigError(f"conv_impl={name} does not run on {platform()}")
  if reason := cpu.conv_unavailable_reason(name):
    raise ConfigError(f"conv_impl={name}: {reason}")
  return cpu.conv_functions()[name]


def conv_impls() -> list[str]:
  """The convolutions that run here."""
  cpu = _cpu()
  extra = [n for n in cpu.conv_functions() if not cpu.conv_unavailable_reason(n)] if cpu else []
  return [*models.CONV_FUNCTIONS, *extra]


def resolve_conv_impl(conv_impl: str, compute_dtype: str = "float32") -> str:
  """`auto` -> the measured default here (oneDNN's on a CPU where they load, else patches; the
  patches form turns a population into batched matmuls, avoiding grouped convolutions)."""
  if conv_impl != "auto":
    return conv_impl
  cpu = _cpu()
  return cpu.default_conv_impl(compute_dtype) if cpu else "patches"


def resolve_rnn_impl(rnn_impl: str, compute_dtype: str = "float32", unroll: bool = False) -> str:
  """`auto` -> the C++ time loop on a CPU where it builds, else the scan (`rnn_unroll` asks for
  the unrolled scan); `fused` trains with the C++ epoch and evaluates with `native`."""
  if rnn_impl == "auto":
    cpu = _cpu()
    return cpu.default_rnn_impl(compute_dtype) if cpu and not unroll else "scan"
  return "native" if rnn_impl == "fused" else rnn_impl


def _conv_impl(config: Config) -> str:
  conv_impl = resolve_conv_impl(config.backend.conv_impl, config.engine.compute_dtype)
  cnn = any(layer.startswith("conv:") for layer in config_layers(config))
  if config.backend.conv_impl == "auto" and platform() == "cpu" and cnn and conv_impl != "onednn":
    reason = (
      _cpu().conv_unavailable_reason("onednn") or f"compute_dtype={config.engine.compute_dtype}"
    )
    _say_once(f"swapjax: convolutions by XLA ({conv_impl}), not oneDNN: {reason}")
  return conv_impl


def rnn_impl(config: Config) -> str | None:
  """The recurrences' formulation (None for a network without recurrent layers); where `auto`
  cannot use the C++ time loop on a CPU, the run says why once."""
  if not any(layer.startswith("rnn:") for layer in config_layers(config)):
    return None
  check(config)
  impl = resolve_rnn_impl(
    config.backend.rnn_impl, config.engine.compute_dtype, config.model.rnn_unroll
  )
  cpu = _cpu()
  if cpu and config.backend.rnn_impl == "auto" and impl != "native" and not config.model.rnn_unroll:
    reason = cpu.rnn_unavailable_reason() or f"compute_dtype={config.engine.compute_dtype}"
    _say_once(f"swapjax: recurrences by lax.scan, not the C++ time loop: {reason}")
  return "fused" if cpu and cpu.fused_epoch(config) else impl


def kernels(config: Config) -> Kernels:
  """The kernels `config`'s program computes with here."""
  check(config)
  conv_impl = _conv_impl(config)
  rnn = rnn_impl(config)
  cpu = _cpu()
  recurrence = cpu.recurrence() if rnn in ("native", "fused") else None
  return Kernels(
    conv_impl=conv_impl,
    conv=conv_function(conv_impl),
    eval_conv=conv_function(config.backend.eval_conv_impl),
    rnn_impl=rnn,
    recurrence=recurrence,
    train_epoch=cpu.train_epoch(config) if rnn == "fused" else None,
  )


def default_driver() -> str:
  """scan everywhere: measured fastest on CPU with the patches conv (benchmarks/README.md)."""
  return "scan"


def init_compiler_options() -> dict | None:
  """Compiler options for the one-off initialiser program (the backend's, or none)."""
  cpu = _cpu()
  return cpu.init_compiler_options() if cpu else None


def _expects_cpu() -> bool:
  """Whether JAX will start on the CPU, decided before it starts: the platforms asked for, else
  whether an accelerator's plugin (a jax_plugins package, libtpu) is installed."""
  platforms = jax.config.jax_platforms or os.environ.get("JAX_PLATFORMS", "")
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  if importlib.util.find_spec("libtpu") is not None:
    return False
  if list(importlib.metadata.entry_points(group="jax_plugins")):
    return False
  return importlib.util.find_spec("jax_plugins") is None


def prepare_process(config: Config, distributed: bool = False) -> None:
  """The process's set-up for `config`'s study before JAX starts its backends (on a CPU: XLA
  flags and the CPU split into devices); nothing elsewhere."""
  if _expects_cpu():
    from swapjax.cpu import process

    process.prepare_process(config, distributed)


def split_devices(config: Config) -> list | None:
  """The single devices a study's runs are spread over in equal chunks (a split CPU), or None."""
  cpu = _cpu()
  return cpu.split_devices(config) if cpu else None
