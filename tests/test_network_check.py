"""A network that does not fit its data fails before anything is written: one line, exit 2."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from swapjax import config as C
from swapjax import data, generated, network_check, registry

REPO = Path(__file__).resolve().parent.parent


def _cli(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  command = [sys.executable, "-m", "swapjax.main", *args]
  return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)


# Each a new user's first try: before the check, a C++ or JAX traceback, NaN, or a silent
# broadcast (3 outputs against 1-bit targets ran to the end); a variant without `name:`
# silently replaced iris' three groups with one.
CLI_CASES = [
  ("iris", "layers=rnn:4,dense:3", "layer 1 'rnn:4' needs sequences (time, features); iris gives"),
  ("iris", "layers=maxpool,dense:3", "layer 1 'maxpool' needs images"),
  ("binary_addition", "layers=conv:8,flatten,dense:1", "binary_addition gives sequences (8, 2)"),
  ("iris", "layers=dense:12,relu,dense:2", "'dense:2' gives 2 outputs; iris has 3 classes"),
  ("binary_addition", "layers=rnn:16:relu,dense:3", "binary_addition's targets are (8, 1)"),
  ("iris", "variants=bad", "variants=bad: each variant is name:key=value+...;"),
]


@pytest.mark.parametrize(("experiment", "item", "needle"), CLI_CASES)
def test_cli_network_that_does_not_fit_is_one_line_exit_2(tmp_path, experiment, item, needle):
  result = _cli(f"--experiment={experiment}", "--set", item, f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2, result.stderr
  assert needle in result.stderr and "Traceback" not in result.stderr, result.stderr
  assert not (tmp_path / "w").exists()  # nothing written
  errors = [line for line in result.stderr.splitlines() if "error" in line]
  assert len(errors) == 1 and errors[0].startswith("swapjax: error: ") and needle in errors[0]


def _base(experiment: str, **changes) -> C.Config:
  return registry.get_config(experiment).replace(variants="", groups=(), **changes)


def _data_shapes(dataset: str):
  """(input shape, target shape, classes) of one sample, without loading an image set."""
  if dataset in data.SHAPES:
    return data.SHAPES[dataset], (), network_check.num_classes(dataset, np.zeros(1, np.int32))
  ds = generated.load(dataset, 0)
  classes = network_check.num_classes(dataset, ds.train_labels)
  return ds.image_shape, ds.train_labels.shape[1:], classes


def _check(config: C.Config):
  return network_check.check_network(config, *_data_shapes(config.dataset))


@pytest.mark.parametrize(
  ("experiment", "changes", "needle"),
  [
    ("iris", {"layers": ("conv:8", "flatten", "dense:3")}, "layer 1 'conv:8' needs images"),
    (
      "binary_addition",
      {"layers": ("rnn:8", "gap", "dense:1")},
      "layer 2 'gap' needs images (height, width, channels); layer 1 'rnn:8' gives sequences "
      "(8, 8)",
    ),
    ("mnist_mlp", {"layers": ("rnn:8", "dense:10")}, "mnist gives images (28, 28, 1)"),
    ("mnist_mlp", {"layers": ("flatten", "dense:8")}, "gives 8 outputs; mnist has 10 classes"),
    (
      "mnist_mlp",
      {"layers": ("conv:8", "dense:10")},
      "'dense:10' gives outputs (26, 26, 10) per sample; mnist's one label per sample need (10,)",
    ),
    (
      "mnist_mlp",
      {"layers": ("conv:8", "maxpool", "conv:8", "maxpool") + ("conv:8",) * 3 + ("flatten",)},
      "layer 7 'conv:8' needs images of at least 3x3 (valid padding; conv:8:same keeps the size);"
      " layer 6 'conv:8' gives images (1, 1, 8)",
    ),
    ("mnist_mlp", {"layers": ("maxpool",) * 5 + ("flatten", "dense:10")}, "layer 5 'maxpool'"),
    ("binary_addition", {"layers": ("rnn:8", "dense:1"), "task": "softmax"}, "float targets"),
    ("iris", {"layers": ("dense:1",), "task": "sigmoid"}, "iris gives class labels (3 classes)"),
    ("regression", {"layers": ("dense:2",)}, "line_a's targets are (1,) (task regression"),
  ],
)
def test_networks_that_do_not_fit_their_data(experiment, changes, needle):
  with pytest.raises(C.ConfigError) as e:
    _check(_base(experiment, **changes))
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_the_message_names_the_variant():
  cfg = C.apply_overrides(registry.get_config("iris"), ["layers=dense:4"])
  with pytest.raises(C.ConfigError, match="^variant base: the output layer 'dense:4'"):
    for program in C.program_configs(cfg):
      _check(program)


@pytest.mark.parametrize(
  ("experiment", "layers", "output"),
  [
    ("binary_addition", ("dense:4", "rnn:8", "dense:1", "sigmoid"), (8, 1)),
    ("mnist_mlp", ("conv:4:same", "maxpool", "conv:8", "gap", "dense:10"), (10,)),
    ("mnist_mlp", ("conv:4", "relu", "dropout", "flatten", "dense:10"), (10,)),
  ],
)
def test_networks_that_fit(experiment, layers, output):
  assert _check(_base(experiment, layers=layers)) == output


def test_every_registered_experiment_fits_its_data():
  """Every program of every experiment, variants (not only the default groups) included."""
  checked = 0
  for name in registry.names():
    cfg = registry.get_config(name).replace(groups=())
    for program in C.program_configs(cfg):
      _check(program)
      checked += 1
  assert checked > len(registry.names())


def test_classes_come_from_the_labels():
  assert network_check.IMAGE_CLASSES == data.NUM_CLASSES
  assert network_check.num_classes("iris", generated.iris().train_labels) == 3
  assert network_check.num_classes("mnist", np.zeros(5, np.int32)) == 10  # a subset's labels
  assert network_check.num_classes("logic_xor", generated.logic_gate("xor").train_labels) is None


def test_the_check_is_pure():
  """Pure Python and NumPy on the layer spec and the config: no JAX, no loaders."""
  tree = ast.parse((REPO / "swapjax" / "network_check.py").read_text())
  imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
  imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
  assert imported <= {"__future__", "math", "numpy", "swapjax.config", "swapjax.layers"}


@pytest.mark.parametrize(
  ("variants", "needle"),
  [
    ("bad", "'bad' has no ':' after its name ('bad:' keeps the study's values)"),
    ("batch_size=8", "'batch_size=8' has no name (name:batch_size=8)"),
    ("a:;:batch_size=8", "':batch_size=8' has no name before its ':'"),
    ("a:;b:batch_size=8;a:batch_size=4", "names repeat (a)"),
    (";", "none given"),
  ],
)
def test_variant_specs_need_a_name_of_their_own(variants, needle):
  with pytest.raises(C.ConfigError) as e:
    C.apply_overrides(registry.get_config("iris"), [f"variants={variants}"])
  message = str(e.value)
  assert message.startswith(f"variants={variants}: each variant is name:key=value+...; ")
  assert needle in message and "\n" not in message
