"""Data sets generated in the package (no download), with float inputs and targets.

`binary_addition` (seeds/002): 8-bit binary numbers, least significant bit first; a and b
drawn uniformly below 128 (so a + b < 256 fits 8 bits); 20,000 draws, of which indices
0-9,999 train and 10,001-19,999 test (the report's script skips index 10,000). Inputs
(8 steps, 2 bits: a's and b's bit), targets (8 steps, 1 bit of a + b). The draws come from the
study's `seed` (the report's script drew them unseeded, once per run of the notebook); every
run of a study sees the same pairs, seeds vary the networks and the shuffles.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from swapjax.dataset import DataError, Dataset

BITS = 8


def binary_digits(values: np.ndarray, bits: int = BITS) -> np.ndarray:
  """(N,) integers -> (N, bits) of 0/1, least significant bit first."""
  return (values[:, None] >> np.arange(bits)) & 1


def binary_addition(seed: int = 0, draws: int = 20_000, num_train: int = 10_000) -> Dataset:
  rng = np.random.default_rng([seed, 2])
  a = rng.integers(0, 2 ** (BITS - 1), draws)
  b = rng.integers(0, 2 ** (BITS - 1), draws)
  x = np.stack([binary_digits(a), binary_digits(b)], axis=-1).astype(np.float32)  # (N, 8, 2)
  d = binary_digits(a + b)[..., None].astype(np.float32)  # (N, 8, 1)
  train, test = slice(0, num_train), slice(num_train + 1, draws)
  return Dataset(
    "binary_addition", x[train], d[train], x[test], d[test], source="generated (seeds/002)"
  )


LOGIC_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
GATES = {"or": (0, 1, 1, 1), "and": (0, 0, 0, 1), "xor": (0, 1, 1, 0)}


def logic_gate(gate: str) -> Dataset:
  """The report's four inputs and the gate's outputs; the test set is the same four inputs
  (the report classifies its training inputs)."""
  targets = np.array(GATES[gate], np.float32)[:, None]
  return Dataset(f"logic_{gate}", LOGIC_INPUTS, targets, LOGIC_INPUTS, targets, "generated")


# d = f(x): linear (coefficients of x, constant) and cubic (of x^3, x^2, x, constant).
FUNCTIONS = {
  "line_a": (3.0, 2.0),
  "line_b": (-6.0, 3.0),
  "cubic_a": (-0.4, 1.6, -2.8, 1.0),
  "cubic_b": (2.1, -1.2, -4.8, 2.0),
}


def function_features(x: np.ndarray, degree: int) -> np.ndarray:
  """(N,) -> (N, degree): x, x^2, ..., so a Dense(1) layer's kernel are the coefficients."""
  return np.stack([x**k for k in range(1, degree + 1)], axis=-1).astype(np.float32)


def regression(name: str, seed: int = 0, num_train: int = 100, num_test: int = 100) -> Dataset:
  """x uniform in [-1, 1]; inputs the powers of x up to the function's degree; targets the
  function's values without noise (the study adds `target_noise` per seed to the training
  targets); the test set is noise-free, so its error is the fit's error."""
  coefficients = FUNCTIONS[name]
  degree = len(coefficients) - 1
  rng = np.random.default_rng([seed, 5])
  x = rng.uniform(-1.0, 1.0, num_train + num_test)
  d = np.polyval(coefficients, x).astype(np.float32)[:, None]
  inputs = function_features(x, degree)
  train, test = slice(0, num_train), slice(num_train, None)
  return Dataset(name, inputs[train], d[train], inputs[test], d[test], "generated")


IRIS = Path(__file__).parent / "assets" / "iris.csv"
IRIS_SHA256 = "f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449"


def iris() -> Dataset:
  """Fisher's iris data (150 x 4 features in cm, 3 species), shipped in the package: the copy
  in scikit-learn 1.9.1 (sklearn/datasets/data/iris.csv, BSD-3-Clause; the data: R.A.
  Fisher 1936, UCI Machine Learning Repository, CC BY 4.0). No test split: the study holds out
  a random 20% per seed (`split_per_seed`, `validation_split`)."""
  raw = IRIS.read_bytes()
  if hashlib.sha256(raw).hexdigest() != IRIS_SHA256:
    raise DataError(f"{IRIS}: checksum mismatch; reinstall swapjax")
  rows = np.loadtxt(IRIS, delimiter=",", skiprows=1)
  x, y = rows[:, :4].astype(np.float32), rows[:, 4].astype(np.int32)
  empty = np.zeros((0, 4), np.float32)
  return Dataset("iris", x, y, empty, np.zeros(0, np.int32), "bundled iris (CC BY 4.0)")


GENERATORS = {
  "binary_addition": binary_addition,
  **{f"logic_{gate}": (lambda seed, gate=gate: logic_gate(gate)) for gate in GATES},
  **{name: (lambda seed, name=name: regression(name, seed)) for name in FUNCTIONS},
  "iris": lambda seed: iris(),
}


def load(name: str, seed: int) -> Dataset:
  return GENERATORS[name](seed)
