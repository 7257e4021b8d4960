"""Networks from declarative layer specs in Flax linen, with Keras initialisers and a choice of conv
formulation.

`conv_impl="lax"` is `lax.conv_general_dilated`; under `vmap` over models it becomes a grouped
convolution, whose gradient XLA:CPU runs slowly inside loops and cuDNN runs slowly in general
(jax-ml/jax#12868, #13800). `conv_impl="patches"` computes the same 3x3 convolution as nine
shifted slices and one matmul, so a population of models becomes batched matmuls. A backend
may hand in its own convolution and recurrence (swapjax.backend: oneDNN's convolutions and a
C++ time loop on the CPU). All use the same parameters; tests check they agree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from swapjax.layers import config_layers, model_layers, parse_layer

KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()


def patches3x3(x_BxHxWxC, padding: str):
  """The nine shifted 3x3 neighbourhoods, concatenated on channels: (B, H', W', 9C)."""
  if padding == "SAME":
    x_BxHxWxC = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  h, w = x_BxHxWxC.shape[1] - 2, x_BxHxWxC.shape[2] - 2
  return jnp.concatenate(
    [x_BxHxWxC[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=-1
  )


def conv3x3_patches(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  """3x3 stride-1 convolution as nine shifted slices and one matmul."""
  kernel = kernel_3x3xCxO.reshape(-1, kernel_3x3xCxO.shape[-1])
  return jnp.einsum("bhwk,ko->bhwo", patches3x3(x_BxHxWxC, padding), kernel)


def conv3x3_lax(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  return lax.conv_general_dilated(
    x_BxHxWxC, kernel_3x3xCxO, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3x3_hybrid(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  """lax convolution forward; gradients as matmuls over patches (no conv gradient in loops)."""
  return conv3x3_lax(x_BxHxWxC, kernel_3x3xCxO, padding)


def _hybrid_fwd(x, kernel, padding):
  return conv3x3_lax(x, kernel, padding), (x, kernel)


def _hybrid_bwd(padding, residuals, dy_BxHxWxO):
  x, kernel = residuals
  d_kernel = jnp.einsum("bhwk,bhwo->ko", patches3x3(x, padding), dy_BxHxWxO)
  dx = jax.vjp(lambda xx: conv3x3_patches(xx, kernel, padding), x)[1](dy_BxHxWxO)[0]
  return dx, d_kernel.reshape(kernel.shape)


conv3x3_hybrid.defvjp(_hybrid_fwd, _hybrid_bwd)


@jax.custom_vjp
def dense_matmul(x_BxI, kernel_IxO):
  """x @ kernel over x's last axis (Dense's product), whose kernel gradient comes out in the
  kernel's own (I, O) layout.

  JAX's transpose of a vmapped `dot_general` computes the kernel gradient as (O, I) and
  transposes it; XLA:CPU then fuses that transpose into each of the optimiser's updates, which
  read it with a stride (memorize_mnist's 1600 x 512 kernel: 0.32 s of a 1.8 s epoch, AMD EPYC
  2 cores, 2026-12-01, benchmarks/results/history/2026-12-01-dense-layout.md). Same products,
  same sums.
  """
  return lax.dot_general(x_BxI, kernel_IxO, (((x_BxI.ndim - 1,), (0,)), ((), ())))


def _dense_fwd(x, kernel):
  return dense_matmul(x, kernel), (x, kernel)


def _dense_bwd(residuals, dy_BxO):
  x, kernel = residuals
  leading = tuple(range(x.ndim - 1))
  dx = lax.dot_general(dy_BxO, kernel, (((dy_BxO.ndim - 1,), (1,)), ((), ())))
  d_kernel = lax.dot_general(x, dy_BxO, ((leading, leading), ((), ())))
  return dx, d_kernel


dense_matmul.defvjp(_dense_fwd, _dense_bwd)


def _dense_dot_general(x, kernel, dimension_numbers, precision=None):
  """`nn.Dense`'s `dot_general`: `dense_matmul` for Dense's contraction (x's last axis with the
  kernel's first)."""
  if precision is None and dimension_numbers == (((x.ndim - 1,), (0,)), ((), ())):
    return dense_matmul(x, kernel)
  return lax.dot_general(x, kernel, dimension_numbers, precision=precision)


# The convolutions in JAX, by `conv_impl` name; a backend may add its own (swapjax.backend).
CONV_FUNCTIONS = {"patches": conv3x3_patches, "lax": conv3x3_lax, "hybrid": conv3x3_hybrid}


class Conv3x3(nn.Module):
  """Keras `Conv2D(features, (3, 3), padding=...)` with glorot-uniform kernel, zero bias."""

  features: int
  padding: str = "SAME"
  conv: Callable = conv3x3_patches  # (x_BxHxWxC, kernel_3x3xCxO, padding) -> y
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", KERAS_KERNEL_INIT, (3, 3, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    y = self.conv(x.astype(self.dtype), kernel.astype(self.dtype), self.padding)
    return y + bias.astype(self.dtype)


def max_pool_2x2(x_BxHxWxC, train: bool = False):
  """Keras MaxPooling2D((2, 2)): 2x2 windows, stride 2, odd last rows and columns dropped.

  Two formulations with the same values (a max is exact), each the faster where it is used
  (benchmarks/README.md): for evaluation XLA's reduce-window; for training a max over a reshape
  of the input, whose gradient is a compare and a select, where the reduce-window's gradient is
  a windowed select-and-gather then a scatter (a scan of 85 memorize_mnist steps: 2.52 s with
  it, 1.52-1.68 s by reshape; AMD EPYC 2 cores, 2026-11-30,
  benchmarks/results/history/2026-11-30-onednn.md). The gradients differ only where a window's
  maximum is tied, which after a relu means zeros, whose gradient the relu drops either way (the
  golden studies reproduce bitwise)."""
  if not train:
    return nn.max_pool(x_BxHxWxC, (2, 2), strides=(2, 2), padding="VALID")
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class RateDropout(nn.Module):
  """Keras Dropout whose rate is an argument (a traced per-run number), so runs with rates 0
  and 0.5 share one compiled program. Rate 0 keeps every unit."""

  @nn.compact
  def __call__(self, x, rate, train: bool):
    if not train:
      return x
    keep = 1.0 - rate
    mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh, "sigmoid": nn.sigmoid}


