"""Builds swapjax/assets/mnist_subset.npz from the original MNIST IDX files.

    python tools/make_mnist_subset.py ../shared/data/mnist

Keeps what the memorization protocol needs offline: training images 0-2999, all 60000 training
labels (the random labels are a permutation of them), the 10000 test images and labels.
"""

import sys
from pathlib import Path

import numpy as np

from swapjax import data


def main(folder: str) -> None:
  arrays = {k: data.read_idx(Path(folder) / v) for k, v in data.IDX_FILES.items()}
  np.savez_compressed(
    data.BUNDLED,
    train_images=arrays["train_images"][:3000],
    train_labels=arrays["train_labels"],
    test_images=arrays["test_images"],
    test_labels=arrays["test_labels"],
  )
  print(data.BUNDLED, data._digest(data.BUNDLED, "sha256"))


if __name__ == "__main__":
  main(sys.argv[1])
