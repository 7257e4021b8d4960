"""MNIST with a 784-512-512-10 MLP (seeds/002): learning rates 0.0001, 0.001 and 0.01.

Command:
  python -m swapjax.main --experiment=mnist_mlp --data_dir=../shared/data
Question: does 0.001 learn faster than 0.0001 at about the same accuracy, and does 0.01 lower
  it (the report's three observations)?
From the report: Dense 512 relu, Dropout 0.2, Dense 512 relu, Dropout 0.2, Dense 10 softmax;
  Adam (beta 0.9/0.999); batch 128; 20 epochs; pixels /255; the 10,000 test images as
  validation data (here `test/*`, every epoch; no validation split).
Data: all MNIST training and test images in --data_dir or from tensorflow-datasets; with no
  data flags the bundled subset (3,000 training images), which the log and report say.
Measured 2026-11-30 on a 2-core AMD EPYC (jax 0.10.2; the command above, 9 min 15 s): test
  accuracy, mean +- std over the 3 seeds, at learning rates 0.0001 / 0.001 / 0.01: 0.9276 +-
  0.0009 / 0.9659 +- 0.0024 / 0.9488 +- 0.0026 after epoch 1, 0.9819 +- 0.0007 / 0.9822 +- 0.0016
  / 0.9691 +- 0.0008 after epoch 20: the report's three observations hold.
"""

from swapjax.config import Config
from swapjax.layers import Dense, Dropout, flatten, relu


def get_config() -> Config:
  return Config(
    description=__doc__.splitlines()[0],
    study="epochs",
    report="curves",
    dataset="mnist",
    pool_size=0,
    holdout_size=0,
    normalize="unit",
    layers=(flatten, Dense(512), relu, Dropout(0.2), Dense(512), relu, Dropout(0.2), Dense(10)),
    learning_rate=(0.0001, 0.001, 0.01),
    batch_size=128,
    validation_split=0.0,
    rounds=20,
    num_seeds=3,
    early_stop=False,
    test_every=1,
  )