def sequence_dropout_mask(module: nn.Module, rate: float, shape, train: bool):
  """Keras' recurrent-layer dropout: one mask per sequence (the same units dropped at every
  time step), scaled by 1 / (1 - rate); None when not training or rate 0."""
  if not train or rate == 0.0:
    return None
  keep = 1.0 - rate
  return jax.random.bernoulli(module.make_rng("dropout"), keep, shape) / keep


# d act(z) / dz from the output h = act(z): the backward pass needs only the stored states.
ACTIVATION_SLOPES = {
  "relu": lambda h: (h > 0).astype(h.dtype),
  "tanh": lambda h: 1 - h * h,
  "sigmoid": lambda h: h * (1 - h),
}


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def recurrence(activation: str, unroll: bool, xw_TxBxU, recurrent_UxU, mask_BxU):
  """h_t = act(xw_t + (h_{t-1} * mask) @ recurrent), h_{-1} = 0, over time; all h_t.
  `mask_BxU`: the recurrent dropout mask or None.

  Its gradient is backpropagation through time written out (a custom VJP): a reverse scan
  carries only dL/dh (one matmul per step, as the forward pass), and the recurrent kernel's
  gradient is one matmul over all time steps at the end. Autodiff of the scan instead adds
  each step's outer product into a carried kernel-sized gradient, reading and writing the
  whole kernel every time step: binary_addition on one device 278 s against 684 s (AMD EPYC
  2 cores, 2026-11-30, benchmarks/results/history/2026-11-30-binary-addition-scan.md)."""
  return _recurrence_fwd(activation, unroll, xw_TxBxU, recurrent_UxU, mask_BxU)[0]


def _recurrence_fwd(activation, unroll, xw_TxBxU, recurrent_UxU, mask_BxU):
  act = ACTIVATIONS[activation]

  def step(h_BxU, xw_BxU):
    h_in = h_BxU if mask_BxU is None else h_BxU * mask_BxU
    h_BxU = act(xw_BxU + h_in @ recurrent_UxU)
    return h_BxU, h_BxU

  t = xw_TxBxU.shape[0]
  _, h_TxBxU = lax.scan(step, jnp.zeros_like(xw_TxBxU[0]), xw_TxBxU, unroll=t if unroll else 1)
  return h_TxBxU, (h_TxBxU, recurrent_UxU, mask_BxU)


