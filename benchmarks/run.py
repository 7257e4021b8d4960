"""Benchmark timing reports: `python -m benchmarks.run --preset=NAME [--out=DIR]`.

Times whole study rounds on synthetic data of the study's shapes (no dataset needed): compile
time apart from steady state, one warm-up round excluded, `block_until_ready` before every
clock stop, median and spread over repeated rounds. Compares strategies (conv formulation,
step driver, config options), the sequential baseline and the PyTorch reference
(`torch/sequential`, benchmarks/torch_reference.py) side by side in one process, then the
population scaling R = 1, 2, 4, ... and the experiment's own study.
Writes `timing.json` and `benchmark.md` and prints the table.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import json
import resource
import statistics
import time

import jax
from absl import app, flags

from benchmarks import host_overhead
from benchmarks.timing import tests_every_round, timed, write_report
from swapjax import backend, data, registry, study, train
from swapjax.config import ConfigError, apply_overrides, run_table, validate, variant_configs
from swapjax.cpu import onednn
from swapjax.cpu import process as cpu_process
from swapjax.layers import config_layers
from swapjax.models import SpecNet, conv3x3_lax
from swapjax.programs import compile_programs, xla_peak_bytes

SEQUENTIAL = "lax/sequential"  # the baseline: one model at a time (see _time_sequential)
# The PyTorch reference: the same loop in eager PyTorch (benchmarks/torch_reference.py, needs
# the `bench` extra). Like SEQUENTIAL, a baseline, never the "best population strategy".
TORCH = "torch/sequential"
BASELINES = (SEQUENTIAL, TORCH)

# experiment, config overrides, strategies ("conv/driver[/key=value+key=value]", extra config
# overrides after the second slash) compared at R = scaling[0], the runs
# R of the scaling table, timed rounds per case, and whether to time the experiment's own study.
PRESETS = {
  "tiny": dict(
    experiment="swap_cifar10",
    overrides=dict(pool_size=256, holdout_size=64),
    strategies=["onednn/scan", SEQUENTIAL, TORCH],
    scaling=[1, 2],
    repeats=2,
    full_study=False,
  ),
  # Issue 15's target: the swap study at pool 2,000, condition `schedule`, 2 seeds (R = 2 runs
  # = 4 models), against the JAX loop and the PyTorch loop doing the same models.
  "swap_pool2000": dict(
    experiment="swap_cifar10",
    overrides=dict(pool_size=2000),
    strategies=["onednn/scan", "patches/scan", "patches/scan/cpu_devices=2", SEQUENTIAL, TORCH],
    scaling=[2],
    repeats=3,
    full_study=False,
  ),
  # The same at the study's full pool (10,000 CIFAR-10 images: 5,000 per member), per
  # model-round against the PyTorch loop.
  "swap_pool10000": dict(
    experiment="swap_cifar10",
    overrides=dict(pool_size=10_000),
    strategies=["onednn/scan", "patches/scan", TORCH],
    scaling=[2],
    repeats=2,
    full_study=False,
  ),
  # The README's main job: one CNN memorising 3,000 MNIST images with random labels.
  "memorize_mnist": dict(
    experiment="memorize_mnist",
    overrides={},
    strategies=["onednn/scan", "patches/scan", SEQUENTIAL, TORCH],
    scaling=[1],
    repeats=5,
    full_study=False,
  ),
  "swap_study": dict(
    experiment="swap_cifar10",
    overrides={},
    strategies=[
      "onednn/scan",
      "patches/scan",
      "patches/scan/compute_dtype=bfloat16",
      "lax/scan",
      "lax/scan/compute_dtype=bfloat16",
      "hybrid/scan",
      "patches/host",
      "patches/scan/eval_batch_size=250",
      "patches/scan/eval_population=vmap",
      SEQUENTIAL,
    ],
    scaling=[1, 2, 4, 10, 20, 30, 60],
    repeats=3,
    full_study=True,
  ),
  # Report 003's 20% program (9,000 training images per epoch; dropout rates 0 and 0.5 are
  # numbers on the run axis, so R=2 is the study's program at one seed). Synthetic images.
  "fashion_dropout": dict(
    experiment="fashion_dropout",
    overrides=dict(train_fraction=(0.2,), dropout_rate=(0.0, 0.5)),
    strategies=["onednn/scan", "patches/scan", SEQUENTIAL],
    scaling=[2],
    repeats=2,
    full_study=False,
  ),
  # seeds/001's groups, one program each at one seed on 1,800 synthetic training images per
  # epoch (time per epoch scales with the images: see images/s), with XLA's memory figure.
  "cifar10_arch": dict(
    experiment="cifar10_arch",
    overrides=dict(pool_size=2000, holdout_size=500),
    strategies=[],
    scaling=[1],
    repeats=1,
    full_study=False,
    groups=True,
  ),
  # seeds/002's binary-addition study: each group at its 100 seeds (one epoch = 5,000 steps of
  # batch 2), the `base` network's population scaling, and a one-model-at-a-time baseline.
  "binary_addition": dict(
    experiment="binary_addition",
    overrides={},
    strategies=["patches/scan", SEQUENTIAL],
    scaling=[1, 10, 100, 1000],
    repeats=1,
    full_study=False,
    groups=True,
    group_runs=100,
  ),
  "memorize_sweep": dict(
    experiment="memorize_sweep",
    overrides={},
    strategies=["patches/scan", "lax/scan", SEQUENTIAL],
    scaling=[1, 2],
    repeats=3,
    full_study=True,
  ),
}
# Peak FLOP/s assumed per backend: H100/H200 FP32 without tensor cores (spec sheet). On CPU the
# best of a few 2048 x 2048 float32 matmuls on this machine (measured at start).
PEAK_FLOPS = {"gpu": 67e12}


def population(base, runs: int):
  """The study's shapes with `runs` runs of one condition (the scaling table's R)."""
  return base.replace(
    conditions=base.conditions[-1:],
    warmup=base.warmup[:1],
    label_corruption=base.label_corruption[-1:],
    input_corruption=base.input_corruption[:1],
    learning_rate=base.learning_rate[:1],
    train_fraction=base.train_fraction[-1:],
    dropout_rate=base.dropout_rate[-1:],
    num_seeds=runs,
  )


def with_strategy(cfg, strategy: str):
  """`conv/driver[/key=value+key=value]` applied to a config (typed like `--set`)."""
  parts = strategy.split("/")
  if len(parts) not in (2, 3) or not all(parts):
    raise ConfigError(f"strategy {strategy!r}: expected conv/driver[/key=value+key=value]")
  overrides = [f"conv_impl={parts[0]}", f"driver={parts[1]}"]
  overrides += parts[2].split("+") if len(parts) == 3 else []
  return apply_overrides(cfg, overrides)


@functools.cache
def peak_flops() -> float | None:
  backend = jax.default_backend()
  if backend != "cpu":
    return PEAK_FLOPS.get(backend)
  a = jax.numpy.ones((2048, 2048))
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(5):
    t0 = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * 2048**3 / best


PRESET = flags.DEFINE_enum(
  "preset", "tiny", [*PRESETS, "host_overhead"], "Which benchmark (host_overhead: the study loop)."
)
OUT = flags.DEFINE_string("out", "benchmarks/results", "Folder for timing.json/benchmark.md.")
REPEATS = flags.DEFINE_integer("repeats", 0, "Timed rounds per case (0: the preset's).")
STRATEGIES = flags.DEFINE_list(
  "strategies",
  None,
  "Override the preset's strategies: conv/driver[/key=value+key=value],... "
  "(lax/sequential = the baseline; torch/sequential = the PyTorch reference).",
)
SCALING = flags.DEFINE_list("scaling", None, "Override the preset's scaling table: runs R,...")
CASES = flags.DEFINE_list(
  "cases", None, f"host_overhead: the cases to run (default all: {','.join(host_overhead.CASES)})."
)
HOST_ROUNDS = flags.DEFINE_integer(
  "host_rounds", 20, "host_overhead: rounds of each case's loops (timed: the 2nd to the last)."
)
FULL_STUDY = flags.DEFINE_bool("full_study", None, "Time the experiment's own study too.")
GROUP_COMPARE = flags.DEFINE_multi_string(
  "group_compare",
  [],
  "A config override KEY=VALUE: each group is timed with it too, right after the group's own "
  "timing (repeatable).",
)
GROUP_BASELINES = flags.DEFINE_bool(
  "group_baselines",
  True,
  "Time each group also on one device (split CPU) and with the lax.scan (RNN groups).",
)


@functools.cache
def forward_flops_per_image(layers: tuple[str, ...], image_shape) -> float:
  """XLA's FLOP count of one forward pass, per image."""
  model = SpecNet(layers, conv3x3_lax, rnn_unroll=True)  # cost analysis counts a loop body once
  x = jax.ShapeDtypeStruct((32, *image_shape), jax.numpy.float32)
  params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x)["params"], x)
  cost = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, x).compile()
  cost = cost.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost["flops"]) / 32


