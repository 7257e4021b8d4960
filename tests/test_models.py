"""The conv formulations compute the same function and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swapjax import models


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_formulations_agree(padding):
  kx, kw, kd = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 9, 9, 3))
  w = jax.random.normal(kw, (3, 3, 3, 4))
  # oneDNN where it loads (tests/test_onednn.py says why not, and fails in CI without it).
  impls = {n: models.CONV_FUNCTIONS[n] for n in models.available_conv_impls()}
  outs = {n: f(x, w, padding) for n, f in impls.items()}
  dy = jax.random.normal(kd, outs["lax"].shape)
  grads = {n: jax.vjp(lambda a, b, f=f: f(a, b, padding), x, w)[1](dy) for n, f in impls.items()}
  for name in set(impls) - {"lax"}:
    np.testing.assert_allclose(outs[name], outs["lax"], rtol=1e-5, atol=1e-5)
    for got, want in zip(grads[name], grads["lax"], strict=True):
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
  ("name", "shape", "n_params"),
  [
    (
      "cifar_cnn",
      (32, 32, 3),
      3 * 3 * 3 * 32 + 32 + 3 * (3 * 3 * 32 * 32 + 32) + 6 * 6 * 32 * 512 + 512 + 5130,
    ),
    ("cnn_004", (28, 28, 1), 320 + 9248 + 18496 + 36928 + 5 * 5 * 64 * 512 + 512 + 5130),
  ],
)
def test_report_architectures(name, shape, n_params):
  model = models.make_model(name)
  params = model.init(jax.random.key(0), jnp.zeros((1, *shape)))["params"]
  assert sum(p.size for p in jax.tree.leaves(params)) == n_params
  assert model.apply({"params": params}, jnp.zeros((2, *shape))).shape == (2, 10)


@pytest.mark.parametrize("size", [8, 11])  # 11: the odd last row and column are dropped
def test_max_pool_formulations_agree(size):
  """Training's reshape form and evaluation's reduce-window: equal values, and equal gradients
  where no window's maximum is tied (random floats)."""
  x = jax.random.normal(jax.random.key(size), (2, size, size, 3))
  dy = jax.random.normal(jax.random.key(1), (2, size // 2, size // 2, 3))
  got, got_vjp = jax.vjp(lambda a: models.max_pool_2x2(a, train=True), x)
  want, want_vjp = jax.vjp(lambda a: models.max_pool_2x2(a, train=False), x)
  assert got.shape == want.shape == dy.shape
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(got_vjp(dy)[0], want_vjp(dy)[0])