def _recurrence_bwd(activation, unroll, residuals, g_TxBxU):
  h_TxBxU, recurrent_UxU, mask_BxU = residuals
  slope = ACTIVATION_SLOPES[activation]

  def step(dh_BxU, xs):  # dh: dL/dh_t from the later time steps
    g_BxU, h_BxU = xs
    dz_BxU = (g_BxU + dh_BxU) * slope(h_BxU)
    dh_BxU = dz_BxU @ recurrent_UxU.T
    return (dh_BxU if mask_BxU is None else dh_BxU * mask_BxU), dz_BxU

  t = h_TxBxU.shape[0]
  xs = (g_TxBxU, h_TxBxU)
  _, dz_TxBxU = lax.scan(
    step, jnp.zeros_like(g_TxBxU[0]), xs, reverse=True, unroll=t if unroll else 1
  )
  h_in_TxBxU = jnp.concatenate([jnp.zeros_like(h_TxBxU[:1]), h_TxBxU[:-1]])
  if mask_BxU is not None:
    h_in_TxBxU = h_in_TxBxU * mask_BxU
  d_recurrent = jnp.einsum("tbu,tbv->uv", h_in_TxBxU, dz_TxBxU)
  d_mask = None if mask_BxU is None else jnp.zeros_like(mask_BxU)  # masks are not trained
  return dz_TxBxU, d_recurrent, d_mask


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


class SimpleRNN(nn.Module):
  """Keras `SimpleRNN(units, activation, dropout, recurrent_dropout, return_sequences=True)`:
  h_t = act((x_t * m_x) W + (h_{t-1} * m_h) U + b), h_0 = 0, over (B, T, F) -> (B, T, units);
  glorot-uniform `kernel`, orthogonal `recurrent_kernel`, zero `bias` (Keras' initialisers).
  The time loop is a `lax.scan` with a hand-written gradient (`recurrence`; `unroll`: all steps
  unrolled, the same arithmetic); a backend may hand in another implementation of the same
  loop, `recurrence(activation, xw_TxBxU, recurrent_UxU, mask_BxU) -> h_TxBxU`."""

  units: int
  activation: str = "tanh"
  dropout: float = 0.0
  recurrent_dropout: float = 0.0
  unroll: bool = False
  recurrence: Callable | None = None

  @nn.compact
  def __call__(self, x_BxTxF, train: bool = False, forest=None):
    f = x_BxTxF.shape[-1]
    kernel = self.param("kernel", KERAS_KERNEL_INIT, (f, self.units))
    recurrent = self.param("recurrent_kernel", nn.initializers.orthogonal(), (self.units,) * 2)
    bias = self.param("bias", nn.initializers.zeros, (self.units,))
    if forest is not None:
      return self.on_forest(x_BxTxF, kernel, recurrent, bias, forest, train)
    b = x_BxTxF.shape[0]
    input_mask = sequence_dropout_mask(self, self.dropout, (b, 1, f), train)
    state_mask = sequence_dropout_mask(self, self.recurrent_dropout, (b, self.units), train)
    if input_mask is not None:
      x_BxTxF = x_BxTxF * input_mask
    xw_TxBxU = jnp.moveaxis(x_BxTxF @ kernel + bias, 1, 0)
    if self.recurrence is not None:
      h_TxBxU = self.recurrence(self.activation, xw_TxBxU, recurrent, state_mask)
    else:
      h_TxBxU = recurrence(self.activation, self.unroll, xw_TxBxU, recurrent, state_mask)
    return jnp.moveaxis(h_TxBxU, 0, 1)

  def on_forest(self, x_SxF, kernel, recurrent, bias, forest, train: bool):
    """The layer on the rows of a `prefixes.Forest` (evaluation only): x (S, F) holds each
    row's last input; a row's state follows from its parent row's, step by step."""
    if train:
      raise ValueError("prefix forests are for evaluation; training runs per sample")
    act = ACTIVATIONS[self.activation]
    xw_SxU = x_SxF @ kernel + bias
    states = []
    for t in range(len(forest.offsets) - 1):
      xw = xw_SxU[forest.offsets[t] : forest.offsets[t + 1]]
      states.append(act(xw + states[-1][forest.parents(t)] @ recurrent) if t else act(xw))
    return jnp.concatenate(states)


