"""Whole-set evaluation: every member of every run on every sample of a set, in chunks, or once
per distinct prefix of a set's sequences for a causal sequence network."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from swapjax.config import Config
from swapjax.losses import normalize, per_sample, task_loss
from swapjax.models import SpecNet


def map_members(params, slope_R, logits_of, batch_size=None):
  """`logits_of(member_params, run, slope)` for each of the R x M models in turn (`lax.map`,
  `batch_size` models at a time), stacked (R, M, ...)."""
  r, m = jax.tree.leaves(params)[0].shape[:2]
  flat = jax.tree.map(lambda a: a.reshape(r * m, *a.shape[2:]), params)
  logits = jax.lax.map(
    lambda i: logits_of(jax.tree.map(lambda a: a[i], flat), i // m, slope_R[i // m]),
    jnp.arange(r * m),
    batch_size=batch_size,
  )
  return logits.reshape(r, m, *logits.shape[1:])


def make_population_logits(member_logits, population: str):
  """Returns `logits_RxM(params, x_RxBx..., slope_R)` -> (R, M, B, ...): every model on its
  run's inputs, one after another (`"map"`) or as one batched program (`"vmap"`)."""

  def logits_vmap(params, x_RxBxHxWxC, slope_R):
    return jax.vmap(jax.vmap(member_logits, in_axes=(0, None, None)))(params, x_RxBxHxWxC, slope_R)

  def logits_map(params, x_RxBxHxWxC, slope_R):
    return map_members(params, slope_R, lambda p, run, s: member_logits(p, x_RxBxHxWxC[run], s))

  return logits_map if population == "map" else logits_vmap


def make_forest_evaluate(config: Config, member_logits):
  """Returns `on_forest(params, sequences_VxNxTxF, variant_R, labels_RxN, slope_R, forest)`:
  per-sample (loss, correct) (R, M, N, T) from each distinct prefix evaluated once."""
  task, loss_kind = config.model.task, task_loss(config)

  def on_forest(params, sequences_VxNxTxF, variant_R, labels_RxN, slope_R, forest):
    v, n, t = forest.row_VxNxT.shape
    flat = sequences_VxNxTxF.reshape(v * n, t, -1)
    x_SxF = normalize(flat[forest.source_S, forest.step_S], config.data.normalize)
    out_RxMxS = map_members(
      params,
      slope_R,
      lambda p, _, s: member_logits(p, x_SxF, s, forest),
      batch_size=2,  # pairs of models: faster than one at a time on XLA:CPU
    )
    rows_RxNxT = jnp.asarray(forest.row_VxNxT)[variant_R]
    logits = jax.vmap(lambda o, rows: o[:, rows])(out_RxMxS, rows_RxNxT)  # (R, M, N, T, ...)
    return per_sample(task, loss_kind, logits, labels_RxN[:, None], labels_RxN.ndim - 2)

  return on_forest


def make_chunked_evaluate(config: Config, logits_RxM, chunk: int):
  """Returns `in_chunks(params, images_VxTx..., variant_R, labels_RxT, slope_R)`: per-sample
  (loss, correct) (R, M, T), `chunk` samples at a time (`lax.map`), the last chunk padded."""
  task, loss_kind = config.model.task, task_loss(config)

  def in_chunks(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R):
    total = images_VxTxHxWxC.shape[1]
    size = min(chunk, total)
    n_chunks = -(-total // size)
    pad = n_chunks * size - total
    images = jnp.pad(images_VxTxHxWxC, ((0, 0), (0, pad)) + ((0, 0),) * (images_VxTxHxWxC.ndim - 2))
    labels = jnp.pad(labels_RxT, ((0, 0), (0, pad)) + ((0, 0),) * (labels_RxT.ndim - 2))

    def one_chunk(c):
      x = jax.lax.dynamic_slice_in_dim(images, c * size, size, axis=1)[variant_R]
      y = jax.lax.dynamic_slice_in_dim(labels, c * size, size, axis=1)
      logits = logits_RxM(params, normalize(x, config.data.normalize), slope_R)  # (R, M, B, ...)
      return per_sample(task, loss_kind, logits, y[:, None], labels_RxT.ndim - 2)

    loss, correct = jax.lax.map(one_chunk, jnp.arange(n_chunks))  # (chunks, R, M, size)
    merge = lambda a: jnp.moveaxis(a, 0, 2).reshape(*a.shape[1:3], -1)[..., :total]
    return merge(loss), merge(correct)

  return in_chunks


def make_evaluate(config: Config, model: SpecNet, population: str = "map", forests=None):
  """Returns `evaluate(params, images_VxTx..., variant_R, labels_RxT, slope_R, part=None)` ->
  per-sample (loss, correct), each (R, M, T): every member of every run on every sample, in
  chunks (`slope_R`: each run's traced `leaky_slope`; correct is bool for softmax, else a
  fraction).

  `population="map"` loops over the R x M models with `lax.map`, each a plain (ungrouped)
  forward convolution: faster than the patches form on XLA:CPU, where forward convolutions are
  fast inside loops (benchmarks/README.md). `"vmap"` evaluates all models as one batched program.
  `forests`: {part: prefixes.Forest} of the evaluation sets (`part`: "pool", "test",
  "holdout") whose distinct prefixes a causal sequence network evaluates once each, every
  model in turn, instead of every sample (`eval_shared_prefixes`).
  """
  forests = forests or {}
  chunk = config.engine.eval_batch_size or (500 if jax.default_backend() == "cpu" else 1000)

  def member_logits(params, x_BxHxWxC, slope, forest=None):
    return model.apply({"params": params}, x_BxHxWxC, train=False, leaky_slope=slope, forest=forest)

  on_forest = make_forest_evaluate(config, member_logits)
  in_chunks = make_chunked_evaluate(
    config, make_population_logits(member_logits, population), chunk
  )

  def evaluate(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R, part=None):
    if part in forests:
      forest = forests[part]
      return on_forest(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R, forest)
    return in_chunks(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R)

  return evaluate
