"""One epoch of training and a whole-set evaluation for every (run, member) at once.

`make_*` functions read the config and return closures over static numbers only; the arrays
come in as arguments. Batches are gathered on the device from int32 indices and normalised
there from uint8. The epoch follows Keras `fit(..., validation_split=v, shuffle=True)`: the last
`v` of a member's half (by position) is held out, the rest is shuffled, and the final partial
batch is kept (masked padding, so its loss is the mean over its real samples).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from swapjax.config import Config
from swapjax.models import SpecNet
from swapjax.state import Pool


def normalize(images_uint8, mode: str):
  x = images_uint8.astype(jnp.float32) / 255.0
  return x - 0.5 if mode == "centered" else x


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
  """Images (R, M, B, H, W, C) float and labels (R, M, B) of pool ids, per run's variant."""
  images = pool.images_VxPxHxWxC[pool.variant_R[:, None, None], ids_RxMxB]
  labels = jnp.take_along_axis(
    pool.labels_RxP[:, None, :], ids_RxMxB.reshape(ids_RxMxB.shape[0], 1, -1), axis=2
  )
  return normalize(images, normalize_mode), labels.reshape(ids_RxMxB.shape)


def masked_cross_entropy(logits_BxC, labels_B, mask_B):
  """Mean softmax cross-entropy over the real samples of a batch (mask 1); a padded last
  batch counts only its real samples, as Keras' last partial batch does."""
  per_sample = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)
  return jnp.sum(per_sample * mask_B) / jnp.sum(mask_B)


def make_train_epoch(config: Config, model: SpecNet, optimizer, driver: str, mesh=None):
  """Returns `train_epoch(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R)`.

  Member m of run r trains one epoch on the first `num_train` positions of `idx[r, m]` with
  its run's numbers (`runs.learning_rate_R`, `runs.dropout_rate_R`); returns the new params and
  optimiser state, the mean training loss over the epoch's steps (R, M) and Keras' running
  training accuracy (R, M): correct predictions of the epoch's own forward passes, dropout
  active, over the samples trained on. Runs whose `active` is false keep their params and
  optimiser state unchanged.
  """
  n_train, batch = config.num_train, config.batch_size
  steps = -(-n_train // batch)
  mask_SxB = (jnp.arange(steps * batch) < n_train).reshape(steps, batch)

  def member_step(params, opt_state, x_BxHxWxC, y_B, mask_B, key, lr, rate):
    def loss_fn(p):
      logits = model.apply(
        {"params": p}, x_BxHxWxC, train=True, rngs={"dropout": key}, dropout_rate=rate
      )
      hits = jnp.sum((jnp.argmax(logits, -1) == y_B) * mask_B)
      return masked_cross_entropy(logits, y_B, mask_B), hits

    (loss, hits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: -lr * u, updates)
    return optax.apply_updates(params, updates), opt_state, loss, hits

  # vmap over members (same run numbers), then over runs.
  step_RxM = jax.vmap(
    jax.vmap(member_step, in_axes=(0, 0, 0, 0, None, 0, None, None)),
    in_axes=(0, 0, 0, 0, None, 0, 0, 0),
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
      params, opt_state, x, y, mask_B, keys_RxM, runs.learning_rate_R, runs.dropout_rate_R
    )
    return (
      keep_active(active_R, new_params, params),
      keep_active(active_R, new_opt, opt_state),
      loss,
      hits,
    )

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


def make_evaluate(config: Config, model: SpecNet, population: str = "map"):
  """Returns `evaluate(params, images_VxTx..., variant_R, labels_RxT)` -> per-sample
  (loss, correct), each (R, M, T): every member of every run on every sample, in chunks.

  `population="map"` loops over the R x M models with `lax.map`, each a plain (ungrouped)
  forward convolution: measured 5x faster than the patches form on XLA:CPU, where forward
  convolutions are fast inside loops. `"vmap"` evaluates all models as one batched program.
  """
  chunk = config.eval_batch_size or (500 if jax.default_backend() == "cpu" else 1000)

  def member_logits(params, x_BxHxWxC):
    return model.apply({"params": params}, x_BxHxWxC, train=False)

  def logits_vmap(params, x_RxBxHxWxC):
    return jax.vmap(jax.vmap(member_logits, in_axes=(0, None)))(params, x_RxBxHxWxC)

  def logits_map(params, x_RxBxHxWxC):
    r, m = jax.tree.leaves(params)[0].shape[:2]
    flat = jax.tree.map(lambda a: a.reshape(r * m, *a.shape[2:]), params)
    logits = jax.lax.map(
      lambda i: member_logits(jax.tree.map(lambda a: a[i], flat), x_RxBxHxWxC[i // m]),
      jnp.arange(r * m),
    )
    return logits.reshape(r, m, *logits.shape[1:])

  logits_RxM = logits_map if population == "map" else logits_vmap

  def evaluate(params, images_VxTxHxWxC, variant_R, labels_RxT):
    total = images_VxTxHxWxC.shape[1]
    size = min(chunk, total)
    n_chunks = -(-total // size)
    pad = n_chunks * size - total
    images = jnp.pad(images_VxTxHxWxC, ((0, 0), (0, pad)) + ((0, 0),) * 3)
    labels = jnp.pad(labels_RxT, ((0, 0), (0, pad)))

    def one_chunk(c):
      x = jax.lax.dynamic_slice_in_dim(images, c * size, size, axis=1)[variant_R]
      y = jax.lax.dynamic_slice_in_dim(labels, c * size, size, axis=1)
      logits = logits_RxM(params, normalize(x, config.normalize))  # (R, M, B, C)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y[:, None, :])
      return loss, jnp.argmax(logits, -1) == y[:, None, :]

    loss, correct = jax.lax.map(one_chunk, jnp.arange(n_chunks))  # (chunks, R, M, size)
    merge = lambda a: jnp.moveaxis(a, 0, 2).reshape(*a.shape[1:3], -1)[..., :total]
    return merge(loss), merge(correct)

  return evaluate


def masked_mean(values_RxN, mask_RxN):
  """Mean over the last axis where mask is set; NaN where nothing is set."""
  count = mask_RxN.sum(-1)
  total = jnp.where(mask_RxN, values_RxN, 0.0).sum(-1)
  return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
