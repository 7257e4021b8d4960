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
"""

from swapjax.config import Config


def get_config() -> Config:
  return Config(
    description=__doc__.splitlines()[0],
    study="memorize",
    report="curves",
    dataset="mnist",
    pool_size=0,
    holdout_size=0,
    normalize="unit",
    layers=(
      "flatten",
      "dense:512",
      "relu",
      "dropout:0.2",
      "dense:512",
      "relu",
      "dropout:0.2",
      "dense:10",
    ),  # fmt: skip
    learning_rate=(0.0001, 0.001, 0.01),
    batch_size=128,
    validation_split=0.0,
    rounds=20,
    num_seeds=3,
    conditions=("none",),
    warmup=(0,),
    early_stop=False,
    test_every=1,
  )
