"""One epoch of training and a whole-set evaluation for every (run, member) at once.

`make_*` functions read the config and return closures over static numbers only; the arrays
come in as arguments. Batches are gathered on the device from int32 indices and normalised
there from uint8. The epoch follows Keras `fit(..., validation_split=v, shuffle=True)`: the last
`v` of a member's half (by position) is held out, the rest is shuffled, and the final partial
batch is kept (masked padding, so its loss is the mean over its real samples).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from swapjax.augment import augment as augment_batch
from swapjax.config import Config
from swapjax.models import SpecNet
from swapjax.state import Pool


def normalize(images, mode: str):
  """uint8 images to float (/255, `centered`: -0.5); float inputs pass unchanged."""
  if images.dtype != jnp.uint8:
    return images.astype(jnp.float32)
  x = images.astype(jnp.float32) / 255.0
  return x - 0.5 if mode == "centered" else x


def task_loss(config: Config) -> str:
  """The loss a config trains with: its `loss`, or its task's own (cross-entropy; mean
  squared error for regression)."""
  if config.loss != "auto":
    return config.loss
  return "mean_squared_error" if config.task == "regression" else "cross_entropy"


def per_sample(task: str, loss: str, outputs, targets, event_ndim: int):
  """Per-sample (loss, correct) of a batch of network outputs against targets, over any
  leading axes. `event_ndim`: trailing axes of one sample's target (0 for a class label).

  softmax: integer labels, cross-entropy from logits, correct = argmax is the label (bool).
  sigmoid: 0/1 targets, one independent bit per output; binary cross-entropy from logits or
  the squared error of the sigmoid outputs; correct = the fraction of bits with p > 0.5 equal
  to the target (Keras' binary accuracy averaged per sample). regression: squared error of the
  outputs; no accuracy (NaN). Losses are means over a sample's outputs (Keras' reduction).
  """
  axes = tuple(range(-event_ndim, 0))
  if task == "softmax":
    if loss == "cross_entropy":
      loss_ = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    else:
      one_hot = jax.nn.one_hot(targets, outputs.shape[-1])
      loss_ = jnp.mean((jax.nn.softmax(outputs) - one_hot) ** 2, -1)
    return loss_, jnp.argmax(outputs, -1) == targets
  if task == "sigmoid":
    probs = jax.nn.sigmoid(outputs)
    if loss == "cross_entropy":
      loss_ = optax.sigmoid_binary_cross_entropy(outputs, targets)
    else:
      loss_ = (probs - targets) ** 2
    correct = ((probs > 0.5) == (targets > 0.5)).astype(jnp.float32)
    return loss_.mean(axes), correct.mean(axes)
  loss_ = ((outputs - targets) ** 2).mean(axes)
  return loss_, jnp.full(loss_.shape, jnp.nan, jnp.float32)


def augments(config: Config) -> bool:
  """Whether a program augments its training batches (else the step has no augmentation)."""
  return config.augment_flip != (0,) or config.augment_rotation != (0.0,)


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """The optimiser without its step size: Keras Adam (beta 0.9/0.999, eps 1e-7) or SGD with
  optional (heavy-ball) momentum. The learning rate is a per-run array applied in the step,
  `-lr * update`, which is what `optax.inject_hyperparams` with a per-run rate computes, so runs
  with different learning rates share one program whatever the optimiser. For SGD with
  momentum m this is Keras' `v = m v - lr g; w += v` at a constant rate."""
  if config.optimizer == "sgd":
    return optax.trace(decay=config.momentum) if config.momentum else optax.identity()
  return optax.scale_by_adam(eps=config.adam_eps)


def init_members(model: SpecNet, optimizer, key, members: int, image_shape):
  """Params and optimiser state of `members` independently initialised networks (M, ...)."""
  dummy = jnp.zeros((1, *image_shape), jnp.float32)
  keys = jax.random.split(key, members)
  params = jax.vmap(lambda k: model.init({"params": k}, dummy)["params"])(keys)
  return params, jax.vmap(optimizer.init)(params)


def gather_batch(pool: Pool, ids_RxMxB, normalize_mode: str):
  """Inputs (R, M, B, ...) float and targets (R, M, B, ...) of pool ids, per run's variant."""
  images = pool.images_VxPxHxWxC[pool.variant_R[:, None, None], ids_RxMxB]
  labels = jax.vmap(lambda labels_P, ids_MxB: labels_P[ids_MxB])(pool.labels_RxP, ids_RxMxB)
  return normalize(images, normalize_mode), labels


