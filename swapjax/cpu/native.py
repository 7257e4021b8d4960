"""Builds swapjax's C++ kernels (`csrc/`) into a per-user cache and registers them with XLA.

The kernels are XLA FFI handlers (`jax.ffi`): `csrc/onednn_conv.cc` (oneDNN's convolutions,
onednn.py) and `csrc/recurrence.cc` (a simple RNN's time loop, rnn_kernel.py).
Each is compiled on first use with the system C++ compiler (`$CXX`, else `c++` or `g++`) into
`~/.cache/swapjax/<folder>` (or the folder an environment variable names), keyed by everything
the build depends on (`build_key`): the sources, the compiler and its version, the flags, jax's
and jaxlib's versions and XLA's FFI headers, and what the caller adds (the CPU, oneDNN's
version), so a changed source, compiler, flag, library or jax rebuilds it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import jaxlib

CSRC = Path(__file__).resolve().parent / "csrc"


class KernelUnavailable(RuntimeError):
  """A kernel that cannot be built or loaded here; the message says why (one line)."""


def compiler(what: str) -> str:
  cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  if not cxx:
    raise KernelUnavailable(f"no C++ compiler ($CXX, c++ or g++) to build {what}")
  return cxx


def cache_dir(name: str, env: str) -> Path:
  default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "swapjax" / name
  return Path(os.environ.get(env, default))


def build(
  name: str, what: str, flags: list[str], key_parts: list[bytes], folder: str, env: str
) -> Path:
  """`csrc/<name>.cc` compiled with `flags` (after the source) into the cache folder `folder`
  (or `$env`); `key_parts`: what else the build depends on. Raises KernelUnavailable with the
  compiler's first error."""
  cxx = compiler(what)
  source = CSRC / f"{name}.cc"
  include = jax.ffi.include_dir()
  target = cache_dir(folder, env) / f"{name}-{build_key(name, cxx, flags, key_parts)}.so"
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
  os.close(fd)
  cmd = [
    cxx,
    "-std=c++17",
    "-shared",
    "-fPIC",
    "-w",
    f"-I{include}",
    str(source),
    *flags,
    "-o",
    tmp,
  ]
  try:
    done = subprocess.run(cmd, capture_output=True, text=True)
  except OSError as e:  # $CXX names no program
    os.unlink(tmp)
    raise KernelUnavailable(f"building {what} failed: {cxx}: {e.strerror}") from None
  if done.returncode != 0:
    os.unlink(tmp)
    first = next((x for x in done.stderr.splitlines() if "error" in x), done.stderr.strip())
    raise KernelUnavailable(f"building {what} failed: {first[:300]}")
  os.replace(tmp, target)  # atomic: processes building at once each write their own file
  return target


def build_key(name: str, cxx: str, flags: list[str], key_parts: list[bytes]) -> str:
  """The cache key of `csrc/<name>.cc` built by `cxx` with `flags`: a hash of the C++ sources
  (the file and csrc's headers), the compiler's path and version, the flags, jax's and jaxlib's
  versions, the FFI headers the build includes, and `key_parts`."""
  sources = [CSRC / f"{name}.cc", *sorted(CSRC.glob("*.h"))]
  include = Path(jax.ffi.include_dir())
  headers = sorted((include / "xla" / "ffi" / "api").glob("*.h"))
  parts = [
    *(f"{p.name}\0".encode() + p.read_bytes() for p in sources),
    cxx.encode(),
    compiler_version(cxx),
    "\0".join(flags).encode(),
    f"jax {jax.__version__} jaxlib {jaxlib.__version__}".encode(),
    str(include).encode(),
    *(p.read_bytes() for p in headers),
    *key_parts,
  ]
  return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


@functools.cache
def compiler_version(cxx: str) -> bytes:
  """`cxx --version`'s output (b"" where it does not answer: the build then says why)."""
  try:
    done = subprocess.run([cxx, "--version"], capture_output=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired):
    return b""
  return done.stdout


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
