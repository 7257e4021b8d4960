"""The PyTorch reference (benchmarks/torch_reference.py) computes what swapjax computes: the same
parameters, forward passes, losses and optimiser steps, and the sequential baseline's work per
round. Skipped where PyTorch is not installed (`pip install -e '.[bench]'`)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import flagsaver

torch = pytest.importorskip("torch")

from benchmarks import run as bench  # noqa: E402
from benchmarks import torch_reference as tr  # noqa: E402
from benchmarks.timing import tests_every_round as with_test_pass  # noqa: E402
from swapjax import data, generated, models, registry, study, train  # noqa: E402
from swapjax.config import run_table, variant_configs  # noqa: E402


def input_shape(cfg):
  if cfg.dataset in data.SHAPES:
    return data.SHAPES[cfg.dataset]
  return generated.load(cfg.dataset, 0).image_shape


SPECS = [
  pytest.param(models.config_layers(v), input_shape(v), id=f"{name}-{v.variant or 'all'}")
  for name in ("swap_cifar10", "memorize_mnist", "binary_addition", "mnist_cnn")
  for v in variant_configs(registry.get_config(name))
]


def flax_params(layers, shape, seed=0, **kwargs):
  x = jnp.zeros((1, *shape), jnp.float32)
  return models.SpecNet(layers, models.conv3x3_lax, **kwargs).init(jax.random.key(seed), x)[
    "params"
  ]


def copy_flax_params(net, params):
  """swapjax's parameters into the torch network, layer by layer in order."""
  counts = {}
  as_torch = lambda a: torch.from_numpy(np.array(a))
  with torch.no_grad():
    for module in net:
      name = {torch.nn.Conv2d: "Conv3x3", torch.nn.Linear: "Dense", tr.SimpleRNN: "SimpleRNN"}
      name = name.get(type(module))
      if name is None:
        continue
      p = params[f"{name}_{counts.setdefault(name, 0)}"]
      counts[name] += 1
      if name == "Conv3x3":
        module.weight.copy_(as_torch(p["kernel"]).permute(3, 2, 0, 1))
      elif name == "Dense":
        module.weight.copy_(as_torch(p["kernel"]).T)
      else:
        module.kernel.copy_(as_torch(p["kernel"]))
        module.recurrent_kernel.copy_(as_torch(p["recurrent_kernel"]))
      module.bias.copy_(as_torch(p["bias"]))
  assert sum(counts.values()) == len(params)  # every swapjax layer found its torch layer


@pytest.mark.parametrize("layers,shape", SPECS)
def test_parameter_count_matches_swapjax(layers, shape):
  params = jax.eval_shape(lambda: flax_params(layers, shape))
  net = tr.torch_model(layers, shape)
  swapjax_sizes = sorted(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
  torch_sizes = sorted(p.numel() for p in net.parameters())
  assert torch_sizes == swapjax_sizes and sum(torch_sizes) > 0


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_simple_rnn_forward_equals_swapjax(activation):
  rnn = models.SimpleRNN(16, activation)
  x = jax.random.normal(jax.random.key(1), (4, 8, 2)) * 2.0
  params = rnn.init(jax.random.key(2), x)["params"]
  ours = torch.nn.Sequential(tr.SimpleRNN(2, 16, activation)).eval()
  copy_flax_params(ours, {"SimpleRNN_0": params})
  got = ours(torch.from_numpy(np.array(x))).detach().numpy()
  want = np.array(rnn.apply({"params": params}, x))
  assert got.shape == want.shape == (4, 8, 16)
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
  "layers,shape",
  [
    (models.config_layers(registry.get_config("mnist_cnn")), (28, 28, 1)),
    (("rnn:16:relu", "dense:1"), (8, 2)),
    (
      ("conv:4:same", "leaky_relu:0.1", "maxpool", "conv:6", "leaky_relu", "gap", "dense:3"),
      (10, 10, 2),
    ),
  ],  # fmt: skip
)
def test_network_forward_equals_swapjax(layers, shape):
  """Layouts (NHWC in, NCHW convs, NHWC flatten), dense per time step, the run's leaky slope."""
  params = flax_params(layers, shape, seed=3)
  x = jax.random.uniform(jax.random.key(4), (3, *shape))
  want = models.SpecNet(layers, models.conv3x3_lax).apply({"params": params}, x, leaky_slope=0.2)
  net = tr.torch_model(layers, shape, leaky_slope=0.2).eval()
  copy_flax_params(net, params)
  got = net(torch.from_numpy(np.array(x))).detach().numpy()
  np.testing.assert_allclose(got, np.array(want), atol=1e-5, rtol=1e-4)


