"""Iris with a 4-12-3 network (seeds/002): the exercise and its two variants, 100 seeds.

Command:
  python -m swapjax.main --experiment=iris
Question: does a sigmoid hidden layer lower accuracy, and does SGD at 0.1 make the accuracy
  fluctuate more from epoch to epoch, beyond what the seed (split and initialisation) does?
From the report: Dense(12) relu, Dense(3) softmax, SGD (Keras' default 0.01), sparse
  categorical cross-entropy, batch 5, 20 epochs, scikit-learn's train_test_split(test_size=
  0.2) drawn anew each run, the 20% as validation data, no feature scaling. Groups `base`,
  `sigmoid` (hidden activation; the report: accuracy fell) and `lr0.1` (the report: accuracy
  varied more between epochs). The report gives figures only, no numbers.
Here: the split is a random 20% per seed (`split_per_seed`; Keras `validation_split` on the
  seed's order), so `val/*` is the report's test curve; the data ships in the package.
Measured 2026-11-30 on a 2-core AMD EPYC (jax 0.10.2; the command above, 3 groups x 100 seeds,
  7.7 s):
  validation (test-split) accuracy at epoch 20, mean +- std over seeds: base 0.905 +- 0.088,
  sigmoid 0.68 +- 0.15 (lower, as the report found), lr0.1 0.86 +- 0.13; mean change of the
  validation accuracy from one epoch to the next over epochs 11-20: base 0.085, lr0.1 0.127
  (more fluctuation, as the report found), sigmoid 0.022 (it learns slowly).
"""

from swapjax.config import Config
from swapjax.layers import Dense, relu, sigmoid


def get_config() -> Config:
  return Config(
    description=__doc__.splitlines()[0],
    study="epochs",
    report="curves",
    dataset="iris",
    pool_size=150,
    holdout_size=0,
    layers=(Dense(12), relu, Dense(3)),
    optimizer="sgd",
    learning_rate=(0.01,),
    batch_size=5,
    validation_split=0.2,
    split_per_seed=True,
    rounds=20,
    num_seeds=100,
    variants={
      "base": {},
      "sigmoid": {"layers": (Dense(12), sigmoid, Dense(3))},
      "lr0.1": {"learning_rate": 0.1},
    },
    early_stop=False,
  )
