"""Compiles one of swapjax's C++ sources into a shared library in a per-user cache.

The system C++ compiler (`$CXX`, else `c++` or `g++`) builds `<source stem>-<key>.so` into
`~/.cache/swapjax/<folder>` (or the folder an environment variable names) once; the caller's
`key` names everything the build depends on, so a changed source, compiler or flag builds anew.
Used by the CPU backend's XLA kernels (`swapjax/cpu/native.py`) and by the host's metrics text
(`swapjax/rows_text.py`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class BuildError(RuntimeError):
  """A library that cannot be built or loaded here; the message says why (one line)."""


def compiler(what: str, error: type[BuildError] = BuildError) -> str:
  cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
  if not cxx:
    raise error(f"no C++ compiler ($CXX, c++ or g++) to build {what}")
  return cxx


@functools.cache
def compiler_version(cxx: str) -> bytes:
  """`cxx --version`'s output (b"" where it does not answer: the build then says why)."""
  try:
    done = subprocess.run([cxx, "--version"], capture_output=True, timeout=60)
  except (OSError, subprocess.TimeoutExpired):
    return b""
  return done.stdout


def cache_dir(name: str, env: str) -> Path:
  default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "swapjax" / name
  return Path(os.environ.get(env, default))


def build(
  source: Path,
  what: str,
  cxx: str,
  flags: list[str],
  key: str,
  target_dir: Path,
  error: type[BuildError] = BuildError,
) -> Path:
  """`source` compiled by `cxx` (C++17, `flags` after the source) into
  `target_dir/<stem>-<key>.so`, unless that file exists. Raises `error` with the compiler's
  first error."""
  target = target_dir / f"{source.stem}-{key}.so"
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
  os.close(fd)
  cmd = [cxx, "-std=c++17", "-shared", "-fPIC", "-w", str(source), *flags, "-o", tmp]
  try:
    done = subprocess.run(cmd, capture_output=True, text=True)
  except OSError as e:  # $CXX names no program
    os.unlink(tmp)
    raise error(f"building {what} failed: {cxx}: {e.strerror}") from None
  if done.returncode != 0:
    os.unlink(tmp)
    first = next((x for x in done.stderr.splitlines() if "error" in x), done.stderr.strip())
    raise error(f"building {what} failed: {first[:300]}")
  os.replace(tmp, target)  # atomic: processes building at once each write their own file
  return target
