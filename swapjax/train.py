"""One epoch of training for every (run, member) at once; the whole-set evaluation
(`make_evaluate`, from swapjax.evaluation) and the per-sample losses (swapjax.losses) are
importable from here too.

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
from swapjax.evaluation import make_evaluate as make_evaluate
from swapjax.losses import masked_mean as masked_mean
from swapjax.losses import masked_mean_loss, normalize, per_sample, task_loss
from swapjax.models import SpecNet
from swapjax.state import Pool


def augments(config: Config) -> bool:
  """Whether a program augments its training batches (else the step has no augmentation)."""
  return config.data.augment_flip != (0,) or config.data.augment_rotation != (0.0,)


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """The optimiser without its step size: Keras Adam (beta 0.9/0.999, eps 1e-7) or SGD with
  optional (heavy-ball) momentum. The learning rate is a per-run array applied in the step,
  `-lr * update`, which is what `optax.inject_hyperparams` with a per-run rate computes, so runs
  with different learning rates share one program whatever the optimiser. For SGD with
  momentum m this is Keras' `v = m v - lr g; w += v` at a constant rate."""
  if config.optim.optimizer == "sgd":
    return optax.trace(decay=config.optim.momentum) if config.optim.momentum else optax.identity()
  return optax.scale_by_adam(eps=config.optim.adam_eps)


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


class EpochParts(NamedTuple):
  """The pieces of an epoch that a backend's whole-epoch implementation reuses."""

  plan: Callable  # (idx_RxMxN, key_RxM) -> shuffled batch ids (S, R, M, B), dropout keys
  one_step: Callable  # (params, opt_state, pool, ids_RxMxB, keys_RxM, mask_B, runs, active_R)
  steps: int
  mask_SxB: jax.Array  # the real samples of each step's batch
  n_train: int


def make_batch_grads(config: Config, model: SpecNet):
  """Returns `batch_grads(params, x_Bx, y_B, mask_B, key, numbers, count)` -> the gradients of
  the batch's mean loss (over `count` samples, its own if None), the loss and its correct
  predictions, with the run's `numbers` (dropout rate, leaky slope, augmentation)."""
  task, loss_kind = config.model.task, task_loss(config)
  augment = augments(config)

  def batch_grads(params, x_Bx, y_B, mask_B, key, numbers, count):
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

  return batch_grads


def make_accumulated_grads(micro: int, batch_grads):
  """Returns `accumulated_grads(params, x_Bx, y_B, mask_B, key, numbers)`: the batch in `micro`
  slices one after another (gradient accumulation), the same gradient as the whole batch up to
  float order with a slice's activations in memory; dropout and augmentation draw per slice."""

  def accumulated_grads(params, x_Bx, y_B, mask_B, key, numbers):
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

  return accumulated_grads


def make_member_step(config: Config, model: SpecNet, optimizer, batch: int):
  """Returns `member_step(params, opt_state, x_Bx, y_B, mask_B, key, numbers)` -> new params,
  optimiser state, loss and hits: one optimiser step of one member on one batch, the batch in
  `config.optim.micro_batches` slices if set."""
  micro = config.optim.micro_batches or 1
  if batch % micro:
    raise ValueError(f"micro_batches={micro} does not divide the batch of {batch}")
  batch_grads = make_batch_grads(config, model)
  accumulated_grads = make_accumulated_grads(micro, batch_grads)

  def member_step(params, opt_state, x_Bx, y_B, mask_B, key, numbers):
    if micro == 1:
      grads, loss, hits = batch_grads(params, x_Bx, y_B, mask_B, key, numbers, None)
    else:
      grads, loss, hits = accumulated_grads(params, x_Bx, y_B, mask_B, key, numbers)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    updates = jax.tree.map(lambda u: -numbers["learning_rate"] * u, updates)
    return optax.apply_updates(params, updates), opt_state, loss, hits

  return member_step


def keep_active(active_R, new, old):
  """`new` where the run is active, else `old`, leaf by leaf (leading axis R)."""

  def pick(n, o):
    shape = (-1,) + (1,) * (n.ndim - 1)
    return jnp.where(active_R.reshape(shape), n, o)

  return jax.tree.map(pick, new, old)


