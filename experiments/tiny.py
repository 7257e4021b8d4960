"""A tiny swap study on synthetic data: CPU smoke test of the whole pipeline (well under a minute).

Command:
  python -m swapjax.main --experiment=tiny --workdir=/tmp/tiny
Expected: every workdir file written; accuracies near chance (random labels).
"""

import dataclasses

from swapjax.experiments import swap_cifar10


def get_config():
  return dataclasses.replace(
    swap_cifar10.get_config(),
    description=__doc__.splitlines()[0],
    source="synthetic",
    pool_size=256,
    holdout_size=64,
    rounds=3,
    num_seeds=2,
    warmup=(0, 1),
  )
