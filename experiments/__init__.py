"""The experiment registry: one small config module per experiment, listed here."""

from swapjax.experiments import (
  binary_addition,
  cifar10_arch,
  fashion_dropout,
  iris,
  logic_gates,
  memorize_mnist,
  memorize_sweep,
  mnist_cnn,
  mnist_mlp,
  regression,
  swap_cifar10,
  swap_cifar10_as_ran,
  swap_cifar10_shared,
  tiny,
)

REGISTRY = {
  "binary_addition": binary_addition,
  "cifar10_arch": cifar10_arch,
  "fashion_dropout": fashion_dropout,
  "iris": iris,
  "logic_gates": logic_gates,
  "memorize_mnist": memorize_mnist,
  "memorize_sweep": memorize_sweep,
  "mnist_cnn": mnist_cnn,
  "mnist_mlp": mnist_mlp,
  "regression": regression,
  "swap_cifar10": swap_cifar10,
  "swap_cifar10_as_ran": swap_cifar10_as_ran,
  "swap_cifar10_shared": swap_cifar10_shared,
  "tiny": tiny,
}
