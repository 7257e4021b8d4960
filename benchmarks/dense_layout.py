"""The Dense kernel gradient's layout: `python -m benchmarks.dense_layout --experiment=mnist_mlp`
(`--set key=value` for another population, e.g. `--set pool_size=60000`; `--repeats=K`).

Times an experiment's compiled training epoch (synthetic data of its shapes, or its own
generated or bundled data; its first program's population) with three forms of every Dense
layer's product, alternating in one process:
- `kernel_layout`: `models.dense_matmul` (what the models use): the kernel gradient computed as
  x^T dy, in the kernel's own (in, out) layout;
- `jax_transpose`: plain `lax.dot_general`, whose transpose rule computes dy^T x and transposes
  it (under vmap, with one model, XLA:CPU fuses that transpose into each optimiser update);
- `transpose_once`: dy^T x transposed once behind an optimisation barrier (bitwise the same as
  `jax_transpose`).
Prints the seconds per epoch (median [min, max]) and whether each form's new parameters are
bitwise equal to `jax_transpose`'s.
"""

from __future__ import annotations

import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from jax import lax

from benchmarks import run as bench
from swapjax import backend, data, models, registry, rounds, study, train
from swapjax import flags as swapjax_flags
from swapjax.config import ConfigError, apply_overrides
from swapjax.cpu import process as cpu_process

# swapjax.main's --experiment and --set, benchmarks.run's --repeats (0: 8 here).
EXPERIMENT, SET, REPEATS = swapjax_flags.EXPERIMENT, swapjax_flags.SET, bench.REPEATS


@jax.custom_vjp
def _transpose_once(x, kernel):
  return models.dense_matmul(x, kernel)


def _transpose_once_bwd(residuals, dy):
  """`models.dense_matmul`'s input gradient; the kernel gradient as JAX computes it (dy^T x),
  transposed once."""
  x, _ = residuals
  dx, _ = models._dense_bwd(residuals, dy)
  leading = tuple(range(x.ndim - 1))
  d_kernel_t = lax.dot_general(dy, x, ((leading, leading), ((), ())))
  return dx, lax.optimization_barrier(jnp.swapaxes(d_kernel_t, -1, -2))


_transpose_once.defvjp(models._dense_fwd, _transpose_once_bwd)

FORMS = {
  "kernel_layout": models._dense_dot_general,
  "jax_transpose": lambda x, k, dims, precision=None: lax.dot_general(
    x, k, dims, precision=precision
  ),
  "transpose_once": lambda x, k, dims, precision=None: _transpose_once(x, k),
}


def main(argv):
  del argv
  if EXPERIMENT.value is None:
    raise app.UsageError(
      "--experiment=NAME: whose training epoch (see python -m swapjax.main --list)"
    )
  try:
    cfg = apply_overrides(registry.get_config(EXPERIMENT.value), SET.value)
  except ConfigError as e:
    raise app.UsageError(str(e)) from None
  cfg = cfg.replace(source="synthetic")
  cpu_process.set_xla_flags(cpu_process.study_xla_flags(cfg))  # before JAX starts, as the engine
  if cfg.dataset in data.SHAPES:
    ds = data.synthetic(cfg.dataset, max(cfg.pool_size, 3000), cfg.holdout_size)
  else:  # a generated or bundled data set (no download): the study's own
    ds = study.load_data(cfg, None, None)
  built = study.build_programs(cfg, ds)[0]
  state = built.init_state(built.runs)
  keys = rounds.member_keys(jax.random.split(jax.random.key(0), len(built.runs_table)), cfg.members)
  args = (
    state.params,
    state.opt_state,
    built.pool,
    state.idx_RxMxN,
    keys,
    built.runs,
    state.active_R,
  )
  compiled = {}
  for name, dot_general in FORMS.items():
    models._dense_dot_general = dot_general  # read when the network is traced
    try:
      model = backend.kernels(cfg).model(cfg)
      epoch = train.make_train_epoch(cfg, model, train.make_optimizer(cfg), built.driver)
      compiled[name] = jax.jit(epoch).lower(*args).compile()
    finally:
      models._dense_dot_general = FORMS["kernel_layout"]
  params = {name: jax.block_until_ready(fn(*args))[0] for name, fn in compiled.items()}
  times = {name: [] for name in compiled}
  for _ in range(REPEATS.value or 8):
    for name, fn in compiled.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[name].append(time.perf_counter() - t0)
  same = lambda a, b: all(map(np.array_equal, jax.tree.leaves(a), jax.tree.leaves(b)))
  report = {
    "experiment": EXPERIMENT.value,
    "overrides": SET.value,
    "runs": len(built.runs_table),
    "pool_size": cfg.pool_size,
    "conv_impl": built.conv_impl,
    "jax": jax.__version__,
    "epoch_s": {
      name: {"median": statistics.median(t), "min": min(t), "max": max(t)}
      for name, t in times.items()
    },
    "bitwise_equal_to_jax_transpose": {
      name: same(p, params["jax_transpose"]) for name, p in params.items()
    },
  }
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  app.run(main)
