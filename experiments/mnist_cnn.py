"""MNIST with the exercise's CNN (seeds/002): above 99% test accuracy in 20 epochs?

Command:
  python -m swapjax.main --experiment=mnist_cnn --data_dir=../shared/data
From the report: Conv 32 (3x3, valid, relu), Conv 64 (relu), MaxPool 2x2, Dropout 0.25,
  Flatten, Dense 128 relu, Dropout 0.5, Dense 10 softmax; Adam (Keras' defaults); batch 128;
  20 epochs; pixels /255; the 10,000 test images as validation data (here `test/*`, every
  epoch). The report: above 99% test accuracy.
Data: all MNIST images in --data_dir or from tensorflow-datasets; with no data flags the
  bundled subset (3,000 training images), which the log and report say.
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
      "conv:32",
      "relu",
      "conv:64",
      "relu",
      "maxpool",
      "dropout:0.25",
      "flatten",
      "dense:128",
      "relu",
      "dropout:0.5",
      "dense:10",
    ),  # fmt: skip
    learning_rate=(0.001,),
    batch_size=128,
    validation_split=0.0,
    rounds=20,
    num_seeds=3,
    conditions=("none",),
    warmup=(0,),
    early_stop=False,
    test_every=1,
  )