def test_rnn_dropout_masks_are_one_per_sequence():
  torch.manual_seed(0)
  # Input dropout: identity input kernel, no recurrence, ones in: h_t is the input mask.
  rnn = tr.SimpleRNN(3, 3, "relu", dropout=0.5).train()
  with torch.no_grad():
    rnn.kernel.copy_(torch.eye(3))
    rnn.recurrent_kernel.zero_()
  h = rnn(torch.ones(64, 5, 3)).detach()
  assert torch.equal(h, h[:, :1].expand_as(h))  # the same units dropped at every step
  assert set(h.unique().tolist()) == {0.0, 2.0}
  # Recurrent dropout: bias 1, identity recurrence: h_t = 1 + m * h_{t-1} with one m per unit.
  rnn = tr.SimpleRNN(3, 3, "relu", recurrent_dropout=0.5).train()
  with torch.no_grad():
    rnn.kernel.zero_()
    rnn.recurrent_kernel.copy_(torch.eye(3))
    rnn.bias.fill_(1.0)
  h = rnn(torch.zeros(64, 4, 3)).detach()
  m = h[:, 1] - 1.0
  assert set(m.unique().tolist()) == {0.0, 2.0}
  torch.testing.assert_close(h[:, 2], 1.0 + m * h[:, 1])
  torch.testing.assert_close(h[:, 3], 1.0 + m * h[:, 2])


