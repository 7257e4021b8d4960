"""The experiment registry: one small config module per experiment, listed here."""

from swapjax.experiments import (
  fashion_dropout,
  memorize_mnist,
  memorize_sweep,
  swap_cifar10,
  swap_cifar10_shared,
  tiny,
)

REGISTRY = {
  "fashion_dropout": fashion_dropout,
  "memorize_mnist": memorize_mnist,
  "memorize_sweep": memorize_sweep,
  "swap_cifar10": swap_cifar10,
  "swap_cifar10_shared": swap_cifar10_shared,
  "tiny": tiny,
}
