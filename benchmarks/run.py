"""Benchmark timing reports: `python -m benchmarks.run --preset=NAME [--out=DIR]`.

Times whole study rounds on synthetic data of the study's shapes (no dataset needed): compile
time apart from steady state, one warm-up round excluded, `block_until_ready` before every
clock stop, median and spread over repeated rounds. Compares strategies (conv formulation x
step driver) side by side in one process, and the population scaling R = 1, 2, 4, ...
Writes `timing.json` and `benchmark.md` and prints the table.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import jax
from absl import app, flags

from swapjax import data, registry, study
from swapjax.config import validate
from swapjax.models import make_model

PRESETS = {
  # name: (experiment, overrides, strategies, scaling seeds, repeats)
  "tiny": (
    "swap_cifar10",
    dict(pool_size=512, holdout_size=64, num_seeds=1, conditions=("schedule",), warmup=(0,)),
    [("patches", "scan"), ("patches", "host"), ("lax", "host"), ("hybrid", "scan")],
    [1, 2],
    2,
  ),
  "swap_study": (
    "swap_cifar10",
    {},
    [("patches", "scan"), ("lax", "scan"), ("hybrid", "scan")],
    [1, 2, 4, 10],
    3,
  ),
  "memorize_sweep": ("memorize_sweep", {}, [("patches", "scan"), ("lax", "scan")], [1, 2], 3),
}
PEAK_FLOPS = {"cpu": None, "gpu": 67e12, "tpu": None}  # H100/H200 FP32 (non-tensor-core) spec

PRESET = flags.DEFINE_enum("preset", "tiny", list(PRESETS), "Which benchmark.")
OUT = flags.DEFINE_string("out", "benchmarks/results", "Folder for timing.json/benchmark.md.")
REPEATS = flags.DEFINE_integer("repeats", 0, "Timed rounds per case (0: the preset's).")


def forward_flops_per_image(cfg, ds) -> float:
  model = make_model(cfg.model, "lax", cfg.dropout)
  x = jax.numpy.zeros((32, *ds.image_shape))
  params = model.init(jax.random.key(0), x)["params"]
  cost = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, x).compile()
  cost = cost.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost["flops"]) / 32


def _time_rounds(cfg, ds, repeats):
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  result = {
    "conv_impl": built.conv_impl,
    "driver": built.driver,
    "runs": len(built.runs_table),
    "models": len(built.runs_table) * cfg.members,
  }
  args = lambda s: (
    (s, built.pool, built.runs)
    if cfg.study == "swap"
    else (s, built.pool, built.runs, jax.numpy.asarray(False))
  )
  fn = built.round_fn
  if built.driver == "scan":
    t0 = time.perf_counter()
    compiled = built.round_fn.lower(*args(state)).compile()
    result["compile_s"] = time.perf_counter() - t0
    fn = compiled
  # XLA's cost analysis counts a loop body once, so count one forward pass and scale it by the
  # images a round processes (training = 3 forward passes: forward, input and weight gradients).
  steps = -(-cfg.num_train // cfg.batch_size)
  images_fwd = cfg.pool_size + cfg.holdout_size + 3 * steps * cfg.batch_size
  result["flops_per_round"] = forward_flops_per_image(cfg, ds) * images_fwd * result["models"]
  state, m = fn(*args(state))  # warm-up (and compile for the host driver)
  jax.block_until_ready((state, m))
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    state, m = fn(*args(state))
    jax.block_until_ready((state, m))
    times.append(time.perf_counter() - t0)
  result.update(
    round_s_median=statistics.median(times),
    round_s_min=min(times),
    round_s_max=max(times),
    repeats=repeats,
  )
  images = result["models"] * (cfg.num_train + cfg.pool_size + cfg.holdout_size)
  result["images_per_s"] = images / result["round_s_median"]
  result["model_steps_per_s"] = result["models"] * steps / result["round_s_median"]
  if result.get("flops_per_round"):
    result["flops_per_s"] = result["flops_per_round"] / result["round_s_median"]
    peak = PEAK_FLOPS.get(jax.default_backend())
    result["fraction_of_peak"] = result["flops_per_s"] / peak if peak else None
  stats = jax.devices()[0].memory_stats() or {}
  result["peak_memory_bytes"] = stats.get("peak_bytes_in_use")
  return result


def main(argv):
  del argv
  experiment, overrides, strategies, scaling, repeats = PRESETS[PRESET.value]
  repeats = REPEATS.value or repeats
  base = dataclasses.replace(registry.get_config(experiment), source="synthetic", **overrides)
  base = dataclasses.replace(base, rounds=1_000_000)
  validate(base)
  ds = data.synthetic(base.dataset, max(base.pool_size, 3000), base.holdout_size)
  report = {
    "preset": PRESET.value,
    "backend": jax.default_backend(),
    "device": jax.devices()[0].device_kind,
    "jax": jax.__version__,
    "peak_flops_assumed": PEAK_FLOPS.get(jax.default_backend()),
    "strategies": [],
    "scaling": [],
  }
  scaled = dataclasses.replace(base, num_seeds=scaling[0])
  for conv_impl, driver in strategies:
    cfg = dataclasses.replace(scaled, conv_impl=conv_impl, driver=driver)
    row = _time_rounds(cfg, ds, repeats)
    report["strategies"].append(row)
    print(json.dumps(row), flush=True)
  best = min(report["strategies"], key=lambda r: r["round_s_median"] / r["models"])
  one = None
  for seeds in scaling:
    cfg = dataclasses.replace(
      base, num_seeds=seeds, conv_impl=best["conv_impl"], driver=best["driver"]
    )
    row = _time_rounds(cfg, ds, repeats)
    one = one or row
    row["s_per_model"] = row["round_s_median"] / row["models"]
    row["population_efficiency"] = row["round_s_median"] / (
      row["runs"] / one["runs"] * one["round_s_median"]
    )
    report["scaling"].append(row)
    print(json.dumps(row), flush=True)
  out = Path(OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  (out / f"timing_{PRESET.value}.json").write_text(json.dumps(report, indent=2) + "\n")
  lines = [
    f"# Benchmark `{PRESET.value}` on {report['device']} ({report['backend']}), "
    f"jax {report['jax']}",
    "",
    "| conv | driver | runs | models | compile s | s/round (median [min, max]) | "
    "s per model-round | images/s | model-steps/s | GFLOP/s |",
    "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  ]
  for r in report["strategies"]:
    gflops = f"{r['flops_per_s'] / 1e9:.1f}" if r.get("flops_per_s") else "-"
    lines.append(
      f"| {r['conv_impl']} | {r['driver']} | {r['runs']} | {r['models']} | "
      f"{r.get('compile_s', float('nan')):.1f} | {r['round_s_median']:.2f} "
      f"[{r['round_s_min']:.2f}, {r['round_s_max']:.2f}] | "
      f"{r['round_s_median'] / r['models']:.2f} | {r['images_per_s']:.0f} | "
      f"{r['model_steps_per_s']:.1f} | {gflops} |"
    )
  lines += [
    "",
    f"Scaling with {best['conv_impl']}/{best['driver']}: population efficiency = "
    "time(R) / (R x time(1)); below 1 means the population is cheaper than "
    "separate runs.",
    "",
    "| runs | models | s/round | s per model | efficiency |",
    "| ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in report["scaling"]:
    lines.append(
      f"| {r['runs']} | {r['models']} | {r['round_s_median']:.2f} | "
      f"{r['s_per_model']:.2f} | {r['population_efficiency']:.2f} |"
    )
  text = "\n".join(lines) + "\n"
  (out / f"benchmark_{PRESET.value}.md").write_text(text)
  print(text)


if __name__ == "__main__":
  app.run(main)
