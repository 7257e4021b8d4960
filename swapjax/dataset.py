"""A loaded dataset's arrays, and the error a dataset that cannot be loaded raises.

A module of its own so that the loaders (swapjax.data) and the generators (swapjax.generated)
share it without importing each other.
"""

from __future__ import annotations

import dataclasses

import numpy as np


class DataError(RuntimeError):
  """Data that cannot be loaded; the message names the file and what to do."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Training and test arrays of one dataset: images uint8 (N, H, W, C), labels int32 (N,);
  a generated set has float inputs (N, ...) and float targets (N, ...)."""

  name: str
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str
  # A second evaluation set (the official test images when the test set is split off the
  # training images, `test_from_train`); None otherwise.
  holdout_images: np.ndarray | None = None
  holdout_labels: np.ndarray | None = None

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])
