"""A tiny swap study on synthetic data: the whole pipeline in well under a minute on a CPU.

Command:
  python -m swapjax.main --experiment=tiny --workdir=/tmp/tiny
Used by the tests and tools/kill_resume.py. Expected: every workdir file written; accuracies
near chance (synthetic images with random labels); swaps under the small schedule.
"""

from swapjax.experiments import swap_cifar10


def get_config():
  return swap_cifar10.get_config().replace(
    description=__doc__.splitlines()[0],
    source="synthetic",
    pool_size=64,
    holdout_size=16,
    batch_size=8,
    rounds=4,
    num_seeds=1,
    warmup=(0,),
    conditions=("none", "schedule"),
    swap_schedules={"none": ((0, 0),), "one": ((0, 1),), "schedule": ((20, 5), (2, 2), (0, 1))},
    eval_batch_size=32,
  )
