"""What the CPU backend hands the engine: its kernels, their defaults and checks.

swapjax.backend (the door) calls these on a CPU only; nothing else in the engine imports this
package. Defaults are measured (benchmarks/README.md): oneDNN's convolutions where they load,
the C++ time loop where it builds, and the whole SGD epoch in C++ for wide recurrent layers.
"""

from __future__ import annotations

from swapjax.config import ConfigError, variant_configs
from swapjax.cpu import onednn, process, rnn_kernel
from swapjax.layers import config_layers, parse_layer

# `auto` trains fused from this width up: per epoch of binary_addition's 100 seeds on the split
# CPU, 128 units trains faster fused than step by step and 16 units no faster (the study's
# evaluations and starts dominate there); benchmarks/README.md has the numbers.
FUSED_AUTO_MIN_UNITS = 64

prepare_process = process.prepare_process
split_devices = process.split_devices


def conv_functions() -> dict:
  """The convolutions this backend adds to the JAX ones (swapjax.models.CONV_FUNCTIONS)."""
  return {"onednn": onednn.conv3x3}


def conv_unavailable_reason(name: str) -> str:
  return onednn.unavailable_reason() if name == "onednn" else ""


def default_conv_impl(compute_dtype: str) -> str:
  return "onednn" if compute_dtype == "float32" and onednn.available() else "patches"


def default_rnn_impl(compute_dtype: str) -> str:
  return "native" if compute_dtype == "float32" and rnn_kernel.available() else "scan"


def recurrence():
  """The C++ time loop (`rnn_impl=native`), a drop-in for models.recurrence."""
  return rnn_kernel.recurrence


def rnn_unavailable_reason() -> str:
  return rnn_kernel.unavailable_reason()


def fused_epoch(config) -> bool:
  """Whether `config` trains with the C++ SGD epoch: `rnn_impl=fused`, or `auto` where the
  C++ time loop is the default here, the network is one it trains and its recurrent layer has
  at least FUSED_AUTO_MIN_UNITS units."""
  if config.backend.rnn_impl == "fused":
    return True
  layers = config_layers(config)
  if (
    config.backend.rnn_impl != "auto"
    or config.model.rnn_unroll
    or not any(t.startswith("rnn:") for t in layers)
  ):
    return False
  native = default_rnn_impl(config.engine.compute_dtype) == "native"
  if not native or rnn_kernel.fused_epoch_reason(config):
    return False
  return int(parse_layer(layers[0])[1][0]) >= FUSED_AUTO_MIN_UNITS


def train_epoch(config):
  """The whole-epoch implementation for `train.make_train_epoch`, or None."""
  return rnn_kernel.make_fused_train_epoch(config) if fused_epoch(config) else None


def check(config) -> None:
  """Kernels asked for by name must load here, and the fused epoch must fit every group."""
  for key in ("conv_impl", "eval_conv_impl"):
    if getattr(config, key) == "onednn" and (reason := onednn.unavailable_reason()):
      raise ConfigError(f"{key}=onednn: {reason}")
  if config.backend.rnn_impl in ("native", "fused") and (reason := rnn_kernel.unavailable_reason()):
    raise ConfigError(f"rnn_impl={config.backend.rnn_impl}: {reason}")
  if config.backend.rnn_impl == "fused":
    for variant in variant_configs(config) if config.study.variants else [config]:
      if reason := rnn_kernel.fused_epoch_reason(variant):
        where = f" (group {variant.variant})" if variant.variant else ""
        raise ConfigError(f"rnn_impl=fused{where}: {reason}")


def init_compiler_options() -> dict:
  """XLA:CPU spends seconds optimising the initialisers' random-number code, which runs once:
  compile it without LLVM optimisation (a fraction of the time for the CIFAR CNN pair). Integer
  hashing and exact float ops, so the parameters are the same (tests/test_round.py)."""
  return {"xla_backend_optimization_level": 0}
