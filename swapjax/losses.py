"""The arithmetic of a batch that training and evaluation share: inputs normalised from uint8,
the loss a config trains with, per-sample loss and correctness of outputs against targets, and
masked means over samples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from swapjax.config import Config


def normalize(images, mode: str):
  """uint8 images to float (/255, `centered`: -0.5); float inputs pass unchanged."""
  if images.dtype != jnp.uint8:
    return images.astype(jnp.float32)
  x = images.astype(jnp.float32) / 255.0
  return x - 0.5 if mode == "centered" else x


def task_loss(config: Config) -> str:
  """The loss a config trains with: its `loss`, or its task's own (cross-entropy; mean
  squared error for regression)."""
  if config.model.loss != "auto":
    return config.model.loss
  return "mean_squared_error" if config.model.task == "regression" else "cross_entropy"


def per_sample(task: str, loss: str, outputs, targets, event_ndim: int):
  """Per-sample (loss, correct) of a batch of network outputs against targets, over any
  leading axes. `event_ndim`: trailing axes of one sample's target (0 for a class label).

  softmax: integer labels, cross-entropy from logits, correct = argmax is the label (bool).
  sigmoid: 0/1 targets, one independent bit per output; binary cross-entropy from logits or
  the squared error of the sigmoid outputs; correct = the fraction of bits with p > 0.5 equal
  to the target (Keras' binary accuracy averaged per sample). regression: squared error of the
  outputs; no accuracy (NaN). Losses are means over a sample's outputs (Keras' reduction).
  keras_cross_entropy (softmax and sigmoid): the cross-entropy of the probabilities clipped to
  [1e-7, 1 - 1e-7], as Keras 2 computes it from a softmax or sigmoid layer's output.
  """
  axes = tuple(range(-event_ndim, 0))
  if task == "softmax":
    if loss == "cross_entropy":
      loss_ = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    elif loss == "keras_cross_entropy":
      probs = jnp.take_along_axis(jax.nn.softmax(outputs), targets[..., None], -1)[..., 0]
      loss_ = -jnp.log(_keras_clip(probs))
    else:
      one_hot = jax.nn.one_hot(targets, outputs.shape[-1])
      loss_ = jnp.mean((jax.nn.softmax(outputs) - one_hot) ** 2, -1)
    return loss_, jnp.argmax(outputs, -1) == targets
  if task == "sigmoid":
    probs = jax.nn.sigmoid(outputs)
    if loss == "cross_entropy":
      loss_ = optax.sigmoid_binary_cross_entropy(outputs, targets)
    elif loss == "keras_cross_entropy":
      clipped = _keras_clip(probs)
      loss_ = -(targets * jnp.log(clipped) + (1 - targets) * jnp.log(1 - clipped))
    else:
      loss_ = (probs - targets) ** 2
    correct = ((probs > 0.5) == (targets > 0.5)).astype(jnp.float32)
    return loss_.mean(axes), correct.mean(axes)
  loss_ = ((outputs - targets) ** 2).mean(axes)
  return loss_, jnp.full(loss_.shape, jnp.nan, jnp.float32)


def _keras_clip(probs):
  """Probabilities clipped as Keras 2's cross-entropies clip them (epsilon 1e-7, in float32)."""
  epsilon = jnp.asarray(1e-7, probs.dtype)
  return jnp.clip(probs, epsilon, 1 - epsilon)


def masked_mean_loss(per_sample_B, mask_B, count=None):
  """Mean per-sample loss over the real samples of a batch (mask 1); a padded last batch
  counts only its real samples, as Keras' last partial batch does. `count`: the real samples
  of the whole batch when this is one slice of it (gradient accumulation)."""
  count = jnp.sum(mask_B) if count is None else count
  return jnp.sum(per_sample_B * mask_B) / count


def masked_mean(values_RxN, mask_RxN):
  """Mean over the last axis where mask is set; NaN where nothing is set."""
  count = mask_RxN.sum(-1)
  total = jnp.where(mask_RxN, values_RxN, 0.0).sum(-1)
  return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
