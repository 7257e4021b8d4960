"""Augmentation properties: exact identity when off, flips, rotation geometry, reflection, keys."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import ndimage

from swapjax import augment as A

augment = jax.jit(A.augment)
rotate = jax.jit(A.rotate)


def _images(seed, b=8, h=8, w=8, c=3, low=0.5, high=1.5):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(low, high, (b, h, w, c)).astype(np.float32))


def test_off_is_bitwise_identity_under_jit():
  x = _images(0)
  out = augment(jax.random.key(1), x, jnp.int32(0), jnp.float32(0.0))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x))
  # Bool flags work too.
  out = augment(jax.random.key(1), x, jnp.bool_(False), jnp.float32(0.0))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


def test_vmap_mixed_runs_off_exact_on_changed():
  x_RxBxHxWxC = jnp.stack([_images(0), _images(0)])
  keys_R = jax.random.split(jax.random.key(2), 2)
  flip_R = jnp.asarray([0, 1], jnp.int32)
  rotation_R = jnp.asarray([0.0, 0.1], jnp.float32)
  out = jax.jit(jax.vmap(A.augment))(keys_R, x_RxBxHxWxC, flip_R, rotation_R)
  np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(x_RxBxHxWxC[0]))
  changed_B = np.abs(np.asarray(out[1] - x_RxBxHxWxC[1])).max(axis=(1, 2, 3)) > 1e-3
  assert changed_B.all()


def test_flags_are_traced_one_compilation():
  traces = []

  @jax.jit
  def f(key, x, flip, rotation):
    traces.append(1)
    return A.augment(key, x, flip, rotation)

  x = _images(0)
  f(jax.random.key(0), x, jnp.int32(0), jnp.float32(0.0))
  f(jax.random.key(0), x, jnp.int32(1), jnp.float32(0.2))
  assert len(traces) == 1


def test_flip_only_mirrors_about_half():
  x = _images(3, b=64, h=4, w=4, c=2)
  out = np.asarray(augment(jax.random.key(4), x, jnp.int32(1), jnp.float32(0.0)))
  x = np.asarray(x)
  same_B = (out == x).all(axis=(1, 2, 3))
  mirrored_B = (out == x[:, :, ::-1]).all(axis=(1, 2, 3))
  assert (same_B ^ mirrored_B).all()  # random images: never both, and always one of them
  assert 16 <= mirrored_B.sum() <= 48, mirrored_B.sum()


def test_flip_2_also_turns_about_half_upside_down_and_keeps_flip_1s_draws():
  """augment_flip=2 (Keras' "horizontal_and_vertical"): left-right as flip=1 draws it on the
  same key, and upside down from a key of its own, each about half the images."""
  x = _images(3, b=128, h=4, w=4, c=2)
  key = jax.random.key(4)
  one = np.asarray(augment(key, x, jnp.int32(1), jnp.float32(0.0)))
  two = np.asarray(augment(key, x, jnp.int32(2), jnp.float32(0.0)))
  x = np.asarray(x)
  mirrored_B = (one == x[:, :, ::-1]).all(axis=(1, 2, 3))
  unturned_B = (two == one).all(axis=(1, 2, 3))
  turned_B = (two == one[:, ::-1]).all(axis=(1, 2, 3))
  assert (unturned_B ^ turned_B).all()  # each image: flip=1's image, or it upside down
  assert 40 <= turned_B.sum() <= 88, turned_B.sum()
  assert 0 < (turned_B & mirrored_B).sum() < turned_B.sum()  # drawn apart from left-right


def test_rotate_90_degrees_is_rot90():
  x = _images(5, b=1, h=7, w=7)[0]
  out = rotate(x, jnp.float32(math.pi / 2))
  np.testing.assert_allclose(np.asarray(out), np.rot90(np.asarray(x), k=1), atol=1e-5)


def test_rotate_zero_is_identity():
  x = _images(6, b=1, h=6, w=5)[0]
  np.testing.assert_array_equal(np.asarray(rotate(x, jnp.float32(0.0))), np.asarray(x))


@pytest.mark.parametrize("angle", [0.3, math.pi / 4, 2.0])
def test_rotate_constant_image_stays_constant(angle):
  x = jnp.full((8, 8, 3), 0.75, jnp.float32)
  np.testing.assert_allclose(np.asarray(rotate(x, jnp.float32(angle))), 0.75, rtol=1e-6)


def test_rotate_45_has_no_black_corners():
  x = _images(7, b=1, h=16, w=16)[0]
  out = np.asarray(rotate(x, jnp.float32(math.pi / 4)))
  # Bilinear reflection fill is a convex combination of input pixels: nothing leaves their range.
  assert (out != 0).all()
  assert out.min() >= float(x.min()) - 1e-6 and out.max() <= float(x.max()) + 1e-6


@pytest.mark.parametrize("angle", [0.4, -1.1])
def test_rotate_matches_scipy_reflect_interpolation(angle):
  # An independent reference: jax.scipy's order-1 map_coordinates, mode='reflect' (d c b a | a b).
  h, w = 6, 9
  x = _images(8, b=1, h=h, w=w, c=2)[0]
  cy, cx = (h - 1) / 2, (w - 1) / 2
  yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
  src = [np.sin(angle) * xx + np.cos(angle) * yy + cy, np.cos(angle) * xx - np.sin(angle) * yy + cx]
  want = np.stack(
    [ndimage.map_coordinates(x[..., c], src, order=1, mode="reflect") for c in range(2)], -1
  )
  got = rotate(x, jnp.float32(angle))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def _reflect_reference(c, size):
  """TF's `map_coordinate` for fill_mode='reflect', written one scalar at a time."""
  if c < 0:
    c = c + 2 * size if c < -size else -c - 1
  elif c > size - 1:
    c = 2 * size - 1 - c if c < 2 * size else c - 2 * size
  return min(max(c, 0), size - 1)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_reflect_coordinate_integers_follow_mirror_tiling(size):
  # (d c b a | a b c d | d c b a ...) tiled over [-2 size, 3 size).
  fwd = np.arange(size)
  table = np.concatenate([fwd, fwd[::-1], fwd, fwd[::-1], fwd])
  coords = np.arange(-2 * size, 3 * size)
  got = A.reflect_coordinate(jnp.asarray(coords), size)
  np.testing.assert_array_equal(np.asarray(got), table)


@pytest.mark.parametrize("size", [2, 5])
def test_reflect_coordinate_reals_match_reference(size):
  coords = np.linspace(-2 * size, 3 * size, 101).astype(np.float32)
  want = [_reflect_reference(float(c), size) for c in coords]
  got = A.reflect_coordinate(jnp.asarray(coords), size)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_same_key_same_output_different_keys_differ():
  x = _images(9)
  flip, rotation = jnp.int32(1), jnp.float32(0.1)
  a = augment(jax.random.key(10), x, flip, rotation)
  b = augment(jax.random.key(10), x, flip, rotation)
  c = augment(jax.random.key(11), x, flip, rotation)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.array_equal(np.asarray(a), np.asarray(c))
