"""The backend door: the engine imports no backend, a GPU/TPU run never loads the CPU's
kernels, and swapjax/ has no import circles (imports inside functions included)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swapjax"
# The engine: what a study computes, for any backend (DESIGN 11).
ENGINE = (
  "config",
  "config.fields",
  "config.values",
  "config.runs",
  "config.validation",
  "config.overrides",
  "layers",
  "models",
  "train",
  "losses",
  "evaluation",
  "pool",
  "rounds",
  "state",
  "swap",
  "policies",
  "augment",
)


def _module_name(path: Path, root: Path) -> str:
  parts = list(path.relative_to(root.parent).with_suffix("").parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
  """{module: the swapjax modules it imports anywhere in its file (functions included)}."""
  modules = {_module_name(p, root): p for p in root.rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        found.update(a.name for a in node.names)
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
          parts = package.split(".")[: len(package.split(".")) - node.level + 1]
          base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
          full = f"{base}.{alias.name}"
          found.add(full if full in modules else base)
    graph[name] = {m for m in found if m in modules and m != name}
  return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph[v]):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def test_the_circle_finder_finds_a_circle(tmp_path):
  pkg = tmp_path / "swapjax"
  pkg.mkdir()
  (pkg / "__init__.py").write_text("")
  (pkg / "a.py").write_text("def f():\n  from swapjax import b\n")
  (pkg / "b.py").write_text("from swapjax.a import f\n")
  (pkg / "c.py").write_text("from . import a\n")
  assert circles(import_graph(pkg)) == [["swapjax.a", "swapjax.b"]]


def test_no_import_circles_in_swapjax():
  assert circles(import_graph()) == []


def test_the_engine_imports_no_backend():
  graph = import_graph()
  for name in ENGINE:
    reached, todo = set(), [f"swapjax.{name}"]
    while todo:  # everything the engine module reaches, directly or not
      for dep in graph[todo.pop()] - reached:
        reached.add(dep)
        todo.append(dep)
    backend = sorted(m for m in reached if m == "swapjax.backend" or m.startswith("swapjax.cpu"))
    assert not backend, f"swapjax.{name} reaches {backend}"


def test_only_the_door_imports_the_cpu_package():
  graph = import_graph()
  importers = {m for m, deps in graph.items() if any(d.startswith("swapjax.cpu") for d in deps)} - {
    m for m in graph if m.startswith("swapjax.cpu")
  }
  assert importers == {"swapjax.backend"}


GPU_RUN = """
import sys
import jax
from swapjax import backend, config as configlib, registry, runner

jax.default_backend = lambda: "gpu"  # what JAX says on a GPU; the arrays stay on the CPU here
backend._expects_cpu = lambda: False
for name, sets in [
  ("tiny", ["rounds=1", "conv_impl=auto"]),
  ("binary_addition", ["rounds=1", "num_seeds=1", "pool_size=32", "holdout_size=16",
                       "groups=base,units128", "tensorboard=false"]),
]:
  config = configlib.apply_overrides(registry.get_config(name), sets)
  backend.prepare_process(config)
  runner.run(config, name, runner.RunOptions(workdir=sys.argv[1] + "/" + name, progress=False))
loaded = sorted(m for m in sys.modules if m.startswith("swapjax.cpu"))
print("cpu modules:", loaded)
assert not loaded, loaded
"""


def test_a_gpu_run_never_imports_the_cpu_backend(tmp_path):
  done = subprocess.run(
    [sys.executable, "-c", textwrap.dedent(GPU_RUN), str(tmp_path)],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
  assert "cpu modules: []" in done.stdout
  assert (tmp_path / "binary_addition" / "report.md").exists()


@pytest.mark.parametrize("key,value", [("conv_impl", "onednn"), ("rnn_impl", "native")])
def test_cpu_kernels_named_on_a_gpu_are_one_line_errors(monkeypatch, key, value):
  import jax

  from swapjax import backend, registry
  from swapjax.config import ConfigError, apply_overrides

  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  config = apply_overrides(registry.get_config("binary_addition"), [f"{key}={value}"])
  with pytest.raises(ConfigError, match=f"{key}={value} runs on the CPU only, not on gpu"):
    backend.check(config)


def test_no_jax_internals():
  found = [
    f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
    for path in sorted(PACKAGE.rglob("*"))
    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so"
    for number, line in enumerate(path.read_bytes().decode(errors="replace").splitlines(), 1)
    if "jax._src" in line or "jax/_src" in line
  ]
  assert not found, "\n".join(found)
