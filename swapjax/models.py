"""The reports' CNNs in Flax linen, with Keras initialisers and a choice of conv formulation.

`conv_impl="lax"` is `lax.conv_general_dilated`; under `vmap` over models it becomes a grouped
convolution, whose gradient XLA:CPU runs slowly inside loops and cuDNN runs slowly in general
(jax-ml/jax#12868, #13800). `conv_impl="patches"` computes the same 3x3 convolution as nine
shifted slices and one matmul, so a population of models becomes batched matmuls. Both use
the same parameters; tests check they agree.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()


def patches3x3(x_BxHxWxC, padding: str):
  """The nine shifted 3x3 neighbourhoods, concatenated on channels: (B, H', W', 9C)."""
  if padding == "SAME":
    x_BxHxWxC = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  h, w = x_BxHxWxC.shape[1] - 2, x_BxHxWxC.shape[2] - 2
  return jnp.concatenate(
    [x_BxHxWxC[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=-1
  )


def conv3x3_patches(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  """3x3 stride-1 convolution as nine shifted slices and one matmul."""
  kernel = kernel_3x3xCxO.reshape(-1, kernel_3x3xCxO.shape[-1])
  return jnp.einsum("bhwk,ko->bhwo", patches3x3(x_BxHxWxC, padding), kernel)


def conv3x3_lax(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  return lax.conv_general_dilated(
    x_BxHxWxC, kernel_3x3xCxO, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3x3_hybrid(x_BxHxWxC, kernel_3x3xCxO, padding: str):
  """lax convolution forward; gradients as matmuls over patches (no conv gradient in loops)."""
  return conv3x3_lax(x_BxHxWxC, kernel_3x3xCxO, padding)


def _hybrid_fwd(x, kernel, padding):
  return conv3x3_lax(x, kernel, padding), (x, kernel)


def _hybrid_bwd(padding, residuals, dy_BxHxWxO):
  x, kernel = residuals
  d_kernel = jnp.einsum("bhwk,bhwo->ko", patches3x3(x, padding), dy_BxHxWxO)
  dx = jax.vjp(lambda xx: conv3x3_patches(xx, kernel, padding), x)[1](dy_BxHxWxO)[0]
  return dx, d_kernel.reshape(kernel.shape)


conv3x3_hybrid.defvjp(_hybrid_fwd, _hybrid_bwd)
CONV_FUNCTIONS = {"patches": conv3x3_patches, "lax": conv3x3_lax, "hybrid": conv3x3_hybrid}


class Conv3x3(nn.Module):
  """Keras `Conv2D(features, (3, 3), padding=...)` with glorot-uniform kernel, zero bias."""

  features: int
  padding: str = "SAME"
  impl: str = "patches"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", KERAS_KERNEL_INIT, (3, 3, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    conv = CONV_FUNCTIONS[self.impl]
    y = conv(x.astype(self.dtype), kernel.astype(self.dtype), self.padding)
    return y + bias.astype(self.dtype)


def max_pool_2x2(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


class CNN(nn.Module):
  """Conv blocks of (same, valid) 3x3 convs, 2x2 max-pool, optional dropout, then Dense layers.

  `cifar_cnn` (seeds/000): blocks (32, 32), dropout 0.25 after each block, Dense 512, dropout 0.5.
  `mnist_cnn` (seeds/004): blocks (32, 64), no dropout, Dense 512.
  """

  block_features: Sequence[int]
  dense_features: int = 512
  num_classes: int = 10
  block_dropout: float = 0.0
  dense_dropout: float = 0.0
  conv_impl: str = "patches"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    for features in self.block_features:
      x = nn.relu(Conv3x3(features, "SAME", self.conv_impl, self.dtype)(x))
      x = nn.relu(Conv3x3(features, "VALID", self.conv_impl, self.dtype)(x))
      x = max_pool_2x2(x)
      if self.block_dropout:
        x = nn.Dropout(self.block_dropout, deterministic=not train)(x)
    x = x.reshape(x.shape[0], -1)
    dense = lambda n: nn.Dense(n, dtype=self.dtype, kernel_init=KERAS_KERNEL_INIT)
    x = nn.relu(dense(self.dense_features)(x))
    if self.dense_dropout:
      x = nn.Dropout(self.dense_dropout, deterministic=not train)(x)
    return dense(self.num_classes)(x).astype(jnp.float32)


def make_model(
  name: str, conv_impl: str = "patches", dropout: bool = True, compute_dtype: str = "float32"
) -> CNN:
  dtype = jnp.dtype(compute_dtype)
  if name == "cifar_cnn":
    return CNN(
      (32, 32),
      block_dropout=0.25 if dropout else 0.0,
      dense_dropout=0.5 if dropout else 0.0,
      conv_impl=conv_impl,
      dtype=dtype,
    )
  if name == "mnist_cnn":
    return CNN((32, 64), conv_impl=conv_impl, dtype=dtype)
  raise ValueError(f"unknown model {name}")


def default_conv_impl(backend: str | None = None) -> str:
  """Measured default (benchmarks/README.md): patches on CPU. On GPU/TPU unmeasured here; the
  patches form turns the population into batched matmuls, which avoids the grouped conv."""
  del backend
  return "patches"


def resolve_conv_impl(conv_impl: str) -> str:
  return default_conv_impl(jax.default_backend()) if conv_impl == "auto" else conv_impl
