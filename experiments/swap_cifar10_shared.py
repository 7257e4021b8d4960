"""The swap study with the report's aliased model: one network trains on A, then on B, per round.

Command:
  python -m swapjax.main --experiment=swap_cifar10_shared --data_dir=../shared/data --workdir=W
Question: why did the report's test curves climb to 96-97%? With `model_AtoB = model_BtoA =
  model`, the network judged on B was trained on B the round before: "test" is training data.
Same as swap_cifar10 with shared_model=true; compare its test and test_unseen curves.
Measured 2026-11-23 on a 2-core AMD EPYC (`--set pool_size=2000 --set num_seeds=2 --set
  rounds=12`, mean over seeds at round 12, condition `none`): "test" accuracy 0.601 (AtoB) and
  0.636 (BtoA) against 0.453 and 0.461 on the holdout; independent models (swap_cifar10) 0.390
  and 0.367 against 0.400 and 0.356 (docs/results.md).
"""

from swapjax.experiments import swap_cifar10


def get_config():
  return swap_cifar10.get_config().replace(shared_model=True, description=__doc__.splitlines()[0])
