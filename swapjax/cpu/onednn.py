"""oneDNN's CPU convolutions inside XLA programs, through `jax.ffi` (`conv_impl="onednn"`).

XLA:CPU's own convolutions (and the patches-and-matmul form) run 3x3 convolutions of small CNNs
at a third of this CPU's matmul peak; oneDNN's direct convolutions, the ones PyTorch calls on a
CPU, reach most of it (benchmarks/README.md). This module compiles `csrc/onednn_conv.cc`
against an installed oneDNN on first use, caches the shared library, registers its three
handlers (forward, input gradient, kernel gradient) as XLA FFI targets, and wraps them as one
differentiable, vmappable 3x3 convolution.

Optional: `pip install -e '.[onednn]'` (oneDNN 3.2 from the package index, OpenMP build) and a
C++17 compiler (`$CXX`, else `c++`). Without them `available()` is False with the reason, and
`conv_impl="auto"` stays on the pure-JAX formulation. Environment:
  SWAPJAX_ONEDNN_ROOT   a prefix with include/oneapi/dnnl/dnnl.hpp and lib/libdnnl.so
                        (default: this Python's prefix, then /usr/local and /usr)
  SWAPJAX_ONEDNN_CACHE  where the compiled library goes (default ~/.cache/swapjax/onednn)
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from swapjax.cpu import native

HANDLERS = {
  "swapjax_onednn_conv_forward": "SwapjaxOnednnConvForward",
  "swapjax_onednn_conv_input_grad": "SwapjaxOnednnConvInputGrad",
  "swapjax_onednn_conv_kernel_grad": "SwapjaxOnednnConvKernelGrad",
}
WHAT = "the oneDNN kernels"


class OnednnUnavailable(native.KernelUnavailable):
  """oneDNN or a C++ compiler is missing, or the kernels did not build; the message says which."""


def _prefixes() -> list[Path]:
  root = os.environ.get("SWAPJAX_ONEDNN_ROOT")
  if root:
    return [Path(root)]
  return list(dict.fromkeys(Path(p) for p in (sys.prefix, sys.base_prefix, "/usr/local", "/usr")))


def _find_prefix() -> Path:
  for prefix in _prefixes():
    if (prefix / "include/oneapi/dnnl/dnnl.hpp").is_file() and (prefix / "lib/libdnnl.so").exists():
      return prefix
  where = ", ".join(str(p) for p in _prefixes())
  raise OnednnUnavailable(
    f"oneDNN headers and libdnnl.so not found under {where} (pip install -e '.[onednn]')"
  )


def build() -> Path:
  """The compiled kernels' shared library, built into the cache unless already there."""
  prefix = _find_prefix()
  lib = prefix / "lib"
  version = (prefix / "include/oneapi/dnnl/dnnl_version.h").read_bytes()
  flags = ["-O2", f"-I{prefix / 'include'}", f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"]
  try:
    return native.build(
      "onednn_conv", WHAT, flags, [version, str(prefix).encode()], "onednn", "SWAPJAX_ONEDNN_CACHE"
    )
  except native.KernelUnavailable as e:
    raise OnednnUnavailable(str(e)) from None


@functools.cache  # a call that raises is not cached: the next one tries again
def load() -> None:
  """Builds (once) and registers the kernels; raises OnednnUnavailable with the reason."""
  path = build()
  try:
    native.register(path, HANDLERS)
  except native.KernelUnavailable as e:
    raise OnednnUnavailable(str(e)) from None


@functools.cache
def unavailable_reason() -> str:
  """'' when the kernels load here, else why not (one line)."""
  return native.unavailable_reason(load)


def available() -> bool:
  return not unavailable_reason()


def _call(target: str, shape, a, b, pad: int):
  out = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.ffi.ffi_call(target, out, vmap_method="broadcast_all")(a, b, pad=np.int64(pad))


def _pad(padding: str) -> int:
  return {"SAME": 1, "VALID": 0}[padding]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3x3(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  """3x3 stride-1 convolution (NHWC, HWIO, float32) by oneDNN; under vmap, one call for all
  models, which the kernel runs one after the other, each on every core."""
  load()
  pad = _pad(padding)
  b, h, w, _ = x_BxHxWxC.shape
  shape = (b, h + 2 * pad - 2, w + 2 * pad - 2, kernel_3x3xCxO.shape[-1])
  return _call("swapjax_onednn_conv_forward", shape, x_BxHxWxC, kernel_3x3xCxO, pad)


def _forward(x, kernel, padding):
  return conv3x3(x, kernel, padding), (x, kernel)


def _backward(padding, residuals, dy):
  x, kernel = residuals
  pad = _pad(padding)
  dx = _call("swapjax_onednn_conv_input_grad", x.shape, dy, kernel, pad)
  d_kernel = _call("swapjax_onednn_conv_kernel_grad", kernel.shape, x, dy, pad)
  return dx, d_kernel


conv3x3.defvjp(_forward, _backward)
