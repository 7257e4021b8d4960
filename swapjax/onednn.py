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

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

SOURCE = Path(__file__).resolve().parent / "csrc" / "onednn_conv.cc"
HANDLERS = {
  "swapjax_onednn_conv_forward": "SwapjaxOnednnConvForward",
  "swapjax_onednn_conv_input_grad": "SwapjaxOnednnConvInputGrad",
  "swapjax_onednn_conv_kernel_grad": "SwapjaxOnednnConvKernelGrad",
}


class OnednnUnavailable(RuntimeError):
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


def _compiler() -> str:
  cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  if not cxx:
    raise OnednnUnavailable("no C++ compiler ($CXX, c++ or g++) to build the oneDNN kernels")
  return cxx


def _cache_dir() -> Path:
  default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "swapjax" / "onednn"
  return Path(os.environ.get("SWAPJAX_ONEDNN_CACHE", default))


def build() -> Path:
  """The compiled kernels' shared library, built into the cache unless already there."""
  prefix, cxx = _find_prefix(), _compiler()
  include = jax.ffi.include_dir()
  version = (prefix / "include/oneapi/dnnl/dnnl_version.h").read_bytes()
  key = hashlib.sha256(
    b"\0".join([SOURCE.read_bytes(), version, str(prefix).encode(), cxx.encode(), include.encode()])
  ).hexdigest()[:16]
  target = _cache_dir() / f"onednn_conv-{key}.so"
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  lib = prefix / "lib"
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
  os.close(fd)
  cmd = [
    cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{include}", f"-I{prefix / 'include'}",
    str(SOURCE), f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}", "-o", tmp,
  ]  # fmt: skip
  done = subprocess.run(cmd, capture_output=True, text=True)
  if done.returncode != 0:
    os.unlink(tmp)
    first = next((x for x in done.stderr.splitlines() if "error" in x), done.stderr.strip())
    raise OnednnUnavailable(f"building the oneDNN kernels failed: {first[:300]}")
  os.replace(tmp, target)  # atomic: processes building at once each write their own file
  return target


@functools.cache  # a call that raises is not cached: the next one tries again
def load() -> None:
  """Builds (once) and registers the kernels; raises OnednnUnavailable with the reason."""
  path = build()
  try:
    library = ctypes.CDLL(str(path))
  except OSError as e:
    raise OnednnUnavailable(f"loading {path} failed: {e}") from None
  for target, symbol in HANDLERS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")


@functools.cache
def unavailable_reason() -> str:
  """'' when the kernels load here, else why not (one line)."""
  try:
    load()
  except OnednnUnavailable as e:
    return str(e)
  return ""


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
