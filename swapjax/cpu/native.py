"""Builds swapjax's C++ kernels (`csrc/`) into a per-user cache and registers them with XLA.

The kernels are XLA FFI handlers (`jax.ffi`): `csrc/onednn_conv.cc` (oneDNN's convolutions,
onednn.py) and `csrc/recurrence.cc` (a simple RNN's time loop, rnn_kernel.py).
Each is compiled on first use (`swapjax/cxx.py`) with the system C++ compiler (`$CXX`, else
`c++` or `g++`) into `~/.cache/swapjax/<folder>` (or the folder an environment variable names),
keyed by everything the build depends on (`build_key`): the sources, the compiler and its
version, the flags, jax's and jaxlib's versions and XLA's FFI headers, and what the caller adds
(the CPU, oneDNN's version), so a changed source, compiler, flag, library or jax rebuilds it.
"""

from __future__ import annotations

import ctypes
import hashlib
import platform
from pathlib import Path

import jax
import jaxlib

from swapjax import cxx
from swapjax.cxx import compiler_version  # noqa: F401 - build_key's, replaceable in tests

CSRC = Path(__file__).resolve().parent / "csrc"


class KernelUnavailable(cxx.BuildError):
  """A kernel that cannot be built or loaded here; the message says why (one line)."""


def compiler(what: str) -> str:
  return cxx.compiler(what, KernelUnavailable)


def build(
  name: str, what: str, flags: list[str], key_parts: list[bytes], folder: str, env: str
) -> Path:
  """`csrc/<name>.cc` compiled with `flags` (after the source) against XLA's FFI headers into
  the cache folder `folder` (or `$env`); `key_parts`: what else the build depends on. Raises
  KernelUnavailable with the compiler's first error."""
  compiler_path = compiler(what)
  key = build_key(name, compiler_path, flags, key_parts)
  include = [f"-I{jax.ffi.include_dir()}"]
  target_dir = cxx.cache_dir(folder, env)
  source = CSRC / f"{name}.cc"
  return cxx.build(source, what, compiler_path, include + flags, key, target_dir, KernelUnavailable)


def build_key(name: str, compiler_path: str, flags: list[str], key_parts: list[bytes]) -> str:
  """The cache key of `csrc/<name>.cc` built by `compiler_path` with `flags`: a hash of the C++
  sources (the file and csrc's headers), the compiler's path and version, the flags, jax's and
  jaxlib's versions, the FFI headers the build includes, and `key_parts`."""
  sources = [CSRC / f"{name}.cc", *sorted(CSRC.glob("*.h"))]
  include = Path(jax.ffi.include_dir())
  headers = sorted((include / "xla" / "ffi" / "api").glob("*.h"))
  parts = [
    *(f"{p.name}\0".encode() + p.read_bytes() for p in sources),
    compiler_path.encode(),
    compiler_version(compiler_path),
    "\0".join(flags).encode(),
    f"jax {jax.__version__} jaxlib {jaxlib.__version__}".encode(),
    str(include).encode(),
    *(p.read_bytes() for p in headers),
    *key_parts,
  ]
  return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def register(path: Path, handlers: dict[str, str]) -> None:
  """Loads the library at `path` and registers its FFI handlers {target name: C symbol}."""
  try:
    library = ctypes.CDLL(str(path))
  except OSError as e:
    raise KernelUnavailable(f"loading {path} failed: {e}") from None
  for target, symbol in handlers.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")


def unavailable_reason(load) -> str:
  """'' when `load()` (a module's build-and-register) succeeds, else its one-line reason."""
  try:
    load()
  except KernelUnavailable as e:
    return str(e)
  return ""


def cpu_key() -> bytes:
  """What a `-march=native` build depends on: the machine and its CPU's instruction sets."""
  flags = b""
  try:
    with open("/proc/cpuinfo", "rb") as f:
      flags = next((line for line in f if line.startswith(b"flags")), b"")
  except OSError:
    pass
  return f"{platform.machine()} {platform.processor()}".encode() + flags
