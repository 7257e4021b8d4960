"""rnn_impl="native": the C++ time loop (swapjax/cpu/rnn_kernel.py) computes the lax.scan's
recurrence and its gradient, for each model under vmap, inside a whole study; and where it
cannot build, the product says so in one line.

It needs only a C++ compiler; with `CI` set, a failed build fails these tests (a machine
without a compiler skips them, as auto then runs the scan).
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_rows
from test_tasks import NUMPY_ACTS, _autodiff_recurrence, _numpy_rnn

from swapjax import backend, models, registry, train
from swapjax import config as configlib
from swapjax.cpu import rnn_kernel
from swapjax.state import Pool, RunArrays


@pytest.fixture(scope="module")
def needs_kernel():
  reason = rnn_kernel.unavailable_reason()
  if reason and os.environ.get("CI") and "no C++ compiler" not in reason:
    pytest.fail(f"the RNN kernel must build where a compiler is: {reason}")
  if reason:
    pytest.skip(reason)


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTS))
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("units", [6, 16, 37, 128])  # below, at, between and past vector widths
def test_kernel_is_the_scan_and_its_gradient(activation, masked, units, needs_kernel):
  """Forward values and the gradients for the inputs and the recurrent kernel equal autodiff
  of the plain scan, for two axes of models (runs x members) as in training."""
  rng = np.random.default_rng(units)
  lead = (2, 3)
  # Pre-activations kept away from relu's kink (|xw| >= 1, a weak recurrence): at z = 0 a
  # rounding difference between two correct computations flips the slope between 0 and 1.
  shape = (*lead, 8, 3, units)  # time, batch, units
  xw = jnp.asarray(rng.choice([-1.0, 1.0], shape) * (1 + np.abs(rng.normal(size=shape))))
  recurrent = rng.normal(size=(*lead, units, units)) * 0.3 / np.sqrt(units)
  xw, recurrent = xw.astype(jnp.float32), jnp.asarray(recurrent, jnp.float32)
  weights = jnp.asarray(rng.normal(size=(8, 3, units)), jnp.float32)  # a loss using every h_t
  mask = None
  if masked:
    mask = jnp.asarray(rng.integers(0, 2, size=(*lead, 3, units)) * 2.0, jnp.float32)

  def loss(f):
    return lambda xw, u, m: jnp.sum(jnp.sin(f(xw, u, m)) * weights)

  ours = lambda xw, u, m: rnn_kernel.recurrence(activation, xw, u, m)
  ref = lambda xw, u, m: _autodiff_recurrence(activation, xw, u, m)
  both = lambda f: jax.jit(jax.vmap(jax.vmap(f)))
  got_h, want_h = both(ours)(xw, recurrent, mask), both(ref)(xw, recurrent, mask)
  np.testing.assert_allclose(got_h, want_h, rtol=1e-5, atol=1e-6)
  grads = lambda f: both(jax.grad(loss(f), argnums=(0, 1)))(xw, recurrent, mask)
  for g, w in zip(grads(ours), grads(ref), strict=True):
    assert np.abs(np.asarray(w)).max() > 1e-3  # a gradient that can be wrong
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTS))
def test_native_layer_is_keras_recurrence(activation, needs_kernel):
  x = np.random.default_rng(0).normal(size=(3, 8, 2)).astype(np.float32)
  layer = models.SimpleRNN(20, activation, recurrence=rnn_kernel.recurrence)
  params = layer.init(jax.random.key(1), x)["params"]
  params = jax.tree.map(lambda a: a + 0.1, params)  # a non-zero bias
  got = layer.apply({"params": params}, x)
  arrays = (np.asarray(params[k]) for k in ("kernel", "recurrent_kernel", "bias"))
  want = _numpy_rnn(x, *arrays, NUMPY_ACTS[activation])
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def _study_rows(tmp_path, rnn_impl: str, name: str):
  """Two epochs of every binary_addition group (2 seeds, 400 pairs): all metric rows."""
  cfg = registry.get_config("binary_addition").replace(
    num_seeds=2,
    rounds=2,
    pool_size=400,
    holdout_size=200,
    cpu_devices=1,
    rnn_impl=rnn_impl,
  )
  return run_rows(cfg, "binary_addition", tmp_path / name)


def test_study_with_the_kernel_is_the_study_with_the_scan(tmp_path, needs_kernel):
  """Every group (relu, tanh, sigmoid, 128 units, Adam, both dropouts) trains to the same
  numbers as with the scan, to float rounding, with the layers' C++ time loop (`native`) and
  with the C++ epoch where `auto` picks it (units128); the layer kernel repeats itself
  bitwise (the epoch's own repeat: test_fused_epoch_is_the_step_by_step_epoch)."""
  scan = _study_rows(tmp_path, "scan", "scan")
  native = _study_rows(tmp_path, "native", "native")
  again = _study_rows(tmp_path, "native", "again")
  fused = _study_rows(tmp_path, "auto", "auto")
  assert len(native) == len(scan) == len(fused) == 28 and len({r["group"] for r in native}) == 7
  keys = ("train/loss", "train/epoch_loss", "train/acc", "test/loss", "test/acc")
  for s, n, a, f in zip(scan, native, again, fused, strict=True):
    assert (s["group"], s["epoch"], s["seed"]) == (n["group"], n["epoch"], n["seed"])
    assert (s["group"], s["epoch"], s["seed"]) == (f["group"], f["epoch"], f["seed"])
    for key in keys:
      assert abs(s[key] - n[key]) <= 1e-5, (s["group"], s["epoch"], key, s[key], n[key])
      assert abs(s[key] - f[key]) <= 1e-5, (s["group"], s["epoch"], key, s[key], f[key])
      assert n[key] == a[key]
  assert scan[-1]["train/loss"] != scan[0]["train/loss"]  # it trained
  timing = json.loads((tmp_path / "auto" / "timing.json").read_text())
  assert timing["rnn_impl"] == "native; fused for units128"  # what each group trained with
  assert {p["variant"]: p["rnn_impl"] for p in timing["programs"]}["units128"] == "fused"


def test_config_checks(needs_kernel):
  base = registry.get_config("binary_addition")
  for overrides, needle in [
    (["rnn_impl=loop"], "rnn_impl"),
    (["rnn_impl=native", "compute_dtype=bfloat16"], "float32"),
    (["rnn_impl=native", "rnn_unroll=true"], "rnn_unroll"),
  ]:
    with pytest.raises(configlib.ConfigError, match=needle):
      configlib.validate(configlib.apply_overrides(base, overrides))
  unrolled = configlib.apply_overrides(base, ["rnn_unroll=true"])
  assert backend.resolve_rnn_impl("auto", "float32", unroll=True) == "scan"
  assert backend.rnn_impl(unrolled) == "scan"  # the unrolled scan asked for
  assert backend.rnn_impl(registry.get_config("tiny")) is None  # no recurrent layer


def test_missing_compiler_is_one_line_exit_2(tmp_path):
  from test_runner import _cli

  args = ["--experiment=binary_addition", "--set", "rnn_impl=native", f"--workdir={tmp_path / 'w'}"]
  missing = dict(CXX=str(tmp_path / "no-compiler"), SWAPJAX_KERNEL_CACHE=str(tmp_path / "cache"))
  result = _cli(*args, **missing)
  assert result.returncode == 2, result.stderr
  assert "rnn_impl=native: building the RNN kernel failed" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_native_is_cpu_only_and_auto_says_why_not(monkeypatch, capsys):
  cfg = registry.get_config("binary_addition")
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  with pytest.raises(configlib.ConfigError, match="rnn_impl=native runs on the CPU only"):
    backend.rnn_impl(cfg.replace(rnn_impl="native"))
  assert backend.rnn_impl(cfg) == "scan"  # auto on an accelerator
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  monkeypatch.setattr(rnn_kernel, "unavailable_reason", lambda: "no compiler here")
  backend._say_once.cache_clear()
  assert backend.rnn_impl(cfg) == "scan"
  assert (
    "recurrences by lax.scan, not the C++ time loop: no compiler here" in capsys.readouterr().out
  )


def test_networks_without_recurrent_layers_never_build_the_kernel(monkeypatch):
  def build():
    raise AssertionError("the RNN kernel was built for a CNN")

  monkeypatch.setattr(rnn_kernel, "unavailable_reason", build)
  kernels = backend.kernels(registry.get_config("memorize_mnist"))
  assert kernels.recurrence is None and kernels.rnn_impl is None
  assert kernels.model(registry.get_config("memorize_mnist")).recurrence is None


@pytest.mark.parametrize(
  "units,activation,outputs",
  [(16, "relu", 1), (20, "tanh", 2), (64, "sigmoid", 1), (128, "relu", 1)],
)
def test_fused_epoch_is_the_step_by_step_epoch(units, activation, outputs, needs_kernel):
  """`rnn_kernel.sgd_epoch` (the C++ epoch) trains as the step-by-step epoch with the layers'
  kernel: the same new weights, loss and running accuracy to float rounding, with a partial last
  batch (25 samples in batches of 3), widths off the vector width, two outputs per step; a run
  that is not active keeps its weights exactly; the epoch repeats itself bitwise."""
  base = registry.get_config("binary_addition").replace(
    layers=(f"rnn:{units}:{activation}", f"dense:{outputs}"),
    pool_size=25,
    holdout_size=4,
    batch_size=3,
    variants="",
  )
  r, p = 2, base.num_train
  rng = np.random.default_rng(units)
  pool = Pool(
    jnp.asarray(rng.integers(0, 2, (1, p, 8, 2)), jnp.float32),
    jnp.asarray(rng.integers(0, 2, (r, p, 8, outputs)), jnp.float32),
    jnp.zeros(r, jnp.int32),
    *(jnp.zeros(0),) * 4,
  )
  numbers = {axis: jnp.full(r, 0.0) for axis in configlib.TRACED_AXES}
  numbers["learning_rate"] = jnp.asarray([0.5, 0.3])
  runs = RunArrays(jnp.arange(r), jnp.zeros(r, jnp.int32), numbers, jnp.zeros(0), jnp.zeros(0))
  active = jnp.asarray([True, False])
  idx = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32), (r, 1, p))
  keys = jax.random.split(jax.random.key(3), r).reshape(r, 1)

  def epoch(rnn_impl):
    cfg = base.replace(rnn_impl=rnn_impl)
    kernels = dataclasses.replace(backend.kernels(cfg), conv=models.conv3x3_lax)
    model, optimizer = kernels.model(cfg), train.make_optimizer(cfg)
    params, opt_state = jax.vmap(lambda k: train.init_members(model, optimizer, k, 1, (8, 2)))(
      jax.random.split(jax.random.key(0), r)
    )
    fn = jax.jit(train.make_train_epoch(cfg, model, optimizer, "scan", None, kernels.train_epoch))
    return params, fn(params, opt_state, pool, idx, keys, runs, active)

  assert backend.kernels(base.replace(rnn_impl="fused")).train_epoch is not None
  start, (want, _, want_loss, want_acc) = epoch("native")
  _, (got, _, got_loss, got_acc) = epoch("fused")
  _, (again, _, again_loss, _) = epoch("fused")
  for g, a in zip(
    jax.tree.leaves((got, got_loss)), jax.tree.leaves((again, again_loss)), strict=True
  ):
    np.testing.assert_array_equal(np.asarray(g), np.asarray(a))  # it repeats itself bitwise
  leaves = (jax.tree.leaves(want), jax.tree.leaves(got), jax.tree.leaves(start))
  for w, g, s in zip(*leaves, strict=True):
    np.testing.assert_allclose(np.asarray(g[0]), np.asarray(w[0]), rtol=2e-5, atol=2e-6)
    assert np.abs(np.asarray(w[0] - s[0])).max() > 1e-3  # the active run trained
    np.testing.assert_array_equal(np.asarray(g[1]), np.asarray(s[1]))  # the other did not
  np.testing.assert_allclose(np.asarray(got_loss[0]), np.asarray(want_loss[0]), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(got_acc[0]), np.asarray(want_acc[0]), rtol=1e-6)


def test_fused_config_checks(needs_kernel):
  base = registry.get_config("binary_addition")
  for overrides, needle in [
    (["rnn_impl=fused"], "group adam.*plain SGD"),
    (["rnn_impl=fused", "groups=input_dropout"], "without dropout"),
  ]:
    with pytest.raises(configlib.ConfigError, match=needle):
      backend.check(configlib.apply_overrides(base, overrides))
  fused = configlib.apply_overrides(base, ["rnn_impl=fused", "groups=base,units128"])
  backend.check(fused)
  programs = configlib.program_configs(base)
  # auto: the C++ epoch for units128 only (16 units measured no faster), the layers' kernel
  # for the others; fused where asked for a group it can train.
  fused_epochs = [backend.kernels(c).train_epoch is not None for c in programs]
  assert fused_epochs == [False, True] + [False] * 5
  assert [backend.rnn_impl(c) for c in programs[:2]] == ["native", "fused"]
  assert backend.rnn_impl(programs[0].replace(rnn_impl="fused")) == "fused"
