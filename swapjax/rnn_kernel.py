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

from swapjax import native

HANDLERS = {
  "swapjax_recurrence_forward": "SwapjaxRecurrenceForward",
  "swapjax_recurrence_backward": "SwapjaxRecurrenceBackward",
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