def _time_rounds(base, strategy: str, ds, repeats):
  cfg = with_strategy(base, strategy)
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  result = {
    "strategy": strategy,
    "conv_impl": built.conv_impl,
    "driver": built.driver,
    "runs": len(built.runs_table),
    "models": len(built.runs_table) * cfg.members,
  }
  test_due = jax.numpy.asarray(tests_every_round(cfg))
  args = lambda s: (s, built.pool, built.runs, test_due)
  fn = built.round_fn
  if built.driver == "scan":
    t0 = time.perf_counter()
    compiled = built.round_fn.lower(*args(state)).compile()
    result["compile_s"] = time.perf_counter() - t0
    result["xla_peak_bytes"] = xla_peak_bytes(compiled)
    fn = compiled

  def one_round():
    nonlocal state
    state, metrics = fn(*args(state))
    jax.block_until_ready((state, metrics))

  _, times = timed(one_round, repeats)  # the warm-up compiles for the host driver
  return _summarise(result, cfg, ds, times)


def _summarise(result, cfg, ds, times):
  """Median/spread of the timed rounds, throughput, FLOP/s and peak memory."""
  # XLA's cost analysis counts a loop body once, so count one forward pass and scale it by the
  # images a round processes (training = 3 forward passes: forward, input and weight gradients).
  batch = min(cfg.batch_size, cfg.num_train)
  steps = -(-cfg.num_train // batch)
  holdout = cfg.holdout_size if tests_every_round(cfg) else 0  # else every few rounds
  images_fwd = cfg.train_pool + holdout + 3 * steps * batch
  layers = config_layers(cfg.replace(dropout=False))
  result["flops_per_round"] = (
    forward_flops_per_image(layers, ds.image_shape) * images_fwd * result["models"]
  )
  result.update(
    round_s_median=statistics.median(times),
    round_s_min=min(times),
    round_s_max=max(times),
    repeats=len(times),
  )
  images = result["models"] * (cfg.num_train + cfg.train_pool + holdout)
  result["images_per_s"] = images / result["round_s_median"]
  result["model_steps_per_s"] = result["models"] * steps / result["round_s_median"]
  result["flops_per_s"] = result["flops_per_round"] / result["round_s_median"]
  peak = peak_flops()
  result["fraction_of_peak"] = result["flops_per_s"] / peak if peak else None
  stats = jax.devices()[0].memory_stats() or {}
  result["peak_memory_bytes"] = stats.get("peak_bytes_in_use")
  # CPU reports no device memory: the process's peak resident set so far (includes everything
  # timed before in this process, so an upper bound for the case).
  result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return result


def _time_sequential(cfg, ds, repeats):
  """The honest baseline, a Keras-style loop: one model at a time, a host loop over a jitted
  single-model training step (plain `lax` convolutions, no population axis), then a jitted
  single-model evaluation of the pool and the holdout set. Times a round of every model."""
  model = dataclasses.replace(backend.kernels(cfg), conv=conv3x3_lax).model(cfg)
  optimizer = train.make_optimizer(cfg)
  # A population of one run and one member: vmap over size-1 axes is the plain convolution.
  one = cfg.replace(num_seeds=1, conditions=cfg.conditions[:1], warmup=(0,))
  pool = study.build_pool(one, ds, run_table(one)[:1])
  train_epoch = train.make_train_epoch(one, model, optimizer, "host")
  evaluate = jax.jit(train.make_evaluate(one, model, "vmap"))
  models = len(run_table(cfg)) * cfg.members
  init = jax.jit(
    lambda k: train.init_members(model, optimizer, k, 1, ds.image_shape),
    compiler_options=backend.init_compiler_options(),
  )
  keys = jax.random.split(jax.random.key(0), models)
  params, opt_state = zip(*(init(k) for k in keys), strict=True)
  params = [jax.tree.map(lambda a: a[None], p) for p in params]
  opt_state = [jax.tree.map(lambda a: a[None], o) for o in opt_state]
  idx = jax.numpy.arange(cfg.half_size, dtype=jax.numpy.int32)[None, None]
  runs, active = study.build_runs(one, run_table(one)[:1]), jax.numpy.ones((1,), bool)

  def one_round():
    for i in range(models):
      key = jax.random.fold_in(jax.random.key(1), i)[None, None]
      params[i], opt_state[i], loss, _ = train_epoch(
        params[i], opt_state[i], pool, idx, key, runs, active
      )
      slope = runs.numbers["leaky_slope"]
      images, labels = pool.images_VxPxHxWxC, pool.labels_RxP
      out = [loss, evaluate(params[i], images, pool.variant_R, labels, slope)]
      if tests_every_round(cfg):
        holdout = pool.holdout_images_VxTxHxWxC, pool.holdout_labels_T[None]
        out.append(evaluate(params[i], holdout[0], pool.variant_R, holdout[1], slope))
      jax.block_until_ready(out)

  first, times = timed(one_round, repeats)  # the warm-up compiles the step and the evaluation
  result = {
    "strategy": SEQUENTIAL,
    "conv_impl": "lax",
    "driver": "sequential",
    "runs": len(run_table(cfg)),
    "models": models,
    "first_round_s": first,
  }
  return _summarise(result, cfg, ds, times)


def _without_onednn(strategies: list[str]) -> list[str]:
  """A preset's strategies where oneDNN does not load: `onednn/...` timed as `patches/...`."""
  out = []
  for x in strategies:
    y = "patches/" + x.split("/", 1)[1] if x.startswith("onednn/") else x
    if y != x:
      print(f"benchmarks: {x} timed as {y}: {onednn.unavailable_reason()}")
    if y not in out:
      out.append(y)
  return out


def _torch_available() -> bool:
  return importlib.util.find_spec("torch") is not None


def main(argv):
  del argv
  if PRESET.value == "host_overhead":  # the real study loop: benchmarks/host_overhead.py
    repeats = REPEATS.value or 2
    cases = CASES.value or list(host_overhead.CASES)
    if unknown := sorted(set(cases) - set(host_overhead.CASES)):
      raise app.UsageError(
        f"--cases: unknown {', '.join(unknown)}; known: {', '.join(host_overhead.CASES)}"
      )
    # The main job's XLA:CPU flags, before JAX starts its backend, as the command line sets them.
    cpu_process.set_xla_flags(cpu_process.study_xla_flags(registry.get_config("memorize_mnist")))
    report = host_overhead.report(cases, HOST_ROUNDS.value, repeats)
    return write_report(
      OUT.value, "timing_host_overhead", "benchmark_host_overhead", report, host_overhead.render
    )
  preset = dict(PRESETS[PRESET.value])
  repeats = REPEATS.value or preset["repeats"]
  try:
    if STRATEGIES.value:
      preset["strategies"] = list(STRATEGIES.value)
    if SCALING.value:
      preset["scaling"] = [int(r) for r in SCALING.value]
  except ValueError:
    raise app.UsageError("--scaling=1,2,... takes integers") from None
  if FULL_STUDY.value is not None:
    preset["full_study"] = FULL_STUDY.value
  base = registry.get_config(preset["experiment"])
  base = base.replace(source="synthetic", rounds=1_000_000, **preset["overrides"])
  cpu_process.set_xla_flags(cpu_process.study_xla_flags(base))  # before JAX starts, as the engine
  if not STRATEGIES.value and onednn.unavailable_reason():
    preset["strategies"] = _without_onednn(preset["strategies"])
  try:
    validate(base)
    for strategy in preset["strategies"]:
      if strategy not in BASELINES:
        validate(with_strategy(base, strategy))
  except ConfigError as e:
    raise app.UsageError(str(e)) from None
  if TORCH in preset["strategies"] and not _torch_available():
    if STRATEGIES.value:  # asked for by name
      raise app.UsageError(f"{TORCH} needs PyTorch: pip install -e '.[bench]'")
    preset["strategies"] = [s for s in preset["strategies"] if s != TORCH]
    print(f"benchmarks: {TORCH} left out: PyTorch is not installed (pip install -e '.[bench]')")
  if preset["strategies"] and set(preset["strategies"]) <= set(BASELINES):
    raise app.UsageError("--strategies: name at least one population strategy besides baselines")
  # The CPU split (`cpu_devices`: the experiment's, or a strategy's) before JAX starts; the
  # strategies without it, the scaling and the baselines run on the first device; groups are
  # timed both ways (see _time_groups).
  splits = [with_strategy(base, x).cpu_devices for x in preset["strategies"] if x not in BASELINES]
  cpu_process.split_cpu(next((n for n in [base.cpu_devices, *splits] if n != 1), 1))
  if base.dataset in data.SHAPES:
    ds = data.synthetic(base.dataset, max(base.pool_size, 3000), base.holdout_size)
  else:  # a generated data set (no download): the study's own
    ds = study.load_data(base, None, None)
  report = {
    "preset": PRESET.value,
    "backend": jax.default_backend(),
    "device": jax.devices()[0].device_kind,
    "devices": jax.device_count(),
    "jax": jax.__version__,
    "jaxlib": importlib.metadata.version("jaxlib"),
    "peak_flops_assumed": peak_flops(),
    "strategies": [],
    "scaling": [],
  }
  if preset.get("groups"):
    rounds = registry.get_config(preset["experiment"]).rounds  # base's are unbounded
    runs = preset.get("group_runs", 1)
    try:
      for override in GROUP_COMPARE.value:
        validate(apply_overrides(base, [override]))
    except ConfigError as e:
      raise app.UsageError(f"--group_compare: {e}") from None
    _time_groups(
      report, base, ds, repeats, runs, rounds, GROUP_COMPARE.value, GROUP_BASELINES.value
    )
    if not preset["strategies"]:
      return _write(report)
    base = variant_configs(base)[0]  # strategies and scaling: the first group
  first = population(base, preset["scaling"][0])
  for strategy in preset["strategies"]:
    if strategy == SEQUENTIAL:
      row = _time_sequential(first, ds, repeats)
    elif strategy == TORCH:
      from benchmarks import torch_reference  # torch is an optional extra

      row = torch_reference.time_torch(first, ds, repeats, _summarise)
    elif devices := backend.split_devices(with_strategy(first, strategy)):
      row = _time_split(first, strategy, ds, repeats, devices)
    else:
      row = _time_rounds(first, strategy, ds, repeats)
    report["strategies"].append(row)
    print(json.dumps(row), flush=True)
  population_rows = [r for r in report["strategies"] if r["strategy"] not in BASELINES]
  best = min(population_rows, key=lambda r: r["round_s_median"] / r["models"])
  report["best"] = best["strategy"]
  per_model = lambda r: r["round_s_median"] / r["models"]
  for name, key in [(SEQUENTIAL, "sequential"), (TORCH, "torch")]:
    rows = [r for r in report["strategies"] if r["strategy"] == name]
    if rows:
      report[f"speedup_per_model_vs_{key}"] = per_model(rows[0]) / per_model(best)
  one = None
  for runs in preset["scaling"]:
    if runs == preset["scaling"][0]:  # the strategy table already timed this population
      row = dict(best)
    else:
      row = _time_rounds(population(base, runs), best["strategy"], ds, repeats)
    one = one or row
    row["s_per_model"] = row["round_s_median"] / row["models"]
    row["population_efficiency"] = row["round_s_median"] / (
      row["runs"] / one["runs"] * one["round_s_median"]
    )
    report["scaling"].append(row)
    print(json.dumps(row), flush=True)
  if preset["full_study"]:  # the experiment's own study (all its runs), with the best strategy
    row = _time_rounds(base, best["strategy"], ds, repeats)
    row["rounds"] = registry.get_config(preset["experiment"]).rounds
    row["study_steady_s"] = row["round_s_median"] * row["rounds"]
    report["study"] = row
    print(json.dumps(row), flush=True)
  _write(report)


def _time_group(base, group: str, runs: int, ds, repeats, devices, overrides=()) -> float:
  """A group's median s/round as the runner runs it (equal chunks on the single `devices` of a
  split CPU, else one call), with config `overrides`."""
  cfg = apply_overrides(base, [f"groups={group}", *overrides])
  if devices:
    return _time_chunks(cfg, runs, ds, repeats, devices)["round_s_median"]
  cfg = population(variant_configs(cfg)[0], runs)
  return _time_rounds(cfg, f"{cfg.conv_impl}/{cfg.driver}", ds, repeats)["round_s_median"]


def _time_groups(
  report, base, ds, repeats, runs: int, rounds: int, compare=(), baselines: bool = True
):
  """Each group (variant) of the experiment as its own program at `runs` seeds; the whole
  study's steady time at the experiment's `rounds`. With the CPU split into several devices
  (`cpu_devices`), each group is timed both ways side by side: as the runner runs it (equal
  chunks on the single devices at once) and as one call on one device (`baselines`). Each
  override KEY=VALUE of `compare` times the group again with it, right after."""
  report["groups"] = []
  devices = backend.split_devices(base)
  for variant in variant_configs(base):
    cfg = population(variant, runs)
    group = apply_overrides(base, [f"groups={variant.variant}"])
    if devices and not baselines:
      row = _time_chunks(group, runs, ds, repeats, devices)
      row.update(runs=runs, models=runs * cfg.members)
      _summarise(row, cfg, ds, row["times"])
    else:
      row = _time_rounds(cfg, f"{cfg.conv_impl}/{cfg.driver}", ds, repeats)  # the study's own
    if devices and baselines:
      one = row["one_device_round_s_median"] = row["round_s_median"]
      row.update(_time_chunks(group, runs, ds, repeats, devices))
      for key in ("images_per_s", "model_steps_per_s", "flops_per_s", "fraction_of_peak"):
        row[key] = row[key] * one / row["round_s_median"] if row.get(key) else row.get(key)
    row["compare"] = {
      override: _time_group(base, variant.variant, runs, ds, repeats, devices, [override])
      for override in compare
    }
    if baselines and backend.rnn_impl(cfg) in ("native", "fused"):  # the lax.scan beside the C++
      row["scan_round_s_median"] = _time_group(
        base, variant.variant, runs, ds, repeats, devices, ["rnn_impl=scan"]
      )
    row["group"] = variant.variant
    row["batch_size"] = variant.batch_size
    row["images_per_epoch"] = variant.num_train
    report["groups"].append(row)
    print(json.dumps(row), flush=True)
  report["groups_study"] = {
    "rounds": rounds,
    "steady_s": rounds * sum(r["round_s_median"] for r in report["groups"]),
    "compile_s": sum(r.get("compile_s", 0.0) for r in report["groups"]),
    "cpu_devices": len(devices) if devices else 1,
  }
  if devices and baselines:
    report["groups_study"]["one_device_steady_s"] = rounds * sum(
      r["one_device_round_s_median"] for r in report["groups"]
    )
  report["groups_study"]["compare_steady_s"] = {
    override: rounds * sum(r["compare"][override] for r in report["groups"]) for override in compare
  }
  if all("scan_round_s_median" in r for r in report["groups"]):
    report["groups_study"]["scan_steady_s"] = rounds * sum(
      r["scan_round_s_median"] for r in report["groups"]
    )


def _time_chunks(config, runs: int, ds, repeats, devices) -> dict:
  """A group's round as the runner runs it on a split CPU: its runs in equal chunks on the
  single devices (study.build_programs, each compiled once per device by the runner's
  `compile_programs`), every chunk dispatched before any is awaited."""
  config = config.replace(num_seeds=runs)
  programs = study.build_programs(config, {config.dataset: ds}, None, devices, len(devices))
  states = study.init_states(programs)
  programs, compile_s, _ = compile_programs(programs, states)

  test_due = tests_every_round(config)

  def one_round():
    out = [study.step_round(p, s, test_due) for p, s in zip(programs, states, strict=True)]
    jax.block_until_ready(out)
    states[:] = [state for state, _ in out]

  _, times = timed(one_round, repeats)
  return {
    "compile_s": sum(compile_s.values()),
    "round_s_median": statistics.median(times),
    "round_s_min": min(times),
    "round_s_max": max(times),
    "times": times,
    "chunks": len(programs),
    "runs_per_call": len(programs[0].runs_table),
  }


def _time_split(first, strategy: str, ds, repeats, devices):
  """A strategy with `cpu_devices` != 1: the population as the runner runs it on the split
  CPU (equal chunks on the single `devices` at once), summarised like the other strategies."""
  cfg = with_strategy(first, strategy)
  chunks = _time_chunks(cfg, cfg.num_seeds, ds, repeats, devices)
  result = {
    "strategy": strategy,
    "conv_impl": cfg.conv_impl,
    "driver": cfg.driver,
    "runs": len(run_table(cfg)),
    "models": len(run_table(cfg)) * cfg.members,
    "compile_s": chunks["compile_s"],
    "chunks": chunks["chunks"],
    "runs_per_call": chunks["runs_per_call"],
  }
  return _summarise(result, cfg, ds, chunks["times"])


def _write(report):
  write_report(OUT.value, f"timing_{PRESET.value}", f"benchmark_{PRESET.value}", report, render)


def _render_groups(report) -> list[str]:
  split = any("one_device_round_s_median" in r for r in report["groups"])
  scan = any("scan_round_s_median" in r for r in report["groups"])
  compare = list(report["groups"][0].get("compare", {})) if report["groups"] else []
  lines = [
    "| group | runs | batch | compile s | s/epoch | "
    + ("s/epoch on one device | " if split else "")
    + ("s/epoch with rnn_impl=scan | " if scan else "")
    + "".join(f"s/epoch with {override} | " for override in compare)
    + "train samples/epoch | samples/s | GFLOP/s | XLA memory per call | RSS so far |",
    "| --- | ---: | ---: | ---: | ---: | "
    + ("---: | " if split else "")
    + ("---: | " if scan else "")
    + "---: | " * len(compare)
    + "---: | ---: | ---: | ---: | ---: |",
  ]
  for r in report["groups"]:
    xla = f"{r['xla_peak_bytes'] / 2**30:.2f} GiB" if r.get("xla_peak_bytes") else "-"
    one = f"{r['one_device_round_s_median']:.2f} | " if split else ""
    if scan:  # a group without a recurrent layer has no scan of its own
      one += f"{r['scan_round_s_median']:.2f} | " if "scan_round_s_median" in r else "- | "
    one += "".join(f"{r['compare'][override]:.2f} | " for override in compare)
    lines.append(
      f"| {r['group']} | {r['runs']} | {r['batch_size']} | {r['compile_s']:.1f} | "
      f"{r['round_s_median']:.2f} | {one}"
      f"{r['images_per_epoch']} | {r['images_per_s']:.0f} | {r['flops_per_s'] / 1e9:.1f} | "
      f"{xla} | {r['peak_rss_bytes'] / 2**30:.2f} GiB |"
    )
  return lines


def _faster(speedup: float) -> str:
  """`2.00x faster`, or `2.00x slower` for a speed-up of 0.5."""
  return f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"


def render(report) -> str:
  """The markdown report of a `timing_*.json`."""
  peak = report["peak_flops_assumed"]
  lines = [
    f"# Benchmark `{report['preset']}` on {report['device']} ({report['backend']}, "
    f"{report['devices']} device(s)), jax {report['jax']}",
    "",
    f"Peak assumed: {peak / 1e9:.0f} GFLOP/s"
    + (" (best 2048x2048 float32 matmul here)" if report["backend"] == "cpu" else " (spec)")
    if peak
    else "Peak: not known for this backend",
    "",
    "| strategy | runs | models | compile s | s/round (median [min, max]) | "
    "s per model-round | images/s | model-steps/s | GFLOP/s | % of peak | peak memory |",
    "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  if "groups" in report:
    study_line = []
    if "groups_study" in report:
      g = report["groups_study"]
      study_line = [
        "",
        f"All groups at these runs for the experiment's {g['rounds']} epochs: "
        f"{g['steady_s']:.0f} s of steady-state time, compile {g['compile_s']:.1f} s"
        + (
          f" (runs in equal chunks on {g['cpu_devices']} CPU devices; all on one device: "
          f"{g['one_device_steady_s']:.0f} s)."
          if "one_device_steady_s" in g
          else "."
        )
        + (
          f" With the recurrences as a lax.scan (`rnn_impl=scan`): {g['scan_steady_s']:.0f} s."
          if "scan_steady_s" in g
          else ""
        )
        + "".join(
          f" With `{override}`: {steady:.0f} s."
          for override, steady in g.get("compare_steady_s", {}).items()
        ),
      ]
    lines = lines[:4] + _render_groups(report) + study_line + ["", *lines[4:]]
    if not report["strategies"]:
      return "\n".join(lines[: 4 + len(report["groups"]) + 2 + len(study_line)]) + "\n"
  rows = report["strategies"] + ([report["study"]] if "study" in report else [])
  for r in rows:
    compile_s = r.get("compile_s")
    compile_s = f"{compile_s:.1f}" if compile_s else f"({r.get('first_round_s', 0):.1f} 1st round)"
    frac = f"{100 * r['fraction_of_peak']:.1f}" if r.get("fraction_of_peak") else "-"
    mem = (
      f"{r['peak_memory_bytes'] / 2**30:.2f} GiB"
      if r.get("peak_memory_bytes")
      else f"RSS <= {r['peak_rss_bytes'] / 2**30:.2f} GiB"
      if r.get("peak_rss_bytes")
      else "-"
    )
    lines.append(
      f"| {r['strategy']} | {r['runs']} | {r['models']} | {compile_s} | "
      f"{r['round_s_median']:.2f} [{r['round_s_min']:.2f}, {r['round_s_max']:.2f}] | "
      f"{r['round_s_median'] / r['models']:.3f} | {r['images_per_s']:.0f} | "
      f"{r['model_steps_per_s']:.1f} | {r['flops_per_s'] / 1e9:.1f} | {frac} | {mem} |"
    )
  best = report["best"]
  if "speedup_per_model_vs_sequential" in report:
    lines += [
      "",
      f"Best population strategy {best} is "
      f"{_faster(report['speedup_per_model_vs_sequential'])} per model than the sequential "
      "baseline (one model at a time, a host loop over a jitted single-model step).",
    ]
  if "speedup_per_model_vs_torch" in report:
    ref = next(r for r in report["strategies"] if r["strategy"] == TORCH)
    lines += [
      "",
      f"Best population strategy {best} is "
      f"{_faster(report['speedup_per_model_vs_torch'])} per model than the PyTorch "
      f"reference ({TORCH}: the same loop in eager PyTorch {ref['torch']} on "
      f"{ref['torch_device']}, {ref['torch_threads']} threads, measured in this run).",
    ]
  if "study" in report:
    st = report["study"]
    lines += [
      "",
      f"The experiment's own study ({st['runs']} runs, {st['models']} models): "
      f"{st['round_s_median']:.2f} s per round, {st['rounds']} rounds = "
      f"{st['study_steady_s']:.1f} s of steady-state time "
      f"(compile {st.get('compile_s', 0):.1f} s).",
    ]
  lines += [
    "",
    f"Scaling with {best}: population efficiency = "
    "time(R) / (R x time(1)); below 1 means the population is cheaper than separate runs.",
    "",
    "| runs | models | s/round | s per model | efficiency |",
    "| ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in report["scaling"]:
    lines.append(
      f"| {r['runs']} | {r['models']} | {r['round_s_median']:.2f} | "
      f"{r['s_per_model']:.3f} | {r['population_efficiency']:.2f} |"
    )
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(main)
