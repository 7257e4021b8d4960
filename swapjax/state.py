"""The study's device data and training state: named pytrees of arrays with a leading run axis."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax


class Pool(NamedTuple):
  """Everything the study reads and never changes, uploaded to the device once.

  Runs that differ only in data (label noise, input corruption) index their own labels and
  image variant; the swap study has one variant and the same labels in every run.
  """

  images_VxPxHxWxC: jax.Array  # uint8 images, or float inputs (V, P, ...) of a generated set
  labels_RxP: jax.Array  # int32 classes, or float targets (R, P, ...)
  variant_R: jax.Array  # int32, which image variant each run trains on
  holdout_images_VxTxHxWxC: jax.Array  # uint8, outside the pool (test set)
  holdout_labels_T: jax.Array  # int32
  extra_images_VxExHxWxC: jax.Array  # uint8, a second evaluation set (E may be 0)
  extra_labels_E: jax.Array  # int32


class RunArrays(NamedTuple):
  """Per-run condition values: conditions are data on the run axis."""

  seed_R: jax.Array  # int32: the run's seed; its key is fold_in(key(config.runs.seed), seed)
  warmup_R: jax.Array  # int32
  # {axis: (R,) float32} of config.TRACED_AXES: learning_rate, dropout_rate (of the model's
  # `dropout` layers), leaky_slope, augment_flip, augment_rotation.
  numbers: dict[str, jax.Array]
  threshold_RxT: jax.Array  # int32 swap table
  k_RxT: jax.Array  # int32 swap table


class StudyState(NamedTuple):
  """What a round changes; checkpointed every round. Leaves lead with (R, M) or (R,)."""

  params: Any  # (R, M, ...)
  opt_state: Any  # (R, M, ...)
  idx_RxMxN: jax.Array  # int32 pool ids of each part: halves A and B (even shared), or the one set
  seen_RxMxP: jax.Array  # bool: pool samples each member has ever trained on
  move_count_RxP: jax.Array  # int32: how often each sample changed sides
  active_R: jax.Array  # bool: false once a run stopped (fit with early stop, or diverged)
  fit_epoch_R: jax.Array  # int32: first round (1-based) that reached fit_target, -1 before
  round: jax.Array  # int32 scalar: rounds completed