class SpecNet(nn.Module):
  """A network from a declarative layer spec, with Keras' initialisers.

  Layers (strings): `conv:F` / `conv:F:same|valid` (3x3, stride 1, valid by default as in
  Keras), `maxpool` (2x2), `dropout:R` (a fixed rate) or `dropout` (the run's traced
  `dropout_rate`), `flatten`, `gap` (global average pooling), `dense:N` (on the last axis, so
  per time step after a recurrent layer), `rnn:N[:activation[:dropout[:recurrent_dropout]]]`
  (SimpleRNN returning every step, tanh by default), and the activations `relu`,
  `leaky_relu:S` (a fixed slope) or `leaky_relu` (the run's traced `leaky_slope`, Keras'
  0.3 by default), `tanh`, `sigmoid`. The last layer's outputs are the task's logits (softmax
  or sigmoid applied by the loss) or its predictions (regression).

  Each layer's output is sown into the `intermediates` collection when it is mutable (shapes
  for the memory estimate); otherwise sowing costs nothing.
  """

  layers: Sequence[str]
  conv: Callable = conv3x3_patches
  dtype: jnp.dtype = jnp.float32
  rnn_unroll: bool = False
  recurrence: Callable | None = None  # the recurrent layers' time loop; None: lax.scan

  @nn.compact
  def __call__(self, x, train: bool = False, dropout_rate=0.0, leaky_slope=0.3, forest=None):
    """`forest`: x holds the rows of a `prefixes.Forest` (S, F) of a causal sequence network's
    evaluation set; the outputs are per row (S, ...)."""
    for i, text in enumerate(self.layers):
      kind, args = parse_layer(text)
      if kind == "conv":
        padding = (args[1] if len(args) > 1 else "valid").upper()
        x = Conv3x3(int(args[0]), padding, self.conv, self.dtype)(x)
      elif kind == "maxpool":
        x = max_pool_2x2(x, train)
      elif kind == "dropout" and args:
        x = nn.Dropout(float(args[0]), deterministic=not train)(x)
      elif kind == "dropout":
        x = RateDropout()(x, dropout_rate, train)
      elif kind == "flatten":
        x = x.reshape(x.shape[0], -1)
      elif kind == "gap":
        x = x.mean(axis=(1, 2))
      elif kind == "dense":
        x = nn.Dense(
          int(args[0]),
          dtype=self.dtype,
          kernel_init=KERAS_KERNEL_INIT,
          dot_general=_dense_dot_general,
        )(x)
      elif kind == "rnn":
        activation = args[1] if len(args) > 1 else "tanh"
        rates = [float(a) for a in args[2:4]] + [0.0, 0.0]
        rnn = SimpleRNN(
          int(args[0]), activation, rates[0], rates[1], self.rnn_unroll, self.recurrence
        )
        x = rnn(x, train, forest)
      elif kind == "leaky_relu":
        x = nn.leaky_relu(x, float(args[0]) if args else leaky_slope)
      else:
        x = ACTIVATIONS[kind](x)
      self.sow("intermediates", f"{i}:{text}", x)
    return x.astype(jnp.float32)


def make_model(
  name: str, conv=conv3x3_patches, dropout: bool = True, compute_dtype: str = "float32"
) -> SpecNet:
  """A named model of the reports (layers.MODEL_SPECS) with the convolution `conv`."""
  return SpecNet(model_layers(name, dropout), conv, jnp.dtype(compute_dtype))


def config_model(config, conv=conv3x3_patches, recurrence=None) -> SpecNet:
  """The network a config trains, with the 3x3 convolution `conv` and the recurrent layers'
  time loop `recurrence` (None: the `lax.scan`); swapjax.backend chooses both."""
  dtype = jnp.dtype(config.engine.compute_dtype)
  return SpecNet(config_layers(config), conv, dtype, config.model.rnn_unroll, recurrence)
