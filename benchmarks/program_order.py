"""Programs one after another or interleaved per round: `python -m benchmarks.program_order`.

A study of several compiled programs (fashion_dropout's two training fractions, shrunk to
synthetic data) runs K rounds of each program either `sequential` (all rounds of program 0,
then all of program 1) or `interleaved` (round r of every program before round r + 1, what the
runner does: every program's call is dispatched before any result is awaited). Both orders
alternate in repeated trials in one process; prints the seconds per round of each.
"""

from __future__ import annotations

import json
import statistics
import time

import jax
import numpy as np
from absl import app, flags

from swapjax import registry, study

ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds of every program per trial.")
TRIALS = flags.DEFINE_integer("trials", 3, "Trials of each order (alternating).")
POOL = flags.DEFINE_integer("pool_size", 2000, "Training images of the larger program.")


def _programs():
  cfg = registry.get_config("fashion_dropout")
  cfg = cfg.replace(
    source="synthetic",
    pool_size=POOL.value,
    test_from_train=500,
    holdout_size=500,
    num_seeds=1,
    train_fraction=(0.2, 1.0),
    dropout_rate=(0.0, 0.5),
  )
  ds = study.load_data(cfg, None, None)
  programs = study.build_programs(cfg, ds)
  compiled = []
  for built in programs:
    state = built.init_state(built.runs)
    fn = built.round_fn.lower(state, built.pool, built.runs, np.asarray(False)).compile()
    compiled.append((built, fn))
  return compiled


def _trial(compiled, order: str, rounds: int) -> float:
  states = [built.init_state(built.runs) for built, _ in compiled]
  jax.block_until_ready(states)
  step = lambda i: compiled[i][1](states[i], compiled[i][0].pool, compiled[i][0].runs, False)
  t0 = time.perf_counter()
  if order == "sequential":
    for i in range(len(compiled)):
      for _ in range(rounds):
        states[i], metrics = step(i)
        jax.device_get(metrics)
  else:
    for _ in range(rounds):
      results = []
      for i in range(len(compiled)):
        states[i], metrics = step(i)
        results.append(metrics)
      jax.device_get(results)
  return (time.perf_counter() - t0) / rounds


def main(argv):
  del argv
  compiled = _programs()
  _trial(compiled, "interleaved", 1)  # warm-up
  times = {"sequential": [], "interleaved": []}
  for _ in range(TRIALS.value):
    for order in times:
      times[order].append(_trial(compiled, order, ROUNDS.value))
  result = {
    order: {"s_per_round_median": statistics.median(t), "trials": t} for order, t in times.items()
  }
  result["devices"] = jax.device_count()
  result["backend"] = jax.default_backend()
  result["programs"] = [sorted(set(built.groups)) for built, _ in compiled]
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
