"""A simple RNN layer's time loop as one C++ call per pass, through `jax.ffi` (`rnn_impl="native"`).

`models.recurrence` runs the loop as a `lax.scan`: per time step a small matrix product and a
few elementwise operations for all models. For report 002's tiny RNNs (batch 2, 16 units) XLA:CPU
spends most of a training step starting those operations, not computing (benchmarks/README.md).
`csrc/recurrence.cc` computes the same recurrence, forward and its hand-written backward (the
scan's custom VJP, models._recurrence_bwd), one model after another in one call, with the
products held in vector registers. It needs only a C++ compiler; it is built on first use
(`-march=native` on x86-64) into `~/.cache/swapjax/recurrence` (or `$SWAPJAX_KERNEL_CACHE`).
Float32 on the CPU. The results agree with the scan to float rounding (tests/test_rnn_kernel.py).
"""

from __future__ import annotations

import functools
import platform

import jax
import jax.numpy as jnp
import numpy as np

from swapjax.cpu import native

HANDLERS = {
  "swapjax_recurrence_forward": "SwapjaxRecurrenceForward",
  "swapjax_recurrence_backward": "SwapjaxRecurrenceBackward",
  "swapjax_rnn_sgd_epoch": "SwapjaxRnnSgdEpoch",
}
ACTIVATION_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2}  # csrc/recurrence.cc's Activation


@functools.cache  # a call that raises is not cached: the next one tries again
def load() -> None:
  """Builds (once) and registers the kernels; raises native.KernelUnavailable with the reason."""
  x86 = platform.machine().lower() in ("x86_64", "amd64")
  flags = ["-O3", "-march=native"] if x86 else ["-O3"]
  path = native.build(
    "recurrence", "the RNN kernel", flags, [native.cpu_key()], "recurrence", "SWAPJAX_KERNEL_CACHE"
  )
  native.register(path, HANDLERS)


@functools.cache
def unavailable_reason() -> str:
  """'' when the kernels load here, else why not (one line)."""
  return native.unavailable_reason(load)


def available() -> bool:
  return not unavailable_reason()


def _operands(activation: str, shape, mask_BxU):
  """The mask operand (ones when there is none) and the kernel's attributes."""
  masked = mask_BxU is not None
  mask = mask_BxU if masked else jnp.ones(shape, jnp.float32)
  attrs = {"activation": np.int64(ACTIVATION_CODES[activation]), "masked": np.int64(masked)}
  return mask, attrs


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def recurrence(activation: str, xw_TxBxU, recurrent_UxU, mask_BxU):
  """h_t = act(xw_t + (h_{t-1} * mask) @ recurrent), h_{-1} = 0, over time; all h_t (float32).
  `models.recurrence` with `rnn_impl="native"`; under vmap, one call for all models."""
  return _forward(activation, xw_TxBxU, recurrent_UxU, mask_BxU)[0]


def _forward(activation, xw_TxBxU, recurrent_UxU, mask_BxU):
  load()
  mask, attrs = _operands(activation, xw_TxBxU.shape[1:], mask_BxU)
  out = jax.ShapeDtypeStruct(xw_TxBxU.shape, jnp.float32)
  call = jax.ffi.ffi_call("swapjax_recurrence_forward", out, vmap_method="broadcast_all")
  h_TxBxU = call(xw_TxBxU, recurrent_UxU, mask, **attrs)
  return h_TxBxU, (h_TxBxU, recurrent_UxU, mask_BxU)


def _backward(activation, residuals, g_TxBxU):
  h_TxBxU, recurrent_UxU, mask_BxU = residuals
  mask, attrs = _operands(activation, h_TxBxU.shape[1:], mask_BxU)
  out = (
    jax.ShapeDtypeStruct(h_TxBxU.shape, jnp.float32),
    jax.ShapeDtypeStruct(recurrent_UxU.shape, jnp.float32),
  )
  call = jax.ffi.ffi_call("swapjax_recurrence_backward", out, vmap_method="broadcast_all")
  dz_TxBxU, d_recurrent = call(g_TxBxU, h_TxBxU, recurrent_UxU, mask, **attrs)
  d_mask = None if mask_BxU is None else jnp.zeros_like(mask_BxU)  # masks are not trained
  return dz_TxBxU, d_recurrent, d_mask


recurrence.defvjp(_forward, _backward)


