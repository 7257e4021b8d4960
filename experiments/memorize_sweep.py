"""Zhang et al. Figure 1 on MNIST: label corruption 0-1 and input corruptions, in one program.

Command:
  python -m swapjax.main --experiment=memorize_sweep --data_dir=../shared/data --workdir=W
Question: does fitting take longer, and testing get worse, as more labels are corrupted? Can the
  network also fit shuffled pixels, random pixels and Gaussian images (with true labels)?
Runs: label corruption {0, 0.2, 0.4, 0.6, 0.8, 1.0} with clean images, plus shuffled pixels,
  random pixels and Gaussian images with true labels, x 2 seeds; all differ only in data, so they
  train together. Same protocol and learning rate as memorize_mnist.
Expected: the ordering of Zhang et al.: more corruption takes longer to fit and tests worse.
Runtime: a GPU job for the full 3,000 images; on CPU shrink it with --set pool_size=400.
Measured on 2 CPU cores (--set pool_size=400 --set num_seeds=1 --set rounds=40; about 9 s per
  epoch): final test accuracy by label corruption 0/0.2/0.4/0.6/0.8/1.0 = 0.863/0.783/0.725/
  0.557/0.351/0.133; training accuracy at epoch 20 = 0.967/0.792/0.636/0.497/0.383/0.389; only
  the clean labels fit (epoch 29) within 40 epochs. Shuffled pixels reached 0.939 training
  accuracy, Gaussian images 0.811, random pixels 0.494 by epoch 40.
"""

import dataclasses

from swapjax.experiments import memorize_mnist


def get_config():
  return dataclasses.replace(
    memorize_mnist.get_config(),
    description=__doc__.splitlines()[0],
    num_seeds=2,
    label_corruption=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    input_corruption=("none", "shuffled_pixels", "random_pixels", "gaussian"),
  )