@pytest.mark.parametrize(
  "task,loss,out_shape,target",
  [
    ("softmax", "cross_entropy", (6, 10), "class"),
    ("softmax", "mean_squared_error", (6, 10), "class"),
    ("softmax", "keras_cross_entropy", (6, 10), "class"),
    ("sigmoid", "keras_cross_entropy", (6, 8, 1), "bits"),
    ("sigmoid", "cross_entropy", (6, 8, 1), "bits"),
    ("sigmoid", "mean_squared_error", (6, 8, 1), "bits"),
    ("regression", "mean_squared_error", (6, 1), "real"),
  ],
)
def test_per_sample_losses_equal_swapjax(task, loss, out_shape, target):
  rng = np.random.default_rng(0)
  outputs = rng.normal(size=out_shape).astype(np.float32) * 3
  if target == "class":
    targets = rng.integers(0, 10, out_shape[0])
  elif target == "bits":
    targets = rng.integers(0, 2, out_shape).astype(np.float32)
  else:
    targets = rng.normal(size=out_shape).astype(np.float32)
  got = tr.per_sample(task, loss, torch.from_numpy(outputs), torch.from_numpy(targets))
  event_ndim = targets.ndim - 1
  want = train.per_sample(task, loss, jnp.asarray(outputs), jnp.asarray(targets), event_ndim)
  assert got[0].shape == want[0].shape == (6,)
  np.testing.assert_allclose(got[0].numpy(), np.array(want[0]), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(got[1].numpy(), np.array(want[1], np.float32))


@pytest.mark.parametrize(
  "changes", [dict(), dict(optimizer="sgd", momentum=0.9), dict(optimizer="sgd")]
)
def test_optimizer_steps_equal_swapjax(changes):
  cfg = registry.get_config("tiny").replace(**changes)
  rng = np.random.default_rng(1)
  # Small gradients, so that Adam's eps (1e-7, not torch's 1e-8) shows in the update.
  w0 = rng.normal(size=(3, 4)).astype(np.float32) * 1e-5
  grads = [rng.normal(size=(3, 4)).astype(np.float32) * 1e-5 for _ in range(3)]
  lr = 0.05
  w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
  opt = tr.make_optimizer(cfg, [w], lr)
  optimizer = train.make_optimizer(cfg)
  p, state = jnp.asarray(w0), optimizer.init(jnp.asarray(w0))
  for g in grads:
    w.grad = torch.from_numpy(g)
    opt.step()
    updates, state = optimizer.update(jnp.asarray(g), state, p)
    p = optax.apply_updates(p, -lr * updates)
  assert not np.allclose(np.array(p), w0)
  np.testing.assert_allclose(w.detach().numpy(), np.array(p), rtol=1e-4, atol=1e-12)


def assert_same_work(row, baseline, cfg):
  """The torch row times the JAX baseline's models, steps, batch and evaluation passes."""
  assert row["strategy"] == bench.TORCH and row["conv_impl"] == "torch"
  assert (row["runs"], row["models"]) == (baseline["runs"], baseline["models"])
  assert row["models"] == len(run_table(cfg)) * cfg.members
  assert row["train_steps_per_model"] == -(-cfg.num_train // min(cfg.batch_size, cfg.num_train))
  holdout = cfg.holdout_size if with_test_pass(cfg) else 0
  assert row["eval_images_per_model"] == cfg.train_pool + holdout
  assert row["flops_per_round"] == baseline["flops_per_round"]  # the same work counted
  assert 0 < row["round_s_min"] <= row["round_s_median"] <= row["round_s_max"]
  assert row["first_round_s"] > 0 and row["repeats"] == 1 and row["torch"] == torch.__version__


def test_time_torch_swap_round_does_the_sequential_baselines_work():
  base = registry.get_config("swap_cifar10").replace(
    source="synthetic", pool_size=64, holdout_size=16
  )
  cfg = bench.population(base, 2)
  ds = data.synthetic("cifar10", 64, 16)
  row = tr.time_torch(cfg, ds, 1)
  assert row["models"] == 4 and row["eval_images_per_model"] == 80
  assert_same_work(row, bench._time_sequential(cfg, ds, 1), cfg)


def test_time_torch_rnn_round_does_the_sequential_baselines_work():
  base = registry.get_config("binary_addition").replace(pool_size=64, holdout_size=16)
  cfg = bench.population(variant_configs(base)[-1], 2)  # recurrent dropout, batch 2
  ds = study.load_data(cfg, None, None)
  row = tr.time_torch(cfg, ds, 1)
  # binary_addition tests every epoch (test_every=1): the pool and the 16 test pairs
  assert row["train_steps_per_model"] == 32 and row["eval_images_per_model"] == 64 + 16
  assert_same_work(row, bench._time_sequential(cfg, ds, 1), cfg)


def fake_row(strategy, round_s, **extra):
  return dict(
    strategy=strategy,
    runs=1,
    models=2,
    round_s_median=round_s,
    round_s_min=round_s,
    round_s_max=round_s,
    images_per_s=1.0,
    model_steps_per_s=1.0,
    flops_per_s=1e9,
    fraction_of_peak=None,
    peak_memory_bytes=None,
    peak_rss_bytes=2**30,
    **extra,
  )


def test_main_reports_the_speedup_over_torch(tmp_path, monkeypatch):
  """torch/sequential is timed by time_torch, is never the best strategy, and gets its ratio."""
  times = {"patches/scan": 2.0, "lax/scan": 3.0}
  monkeypatch.setattr(
    bench, "_time_rounds", lambda cfg, s, ds, r: fake_row(s, times[s], compile_s=1.0)
  )
  monkeypatch.setattr(bench, "_time_sequential", lambda cfg, ds, r: fake_row(bench.SEQUENTIAL, 4.0))
  torch_row = fake_row(
    bench.TORCH, 0.5, first_round_s=1.0, torch="9.9", torch_device="cpu", torch_threads=2
  )
  monkeypatch.setattr(tr, "time_torch", lambda cfg, ds, r, summarise: torch_row)
  strategies = ["patches/scan", "lax/scan", bench.SEQUENTIAL, bench.TORCH]
  with flagsaver.flagsaver(
    preset="tiny", out=str(tmp_path), repeats=1, strategies=strategies, scaling=["1"]
  ):
    bench.main([])
  report = json.loads((tmp_path / "timing_tiny.json").read_text())
  assert [r["strategy"] for r in report["strategies"]] == strategies
  assert report["best"] == "patches/scan"  # torch's 0.5 s is a baseline, not a candidate
  assert report["speedup_per_model_vs_torch"] == pytest.approx(0.25)
  assert report["speedup_per_model_vs_sequential"] == pytest.approx(2.0)
  text = (tmp_path / "benchmark_tiny.md").read_text()
  assert "4.00x slower per model than the PyTorch reference" in text
  assert "2.00x faster per model than the sequential baseline" in text
  assert "eager PyTorch 9.9 on cpu, 2 threads" in text and "| torch/sequential | 1 | 2 |" in text