def make_plan(n_train: int, batch: int, steps: int):
  """Returns `plan(idx_RxMxN, key_RxM)` -> shuffled batch ids (S, R, M, B) and per-step dropout
  keys (S, R, M): each member's first `n_train` positions shuffled, padded to `steps` batches."""

  def plan(idx_RxMxN, key_RxM):
    shuffle_key, dropout_key = jax.vmap(jax.vmap(jax.random.split, out_axes=1), out_axes=1)(key_RxM)
    perm = jax.vmap(jax.vmap(lambda k: jax.random.permutation(k, n_train)))(shuffle_key)
    perm = jnp.pad(perm, ((0, 0), (0, 0), (0, steps * batch - n_train)))
    ids = jnp.take_along_axis(idx_RxMxN, perm, axis=2)
    ids_SxRxMxB = ids.reshape(*ids.shape[:2], steps, batch).transpose(2, 0, 1, 3)
    step_keys = jax.vmap(
      lambda s: jax.vmap(jax.vmap(lambda k: jax.random.fold_in(k, s)))(dropout_key)
    )(jnp.arange(steps))
    return ids_SxRxMxB, step_keys

  return plan


def make_one_step(config: Config, member_step, mesh=None):
  """Returns `one_step(params, opt_state, pool, ids_RxMxB, keys_RxM, mask_B, runs, active_R)`:
  every member of every run takes `member_step` on its gathered batch; inactive runs keep
  their params and optimiser state."""
  normalize_mode = config.data.normalize
  # vmap over members (same run numbers), then over runs.
  step_RxM = jax.vmap(
    jax.vmap(member_step, in_axes=(0, 0, 0, 0, None, 0, None)),
    in_axes=(0, 0, 0, 0, None, 0, 0),
  )

  def one_step(params, opt_state, pool, ids_RxMxB, keys_RxM, mask_B, runs, active_R):
    x, y = gather_batch(pool, ids_RxMxB, normalize_mode)
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

  return one_step


def scan_epoch(parts: EpochParts):
  """The epoch as one `lax.scan` over its steps (jittable as a whole)."""

  def train_epoch(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R):
    ids, keys = parts.plan(idx_RxMxN, key_RxM)

    def body(carry, xs):
      p, o = carry
      p, o, loss, hits = parts.one_step(p, o, pool, *xs, runs, active_R)
      return (p, o), (loss, hits)

    (params, opt_state), (loss_SxRxM, hits_SxRxM) = jax.lax.scan(
      body, (params, opt_state), (ids, keys, parts.mask_SxB)
    )
    return params, opt_state, loss_SxRxM.mean(0), hits_SxRxM.sum(0) / parts.n_train

  return train_epoch


def host_epoch(parts: EpochParts):
  """The epoch as a host loop over one jitted step: one dispatch per step (XLA:CPU runs conv
  gradients in loops slowly, jax-ml/jax#12868). Not jittable as a whole; the runner calls it
  directly."""
  jit_plan = jax.jit(parts.plan)
  jit_step = jax.jit(parts.one_step, donate_argnums=(0, 1))

  def train_epoch_host(params, opt_state, pool, idx_RxMxN, key_RxM, runs, active_R):
    ids, keys = jit_plan(idx_RxMxN, key_RxM)
    losses, hits = [], []
    for s in range(parts.steps):
      params, opt_state, loss, hit = jit_step(
        params, opt_state, pool, ids[s], keys[s], parts.mask_SxB[s], runs, active_R
      )
      losses.append(loss)
      hits.append(hit)
    return params, opt_state, jnp.stack(losses).mean(0), jnp.stack(hits).sum(0) / parts.n_train

  return train_epoch_host


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
  batch = min(config.optim.batch_size, n_train)
  steps = -(-n_train // batch)
  mask_SxB = (jnp.arange(steps * batch) < n_train).reshape(steps, batch)
  member_step = make_member_step(config, model, optimizer, batch)
  plan, one_step = make_plan(n_train, batch, steps), make_one_step(config, member_step, mesh)
  parts = EpochParts(plan, one_step, steps, mask_SxB, n_train)
  if epoch is not None and driver == "scan" and (mesh is None or mesh.size == 1):
    return epoch(parts)
  return scan_epoch(parts) if driver == "scan" else host_epoch(parts)
