"""The C++ kernels' build cache is keyed by everything a build depends on (swapjax/cpu/native.py,
compiled by swapjax/cxx.py): the same inputs give the same key, and a changed source, flag,
compiler, jax or jaxlib version gives another one (after a jax upgrade in the same environment
the kernels rebuild)."""

import shutil
import subprocess

import jax
import jaxlib
import pytest

from swapjax import cxx
from swapjax.cpu import native

FLAGS = ["-O3"]
PARTS = [b"caller's part"]


@pytest.fixture
def sources(tmp_path, monkeypatch):
  """A copy of csrc/ that the build reads instead of the package's."""
  copy = tmp_path / "csrc"
  shutil.copytree(native.CSRC, copy)
  monkeypatch.setattr(native, "CSRC", copy)
  monkeypatch.setattr(native, "compiler_version", lambda cxx: f"{cxx} 1.0".encode())
  return copy


def _key(cxx="/usr/bin/c++", flags=FLAGS, parts=PARTS):
  return native.build_key("recurrence", cxx, flags, parts)


def test_the_same_inputs_give_the_same_key(sources):
  assert _key() == _key()
  assert _key() != native.build_key("onednn_conv", "/usr/bin/c++", FLAGS, PARTS)


def test_a_changed_source_changes_the_key(sources):
  before = _key()
  source = sources / "recurrence.cc"
  source.write_bytes(source.read_bytes() + b"\n// changed\n")
  changed = _key()
  assert changed != before
  (sources / "shared.h").write_text("// a header beside the sources\n")
  assert _key() != changed


@pytest.mark.parametrize("module", [jax, jaxlib])
def test_a_changed_jax_or_jaxlib_version_changes_the_key(sources, monkeypatch, module):
  before = _key()
  monkeypatch.setattr(module, "__version__", module.__version__ + ".post1")
  assert _key() != before


def test_flags_compiler_and_callers_parts_are_in_the_key(sources, monkeypatch):
  before = _key()
  assert _key(flags=["-O2"]) != before
  assert _key(flags=["-O3", "-march=native"]) != before
  assert _key(cxx="/usr/bin/g++") != before
  assert _key(parts=[b"another part"]) != before
  monkeypatch.setattr(native, "compiler_version", lambda cxx: b"c++ 2.0")
  assert _key() != before


def test_a_jax_upgrade_rebuilds(sources, tmp_path, monkeypatch):
  """The cached library is reused for the same inputs and built again after a jax upgrade
  (the compiler is faked: it writes its output file)."""
  compiles = []

  def fake_run(cmd, **kwargs):
    compiles.append(cmd)
    with open(cmd[cmd.index("-o") + 1], "wb") as f:
      f.write(b"library")
    return subprocess.CompletedProcess(cmd, 0, "", "")

  monkeypatch.setattr(cxx.subprocess, "run", fake_run)
  monkeypatch.setenv("CXX", "/usr/bin/c++")
  monkeypatch.setenv("SWAPJAX_TEST_KERNEL_CACHE", str(tmp_path / "cache"))
  build = lambda: native.build("recurrence", "x", FLAGS, PARTS, "x", "SWAPJAX_TEST_KERNEL_CACHE")
  first = build()
  assert first == tmp_path / "cache" / f"recurrence-{_key()}.so" and len(compiles) == 1
  assert build() == first and len(compiles) == 1  # cached
  monkeypatch.setattr(jax, "__version__", jax.__version__ + ".post1")
  second = build()
  assert second != first and second.exists() and len(compiles) == 2