def masked_mean_loss(per_sample_B, mask_B, count=None):
  """Mean per-sample loss over the real samples of a batch (mask 1); a padded last batch
  counts only its real samples, as Keras' last partial batch does. `count`: the real samples
  of the whole batch when this is one slice of it (gradient accumulation)."""
  count = jnp.sum(mask_B) if count is None else count
  return jnp.sum(per_sample_B * mask_B) / count


class EpochParts(NamedTuple):
  """The pieces of an epoch that a backend's whole-epoch implementation reuses."""

  plan: Callable  # (idx_RxMxN, key_RxM) -> shuffled batch ids (S, R, M, B), dropout keys
  one_step: Callable  # (params, opt_state, pool, ids_RxMxB, keys_RxM, mask_B, runs, active_R)
  steps: int
  mask_SxB: jax.Array  # the real samples of each step's batch
  n_train: int


def make_train_epoch(config: Config, model: SpecNet, optimizer, driver: str, mesh=None, epoch=None):
  """Returns `train_epoch(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R)`.

  `epoch`: a backend's whole-epoch implementation, `epoch(EpochParts) -> train_epoch`, used
  with the scan driver on one device (swapjax.backend.kernels chooses it).

  Member m of run r trains one epoch on the first `num_train` positions of `idx[r, m]` with
  its run's numbers (`runs.numbers`: learning rate, dropout rate, leaky slope, augmentation);
  returns the new params and optimiser state, the mean training loss over the epoch's steps
  (R, M) and Keras' running training accuracy (R, M): correct predictions of the epoch's own
  forward passes, dropout active, over the samples trained on. Runs whose `active` is false
  keep their params and optimiser state unchanged. A batch larger than the training set is one
  partial batch per epoch, as in Keras.
  """
  n_train = config.num_train
  batch = min(config.batch_size, n_train)
  steps = -(-n_train // batch)
  mask_SxB = (jnp.arange(steps * batch) < n_train).reshape(steps, batch)
  task, loss_kind = config.task, task_loss(config)
  augment = augments(config)

  micro = config.micro_batches or 1
  if batch % micro:
    raise ValueError(f"micro_batches={micro} does not divide the batch of {batch}")

  def batch_grads(params, x_Bx, y_B, mask_B, key, numbers, count):
    """Gradients of the batch's mean loss (over `count` samples, its own if None), the loss
    and its correct predictions."""
    if augment:
      flip, rotation = numbers["augment_flip"], numbers["augment_rotation"]
      x_Bx = augment_batch(jax.random.fold_in(key, 1), x_Bx, flip, rotation)

    def loss_fn(p):
      outputs = model.apply(
        {"params": p},
        x_Bx,
        train=True,
        rngs={"dropout": key},
        dropout_rate=numbers["dropout_rate"],
        leaky_slope=numbers["leaky_slope"],
      )
      loss_B, correct_B = per_sample(task, loss_kind, outputs, y_B, y_B.ndim - 1)
      hits = jnp.sum(correct_B * mask_B)
      return masked_mean_loss(loss_B, mask_B, count), hits

    (loss, hits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grads, loss, hits

  def accumulated_grads(params, x_Bx, y_B, mask_B, key, numbers):
    """The batch in `micro` slices one after another (gradient accumulation): the same
    gradient as the whole batch up to float order, with a slice's activations in memory;
    dropout and augmentation draw per slice."""
    count = jnp.sum(mask_B)
    split = lambda a: a.reshape(micro, a.shape[0] // micro, *a.shape[1:])

    def body(carry, xs):
      grads, loss, hits = carry
      j, x, y, mask = xs
      key_j = jax.random.fold_in(key, j)
      g, slice_loss, slice_hits = batch_grads(params, x, y, mask, key_j, numbers, count)
      return (jax.tree.map(jnp.add, grads, g), loss + slice_loss, hits + slice_hits), None

    zero = (jax.tree.map(jnp.zeros_like, params), jnp.zeros(()), jnp.zeros(()))
    xs = (jnp.arange(micro), split(x_Bx), split(y_B), split(mask_B))
    (grads, loss, hits), _ = jax.lax.scan(body, zero, xs)
    return grads, loss, hits

  def member_step(params, opt_state, x_Bx, y_B, mask_B, key, numbers):
    if micro == 1:
      grads, loss, hits = batch_grads(params, x_Bx, y_B, mask_B, key, numbers, None)
    else:
      grads, loss, hits = accumulated_grads(params, x_Bx, y_B, mask_B, key, numbers)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: -numbers["learning_rate"] * u, updates)
    return optax.apply_updates(params, updates), opt_state, loss, hits

  # vmap over members (same run numbers), then over runs.
  step_RxM = jax.vmap(
    jax.vmap(member_step, in_axes=(0, 0, 0, 0, None, 0, None)),
    in_axes=(0, 0, 0, 0, None, 0, 0),
  )

  def keep_active(active_R, new, old):
    def pick(n, o):
      shape = (-1,) + (1,) * (n.ndim - 1)
      return jnp.where(active_R.reshape(shape), n, o)

    return jax.tree.map(pick, new, old)

  def plan(idx_RxMxN, key_RxM):
    """Shuffled batch ids (S, R, M, B) and per-step dropout keys (S, R, M)."""
    shuffle_key, dropout_key = jax.vmap(jax.vmap(jax.random.split, out_axes=1), out_axes=1)(key_RxM)
    perm = jax.vmap(jax.vmap(lambda k: jax.random.permutation(k, n_train)))(shuffle_key)
    perm = jnp.pad(perm, ((0, 0), (0, 0), (0, steps * batch - n_train)))
    ids = jnp.take_along_axis(idx_RxMxN, perm, axis=2)
    ids_SxRxMxB = ids.reshape(*ids.shape[:2], steps, batch).transpose(2, 0, 1, 3)
    step_keys = jax.vmap(
      lambda s: jax.vmap(jax.vmap(lambda k: jax.random.fold_in(k, s)))(dropout_key)
    )(jnp.arange(steps))
    return ids_SxRxMxB, step_keys

  def one_step(params, opt_state, pool, ids_RxMxB, keys_RxM, mask_B, runs, active_R):
    x, y = gather_batch(pool, ids_RxMxB, config.normalize)
    if mesh is not None and mesh.shape["data"] > 1:  # split each member's batch on `data`
      spec = jax.sharding.PartitionSpec("runs", None, "data")
      x = jax.lax.with_sharding_constraint(x, jax.sharding.NamedSharding(mesh, spec))
    new_params, new_opt, loss, hits = step_RxM(
      params, opt_state, x, y, mask_B, keys_RxM, runs.numbers
    )
    return (
      keep_active(active_R, new_params, params),
      keep_active(active_R, new_opt, opt_state),
      loss,
      hits,
    )

  if epoch is not None and driver == "scan" and (mesh is None or mesh.size == 1):
    return epoch(EpochParts(plan, one_step, steps, mask_SxB, n_train))

  if driver == "scan":

    def train_epoch(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R):
      ids, keys = plan(idx_RxMxN, key_RxM)

      def body(carry, xs):
        p, o = carry
        p, o, loss, hits = one_step(p, o, pool, *xs, runs, active_R)
        return (p, o), (loss, hits)

      (params, opt_state), (loss_SxRxM, hits_SxRxM) = jax.lax.scan(
        body, (params, opt_state), (ids, keys, mask_SxB)
      )
      return params, opt_state, loss_SxRxM.mean(0), hits_SxRxM.sum(0) / n_train

    return train_epoch

  # Host loop over one jitted step: one dispatch per step (XLA:CPU runs conv gradients in
  # loops slowly, jax-ml/jax#12868). Not jittable as a whole; the runner calls it directly.
  jit_plan = jax.jit(plan)
  jit_step = jax.jit(one_step, donate_argnums=(0, 1))

  def train_epoch_host(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R):
    ids, keys = jit_plan(idx_RxMxN, key_RxM)
    losses, hits = [], []
    for s in range(steps):
      params, opt_state, loss, hit = jit_step(
        params, opt_state, pool, ids[s], keys[s], mask_SxB[s], runs, active_R
      )
      losses.append(loss)
      hits.append(hit)
    return params, opt_state, jnp.stack(losses).mean(0), jnp.stack(hits).sum(0) / n_train

  return train_epoch_host


def make_evaluate(config: Config, model: SpecNet, population: str = "map", forests=None):
  """Returns `evaluate(params, images_VxTx..., variant_R, labels_RxT, slope_R, part=None)` ->
  per-sample (loss, correct), each (R, M, T): every member of every run on every sample, in
  chunks (`slope_R`: each run's traced `leaky_slope`; correct is bool for softmax, else a
  fraction).

  `population="map"` loops over the R x M models with `lax.map`, each a plain (ungrouped)
  forward convolution: measured 5x faster than the patches form on XLA:CPU, where forward
  convolutions are fast inside loops. `"vmap"` evaluates all models as one batched program.
  `forests`: {part: prefixes.Forest} of the evaluation sets (`part`: "pool", "test",
  "holdout") whose distinct prefixes a causal sequence network evaluates once each, every
  model in turn, instead of every sample (`eval_shared_prefixes`).
  """
  forests = forests or {}
  chunk = config.eval_batch_size or (500 if jax.default_backend() == "cpu" else 1000)
  task, loss_kind = config.task, task_loss(config)

  def member_logits(params, x_BxHxWxC, slope, forest=None):
    return model.apply({"params": params}, x_BxHxWxC, train=False, leaky_slope=slope, forest=forest)

  def logits_vmap(params, x_RxBxHxWxC, slope_R):
    return jax.vmap(jax.vmap(member_logits, in_axes=(0, None, None)))(params, x_RxBxHxWxC, slope_R)

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

  def logits_map(params, x_RxBxHxWxC, slope_R):
    return map_members(params, slope_R, lambda p, run, s: member_logits(p, x_RxBxHxWxC[run], s))

  logits_RxM = logits_map if population == "map" else logits_vmap

  def on_forest(params, sequences_VxNxTxF, variant_R, labels_RxN, slope_R, forest):
    v, n, t = forest.row_VxNxT.shape
    flat = sequences_VxNxTxF.reshape(v * n, t, -1)
    x_SxF = normalize(flat[forest.source_S, forest.step_S], config.normalize)
    out_RxMxS = map_members(
      params,
      slope_R,
      lambda p, _, s: member_logits(p, x_SxF, s, forest),
      batch_size=2,  # pairs of models: 0.39-0.40 s vs 0.49-0.56 one at a time (units128, 50)
    )
    rows_RxNxT = jnp.asarray(forest.row_VxNxT)[variant_R]
    logits = jax.vmap(lambda o, rows: o[:, rows])(out_RxMxS, rows_RxNxT)  # (R, M, N, T, ...)
    return per_sample(task, loss_kind, logits, labels_RxN[:, None], labels_RxN.ndim - 2)

  def evaluate(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R, part=None):
    if part in forests:
      forest = forests[part]
      return on_forest(params, images_VxTxHxWxC, variant_R, labels_RxT, slope_R, forest)
    total = images_VxTxHxWxC.shape[1]
    size = min(chunk, total)
    n_chunks = -(-total // size)
    pad = n_chunks * size - total
    images = jnp.pad(images_VxTxHxWxC, ((0, 0), (0, pad)) + ((0, 0),) * (images_VxTxHxWxC.ndim - 2))
    labels = jnp.pad(labels_RxT, ((0, 0), (0, pad)) + ((0, 0),) * (labels_RxT.ndim - 2))

    def one_chunk(c):
      x = jax.lax.dynamic_slice_in_dim(images, c * size, size, axis=1)[variant_R]
      y = jax.lax.dynamic_slice_in_dim(labels, c * size, size, axis=1)
      logits = logits_RxM(params, normalize(x, config.normalize), slope_R)  # (R, M, B, ...)
      return per_sample(task, loss_kind, logits, y[:, None], labels_RxT.ndim - 2)

    loss, correct = jax.lax.map(one_chunk, jnp.arange(n_chunks))  # (chunks, R, M, size)
    merge = lambda a: jnp.moveaxis(a, 0, 2).reshape(*a.shape[1:3], -1)[..., :total]
    return merge(loss), merge(correct)

  return evaluate


def masked_mean(values_RxN, mask_RxN):
  """Mean over the last axis where mask is set; NaN where nothing is set."""
  count = mask_RxN.sum(-1)
  total = jnp.where(mask_RxN, values_RxN, 0.0).sum(-1)
  return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
