"""The conv formulations compute the same function and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swapjax import backend, models


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_conv_formulations_agree(padding):
  kx, kw, kd = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 9, 9, 3))
  w = jax.random.normal(kw, (3, 3, 3, 4))
  # oneDNN where it loads (tests/test_onednn.py says why not, and fails in CI without it).
  impls = {n: backend.conv_function(n) for n in backend.conv_impls()}
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


@pytest.mark.parametrize("x_shape", [(5, 7), (5, 3, 7)])  # per sample, and per time step
def test_dense_matmul_gradients_match_dot_general(x_shape):
  kx, kw, kd = jax.random.split(jax.random.key(2), 3)
  x = jax.random.normal(kx, (4, *x_shape))  # 4 models, vmapped
  w = jax.random.normal(kw, (4, 7, 6))
  dy = jax.random.normal(kd, (4, *x_shape[:-1], 6))
  dims = (((len(x_shape) - 1,), (0,)), ((), ()))
  got, got_vjp = jax.vjp(jax.vmap(models.dense_matmul), x, w)
  want, want_vjp = jax.vjp(jax.vmap(lambda a, b: jax.lax.dot_general(a, b, dims)), x, w)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  for g, h in zip(got_vjp(dy), want_vjp(dy), strict=True):
    assert g.shape == h.shape
    np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-5)


def test_dense_kernel_gradient_needs_no_transpose():
  """A vmapped population's Dense kernel gradient comes out in the kernel's layout: the
  compiled training step transposes no kernel-shaped array (JAX's own transpose rule did, and
  XLA:CPU then read it with a stride in every optimiser update)."""
  net = models.SpecNet(("flatten", "dense:48", "relu", "dense:10"))
  # One model (the main job's population): XLA drops the model axis and, with JAX's transpose
  # rule, computed the gradient as (48, 20) and transposed it.
  x = jnp.ones((1, 8, 20))  # 1 model, batch 8, 20 features
  params = jax.vmap(lambda k: net.init(k, x[0])["params"])(jax.random.split(jax.random.key(0), 1))

  def step(p, xb):
    grad = jax.grad(lambda q: jnp.sum(net.apply({"params": q}, xb) ** 2))(p)
    return jax.tree.map(lambda a, g: a - 0.1 * g / (jnp.abs(g) + 1.0), p, grad)

  hlo = jax.jit(jax.vmap(step)).lower(params, x).compile().as_text()
  transposed = [
    line
    for line in hlo.splitlines()
    if " transpose(" in line and ("48,20" in line or "20,48" in line)
  ]
  assert not transposed, transposed