# --------------------------------------------------------------- the fused SGD epoch
def fused_epoch_reason(config) -> str:
  """'' when `rnn_impl=fused` can train this config's network, else why not (one line): an
  `rnn` layer without dropout then a `dense` layer (per time step), sigmoid outputs with mean
  squared error, plain SGD, float32, no augmentation or gradient accumulation."""
  from swapjax import layers, train

  specs = [layers.parse_layer(text) for text in layers.config_layers(config)]
  if len(specs) != 2 or specs[0][0] != "rnn" or specs[1][0] != "dense":
    return "it trains an rnn layer then a dense layer only"
  rnn_args = specs[0][1]
  if rnn_args[1:2] and rnn_args[1] not in ACTIVATION_CODES or any(float(a) for a in rnn_args[2:]):
    return "it trains a relu, tanh or sigmoid rnn layer without dropout only"
  if config.model.task != "sigmoid" or train.task_loss(config) != "mean_squared_error":
    return "it trains sigmoid outputs with mean squared error only"
  if config.optim.optimizer != "sgd" or config.optim.momentum:
    return "it trains with plain SGD (no momentum) only"
  if config.engine.compute_dtype != "float32" or config.model.rnn_unroll:
    return "it computes in float32, without rnn_unroll"
  if train.augments(config) or config.optim.micro_batches > 1:
    return "it trains without augmentation or micro_batches"
  return ""


def fused_activation(config) -> str:
  from swapjax import layers

  args = layers.parse_layer(layers.config_layers(config)[0])[1]
  return args[1] if len(args) > 1 else "tanh"


def sgd_epoch(
  activation: str,
  params,
  images_VxPxTxF,
  labels_RxPxTxK,
  variant_R,
  ids_SxRxMxB,
  mask_SxB,
  lr_R,
  active_R,
):
  """One epoch of plain SGD for every model (R, M) of an rnn-then-dense network: the steps of
  `train.make_train_epoch` (per-step batch `ids`, masked mean squared error of the sigmoid
  outputs, `w -= lr * grad`; a run not `active` keeps its weights) as one C++ call that trains
  one model after another. Returns the new params and the loss and correct bits per step
  (S, R, M), as the step's `loss` and `hits`."""
  load()
  rnn, dense = params["SimpleRNN_0"], params["Dense_0"]
  r, m = rnn["kernel"].shape[:2]
  s, b = mask_SxB.shape
  flat = lambda a: a.reshape(r * m, *a.shape[2:]).astype(jnp.float32)
  per_model = lambda a_R: jnp.repeat(a_R, m)
  weights = (
    flat(rnn["kernel"]),
    flat(rnn["bias"]),
    flat(rnn["recurrent_kernel"]),
    flat(dense["kernel"]),
    flat(dense["bias"]),
  )
  ids = jnp.moveaxis(ids_SxRxMxB, 0, 2).reshape(r * m, s, b).astype(jnp.int32)
  out = tuple(jax.ShapeDtypeStruct(w.shape, jnp.float32) for w in weights)
  out += (jax.ShapeDtypeStruct((r * m, s), jnp.float32),) * 2
  call = jax.ffi.ffi_call("swapjax_rnn_sgd_epoch", out)
  *new, loss, hits = call(
    images_VxPxTxF.astype(jnp.float32),
    labels_RxPxTxK.astype(jnp.float32),
    per_model(variant_R).astype(jnp.int32),
    (jnp.arange(r * m, dtype=jnp.int32) // m),
    ids,
    mask_SxB.astype(jnp.float32),
    per_model(lr_R).astype(jnp.float32),
    per_model(active_R).astype(jnp.float32),
    *weights,
    activation=np.int64(ACTIVATION_CODES[activation]),
  )
  shaped = [w.reshape(r, m, *w.shape[1:]) for w in new]
  new_params = {
    **params,
    "SimpleRNN_0": dict(zip(("kernel", "bias", "recurrent_kernel"), shaped[:3], strict=True)),
    "Dense_0": dict(zip(("kernel", "bias"), shaped[3:], strict=True)),
  }
  unflat = lambda a: jnp.moveaxis(a.reshape(r, m, s), 2, 0)
  return new_params, unflat(loss), unflat(hits)


def make_fused_train_epoch(config):
  """`epoch(parts) -> train_epoch` for `train.make_train_epoch`: the same SGD steps as one C++
  call per epoch (no dropout, so the plan's keys go unused)."""
  from swapjax import train

  activation = fused_activation(config)

  def build(parts):
    def train_epoch_fused(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R):
      ids, _ = parts.plan(idx_RxMxN, key_RxM)
      params, loss_SxRxM, hits_SxRxM = sgd_epoch(
        activation,
        params,
        train.normalize(pool.images_VxPxHxWxC, config.data.normalize),
        pool.labels_RxP,
        pool.variant_R,
        ids,
        parts.mask_SxB,
        runs.numbers["learning_rate"],
        active_R,
      )
      return params, opt_state, loss_SxRxM.mean(0), hits_SxRxM.sum(0) / parts.n_train

    return train_epoch_fused

  return build
