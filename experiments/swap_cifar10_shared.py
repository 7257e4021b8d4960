"""The swap study with the report's aliased model: one network trains on A, then on B, per round.

Command:
  python -m swapjax.main --experiment=swap_cifar10_shared --data_dir=../shared/data --workdir=W
Question: why did the report's test curves climb to 96-97%? With `model_AtoB = model_BtoA =
  model`, the network judged on B was trained on B the round before: "test" is training data.
Same as swap_cifar10 with shared_model=true; compare its test and test_unseen curves.
"""

import dataclasses

from swapjax.experiments import swap_cifar10


def get_config():
  return dataclasses.replace(
    swap_cifar10.get_config(), shared_model=True, description=__doc__.splitlines()[0]
  )
