"""The experiment registry: one small config module per experiment, listed here."""

from swapjax.experiments import (
  memorize_mnist,
  memorize_sweep,
  swap_cifar10,
  swap_cifar10_shared,
  tiny,
)

REGISTRY = {
  "memorize_mnist": memorize_mnist,
  "memorize_sweep": memorize_sweep,
  "swap_cifar10": swap_cifar10,
  "swap_cifar10_shared": swap_cifar10_shared,
  "tiny": tiny,
}
