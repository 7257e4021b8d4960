"""On-device augmentation of training batches: random flips and random rotation.

Semantics of the Keras preprocessing layers `RandomFlip("horizontal")` (`augment_flip=1`) or
`RandomFlip("horizontal_and_vertical")` (`augment_flip=2`) followed by
`RandomRotation(factor, fill_mode="reflect", interpolation="bilinear")`. The switches are traced
arrays, not Python values, so runs with augmentation on and off share one compiled program
(`augment` is vmapped over runs and members); with both off the batch passes through unchanged,
bit for bit.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def reflect_coordinate(c: jax.Array, size: int) -> jax.Array:
  """Folds coordinates into [0, size - 1] by reflection about the pixel edges (d c b a | a b c d).

  Integer coordinates land on the mirrored pixel; a real coordinate in the half-pixel gap between
  the last pixel centre and the edge is clamped to that pixel (Keras/TF `fill_mode='reflect'`).
  """
  if size <= 1:
    return jnp.zeros_like(c)
  period = 2 * size
  folded = jnp.mod(c, period)
  folded = jnp.where(folded >= size, period - 1 - folded, folded)
  return jnp.clip(folded, 0, size - 1)


def rotate(x_HxWxC: jax.Array, angle: jax.Array) -> jax.Array:
  """One image rotated by `angle` radians counter-clockwise about its centre (Keras convention).

  Bilinear interpolation of the reflection-extended image; `angle = pi/2` equals `np.rot90`.
  """
  H, W, _ = x_HxWxC.shape
  center_y, center_x = (H - 1) / 2, (W - 1) / 2
  dy_HxW, dx_HxW = jnp.meshgrid(
    jnp.arange(H, dtype=jnp.float32) - center_y,
    jnp.arange(W, dtype=jnp.float32) - center_x,
    indexing="ij",
  )
  cos, sin = jnp.cos(angle).astype(jnp.float32), jnp.sin(angle).astype(jnp.float32)
  # Inverse map: the source coordinate each output pixel reads (Keras' rotation matrix).
  src_y_HxW = sin * dx_HxW + cos * dy_HxW + center_y
  src_x_HxW = cos * dx_HxW - sin * dy_HxW + center_x
  y0_HxW, x0_HxW = jnp.floor(src_y_HxW), jnp.floor(src_x_HxW)
  wy_HxWx1 = (src_y_HxW - y0_HxW)[..., None].astype(x_HxWxC.dtype)
  wx_HxWx1 = (src_x_HxW - x0_HxW)[..., None].astype(x_HxWxC.dtype)
  # Reflecting the integer neighbours (not the real coordinate) interpolates the mirrored image.
  rows = [reflect_coordinate(y0_HxW + d, H).astype(jnp.int32) for d in (0, 1)]
  cols = [reflect_coordinate(x0_HxW + d, W).astype(jnp.int32) for d in (0, 1)]
  top_HxWxC = (1 - wx_HxWx1) * x_HxWxC[rows[0], cols[0]] + wx_HxWx1 * x_HxWxC[rows[0], cols[1]]
  bottom_HxWxC = (1 - wx_HxWx1) * x_HxWxC[rows[1], cols[0]] + wx_HxWx1 * x_HxWxC[rows[1], cols[1]]
  return (1 - wy_HxWx1) * top_HxWxC + wy_HxWx1 * bottom_HxWxC


def augment(
  key: jax.Array, x_BxHxWxC: jax.Array, flip: jax.Array, rotation: jax.Array
) -> jax.Array:
  """Random left-right flips (p = 0.5 when `flip` is 1 or 2), upside-down flips (p = 0.5, drawn
  apart, when `flip` is 2), then rotations in +-`rotation` * 2 pi."""
  key_flip, key_rotate = jax.random.split(key)
  B, flip = x_BxHxWxC.shape[0], jnp.asarray(flip)
  mirror_B = jax.random.bernoulli(key_flip, 0.5, (B,)) & (flip != 0)
  flipped_BxHxWxC = jnp.where(mirror_B[:, None, None, None], x_BxHxWxC[:, :, ::-1], x_BxHxWxC)
  # A key of its own, so that flip=1 draws exactly what it drew before flip=2 existed.
  upside_B = jax.random.bernoulli(jax.random.fold_in(key_flip, 1), 0.5, (B,)) & (flip == 2)
  flipped_BxHxWxC = jnp.where(
    upside_B[:, None, None, None], flipped_BxHxWxC[:, ::-1], flipped_BxHxWxC
  )
  rotation = jnp.asarray(rotation, jnp.float32)
  angle_B = jax.random.uniform(key_rotate, (B,), minval=-1.0, maxval=1.0) * rotation * 2 * math.pi
  rotated_BxHxWxC = jax.vmap(rotate)(flipped_BxHxWxC, angle_B)
  # Selected, not multiplied: with rotation off the flipped batch passes through bit for bit.
  return jnp.where(rotation != 0, rotated_BxHxWxC, flipped_BxHxWxC)
