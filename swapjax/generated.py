"""Data sets generated in the package (no download), with float inputs and targets.

`binary_addition` (seeds/002): 8-bit binary numbers, least significant bit first; a and b
drawn uniformly below 128 (so a + b < 256 fits 8 bits); 20,000 draws, of which indices
0-9,999 train and 10,001-19,999 test (the report's script skips index 10,000). Inputs
(8 steps, 2 bits: a's and b's bit), targets (8 steps, 1 bit of a + b). The draws come from the
study's `seed` (the report's script drew them unseeded, once per run of the notebook); every
run of a study sees the same pairs, seeds vary the networks and the shuffles.
"""

from __future__ import annotations

import numpy as np

from swapjax.data import Dataset

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


GENERATORS = {"binary_addition": binary_addition}


def load(name: str, seed: int) -> Dataset:
  return GENERATORS[name](seed)
