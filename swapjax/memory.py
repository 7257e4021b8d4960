"""How many runs fit in one compiled program: a computed memory estimate per run, the device's
budget, and the chunk size that follows (cifar10_arch's networks cost several times the seed
CNN).

The estimate counts, per run, each member's parameters four times (weights, gradients and
Adam's two moments), one training step's activations twice (kept for the backward pass and
their gradients) plus the nine-fold patches of every 3x3 convolution (the `patches` form keeps
them for the backward pass), and one evaluation chunk's activations. XLA's own figure for the
compiled program (`memory_analysis`) goes into timing.json beside it.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp

from swapjax.config import Config
from swapjax.layers import parse_layer
from swapjax.models import config_model, conv3x3_lax

FLOAT_BYTES = 4
BUDGET_FRACTION = 0.5  # of the device's memory: room for XLA's own temporaries and the host


def _shapes(config: Config, input_shape, batch: int):
  """(parameter count, [(layer text, output shape)] for a batch) of the config's network."""
  model = config_model(config, conv3x3_lax)
  x = jax.ShapeDtypeStruct((batch, *input_shape), jnp.float32)

  def init(x):
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    return model.init_with_output(keys, x, train=True, mutable=["params", "intermediates"])

  _, variables = jax.eval_shape(init, x)
  params = sum(math.prod(a.shape) for a in jax.tree.leaves(variables["params"]))
  sown = sorted(variables["intermediates"].items(), key=lambda kv: int(kv[0].split(":")[0]))
  return params, [(name.split(":", 1)[1], tuple(v[0].shape)) for name, v in sown]


def program_bytes(config: Config, input_shape, target_shape=()) -> tuple[int, int]:
  """(bytes per run, bytes per program): estimated device memory of training one run of
  `config` (all its members, its targets and bookkeeping), and of the evaluation every program
  does one model at a time. `target_shape`: one sample's target (() for a class label)."""
  optim = config.optim
  batch = min(optim.batch_size, max(1, config.num_train)) // max(1, optim.micro_batches)
  params, outputs = _shapes(config, input_shape, batch)
  activations = sum(math.prod(shape) for _, shape in outputs)
  patches, previous = 0, (batch, *input_shape)
  for text, shape in outputs:
    if parse_layer(text)[0] == "conv":  # (B, H', W', 9 C_in) kept for the backward pass
      patches += math.prod(shape[:-1]) * 9 * previous[-1]
    previous = shape
  per_run = config.members * (4 * params + 2 * activations + patches)
  # The run's own data and bookkeeping: its targets for the pool (labels or float targets),
  # membership ids, the samples each member has seen, move counts, and the evaluation's
  # per-sample losses and hits of every member on the pool.
  pool = config.train_pool
  per_run += math.prod(target_shape) * pool + config.members * (config.half_size + pool // 4)
  per_run += pool + 2 * config.members * pool
  # Forward only, one model at a time: at most a layer's input and output are live.
  eval_chunk = config.engine.eval_batch_size or 500
  _, single = _shapes(config, input_shape, 1)
  sizes = [math.prod(input_shape)] + [math.prod(shape) for _, shape in single]
  per_program = eval_chunk * max(a + b for a, b in zip(sizes, sizes[1:], strict=False))
  return FLOAT_BYTES * per_run, FLOAT_BYTES * per_program


# The floating-point work of one call's training step at which an accelerator is kept busy:
# smaller calls leave it waiting on kernel launches, larger ones gain little and spread over
# fewer devices. The CPU has no cap: XLA:CPU spreads each operation over the cores, and a
# CPU device split in several shares the same cores.
CALL_FLOPS = {"gpu": 2e11, "tpu": 2e11}


def step_flops(config: Config, input_shape) -> float:
  """The training FLOPs of one step of one run (all its members): the forward pass's
  multiply-adds of convolutions, dense and recurrent layers, twice for the backward pass."""
  batch = min(config.optim.batch_size, max(1, config.num_train))
  _, outputs = _shapes(config, input_shape, 1)
  macs, previous = 0, tuple(input_shape)
  for text, shape in outputs:
    kind, fan_in = parse_layer(text)[0], previous[-1]
    if kind == "conv":  # every output of a 3x3 convolution reads 9 x C_in inputs
      macs += math.prod(shape[1:]) * 9 * fan_in
    elif kind == "dense":
      macs += math.prod(shape[1:]) * fan_in
    elif kind == "rnn":  # per step: input and previous state into the units
      macs += math.prod(shape[1:]) * (fan_in + shape[-1])
    previous = shape[1:]
  return 2.0 * 3.0 * macs * batch * config.members


def device_budget(device=None) -> int:
  """Bytes a program may use on `device`: a fraction of its memory (an accelerator's
  `bytes_limit`, or the host's physical memory for the CPU)."""
  device = device or jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    total = stats["bytes_limit"]
  else:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  return int(BUDGET_FRACTION * total)


def runs_per_chunk(num_runs: int, per_run: int, per_program: int, budget: int) -> int:
  """The largest divisor of `num_runs` whose runs fit `budget` beside the program's own
  memory (equal chunks: every call runs the same compiled program); at least 1."""
  return largest_divisor(num_runs, (budget - per_program) // max(per_run, 1))


def largest_divisor(n: int, limit: int) -> int:
  """The largest divisor of `n` not above `limit`; at least 1 (equal chunks of runs)."""
  return max(d for d in range(1, n + 1) if n % d == 0 and d <= max(1, limit))


def micro_batches_to_fit(config: Config, input_shape, budget: int, target_shape=()) -> int:
  """The fewest slices of a training batch (a divisor of it) with which one run of `config`
  fits `budget`; 0 if even one sample at a time does not."""
  batch = min(config.optim.batch_size, max(1, config.num_train))
  for k in (d for d in range(1, batch + 1) if batch % d == 0):
    sliced = config.replace(micro_batches=k)
    per_run, per_program = program_bytes(sliced, input_shape, target_shape)
    if per_run + per_program <= budget:
      return k
  return 0
