"""Where a round's time goes: `python -m benchmarks.profile_round --preset=swap_pool2000`.

Times the parts of one round of a benchmark preset's population (R = its first scaling entry,
the default `patches`/`scan` strategy) each as its own compiled call, side by side in one
process: the training epoch, the evaluation of the pool and of the holdout set, and the whole
round (the rest: gathers, swap, metrics, and what XLA fuses across the parts); then the PyTorch
reference's training and evaluation of the same models (when PyTorch is installed). Synthetic
data of the study's shapes, as the benchmark; median of `--repeats` after a warm-up.
"""

from __future__ import annotations

import importlib.util
import json
import statistics

import jax
import jax.numpy as jnp
import numpy as np
from absl import app

from benchmarks import run as bench
from benchmarks.timing import timed
from swapjax import backend, data, registry, rounds, study, train
from swapjax.config import run_table
from swapjax.layers import config_layers

# benchmarks.run's flags: --preset (the population), --repeats (timed calls per part).
PRESET, REPEATS = bench.PRESET, bench.REPEATS


def _median_s(fn, repeats: int) -> float:
  """Median seconds of `fn()` and its results, after a warm-up call (compiles)."""
  return statistics.median(timed(lambda: jax.block_until_ready(fn()), repeats)[1])


def profile_jax(cfg, ds, repeats: int) -> dict[str, float]:
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  model = backend.kernels(cfg).model(cfg)
  train_epoch = jax.jit(train.make_train_epoch(cfg, model, train.make_optimizer(cfg), built.driver))
  evaluate = jax.jit(
    train.make_evaluate(cfg, backend.kernels(cfg).eval_model(cfg), cfg.eval_population)
  )
  pool, runs = built.pool, built.runs
  slope = runs.numbers["leaky_slope"]
  keys = rounds.member_keys(jax.random.split(jax.random.key(0), len(built.runs_table)), cfg.members)
  holdout_labels = rounds.per_run(pool.holdout_labels_T, len(built.runs_table))
  flag = np.asarray(False)
  parts = {
    "train_epoch": lambda: train_epoch(
      state.params, state.opt_state, pool, state.idx_RxMxN, keys, runs, state.active_R
    ),
    "eval_pool": lambda: evaluate(
      state.params, pool.images_VxPxHxWxC, pool.variant_R, pool.labels_RxP, slope
    ),
    "eval_holdout": lambda: evaluate(
      state.params, pool.holdout_images_VxTxHxWxC, pool.variant_R, holdout_labels, slope
    ),
  }
  out = {name: _median_s(fn, repeats) for name, fn in parts.items()}
  # The round donates its state: each call gets a fresh copy (the copy is timed apart).
  copy = jax.jit(lambda s: jax.tree.map(jnp.copy, s))
  out["state_copy"] = _median_s(lambda: copy(state), repeats)
  out["round"] = _median_s(lambda: built.round_fn(copy(state), pool, runs, flag), repeats)
  out["round"] -= out["state_copy"]
  out["rest"] = out["round"] - out["train_epoch"] - out["eval_pool"] - out["eval_holdout"]
  return out


def profile_torch(cfg, ds, repeats: int) -> dict[str, float] | None:
  if importlib.util.find_spec("torch") is None:
    return None
  import torch

  from benchmarks import torch_reference as ref

  protocol = ref.build_protocol(cfg, ds)
  run = protocol.run
  torch.manual_seed(cfg.seed)
  models = len(run_table(cfg)) * cfg.members
  nets = [
    ref.torch_model(config_layers(cfg), ds.image_shape, run["dropout_rate"], run["leaky_slope"])
    for _ in range(models)
  ]
  opts = [ref.make_optimizer(cfg, n.parameters(), run["learning_rate"]) for n in nets]

  def train_all():
    for net, opt in zip(nets, opts, strict=True):
      protocol.train_epoch(net, opt)

  def eval_all(images, labels):
    for net in nets:
      protocol.evaluate(net, images, labels)

  parts = {
    "train_epoch": train_all,
    "eval_pool": lambda: eval_all(protocol.images, protocol.labels),
  }
  if protocol.holdout is not None:
    parts["eval_holdout"] = lambda: eval_all(*protocol.holdout)
  return {name: _median_s(fn, repeats) for name, fn in parts.items()}


def main(argv):
  del argv
  preset = bench.PRESETS[PRESET.value]
  base = registry.get_config(preset["experiment"])
  base = base.replace(source="synthetic", rounds=1_000_000, **preset["overrides"])
  cfg = bench.population(base, preset["scaling"][0])
  ds = data.synthetic(cfg.dataset, max(cfg.pool_size, 3000), cfg.holdout_size)
  report = {
    "preset": PRESET.value,
    "runs": len(run_table(cfg)),
    "models": len(run_table(cfg)) * cfg.members,
    "jax": jax.__version__,
    "jax_parts_s": profile_jax(cfg, ds, REPEATS.value or 3),
    "torch_parts_s": profile_torch(cfg, ds, REPEATS.value or 3),
  }
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  app.run(main)
