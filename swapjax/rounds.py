"""One round of a study: train every member one epoch, evaluate, swap (the swap study), and
return the new state with a flat dict of per-run metrics.

Randomness is derived, not carried: round keys are `fold_in(k_rounds, round)` split by
purpose, so a resumed run replays exactly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from swapjax import policies
from swapjax import swap as swaplib
from swapjax.config import Config
from swapjax.losses import masked_mean
from swapjax.state import Pool, RunArrays, StudyState

SWAP_MEMBER_NAMES = ("AtoB", "BtoA")


def run_keys(base_seed: int, seed_R):
  """One key per run, derived from the run's seed (runs sharing a seed share their keys)."""
  return jax.vmap(lambda s: jax.random.fold_in(jax.random.key(base_seed), s))(seed_R)


def run_purpose_keys(key_R):
  """(k_init, k_split, k_rounds), each (R,), from the run keys."""
  keys = jax.vmap(lambda k: jax.random.split(k, 3))(key_R)
  return keys[:, 0], keys[:, 1], keys[:, 2]


def round_keys(key_R, round_index):
  """Per-run (k_train, k_swap) for this round."""
  _, _, k_rounds = run_purpose_keys(key_R)
  keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, round_index)))(k_rounds)
  return keys[:, 0], keys[:, 1]


def member_keys(k_train_R, members: int):
  return jax.vmap(lambda k: jax.vmap(lambda m: jax.random.fold_in(k, m))(jnp.arange(members)))(
    k_train_R
  )


def mark_seen(seen_RxP, idx_RxN, n_train: int):
  return jax.vmap(lambda s, i: s.at[i[:n_train]].set(True))(seen_RxP, idx_RxN)


def half_metrics(loss_RxP, correct_RxP, own_RxN, other_RxN, seen_RxP, n_train: int):
  """Train/val metrics on the member's own half and test metrics on the other half."""
  take = lambda a, i: jnp.take_along_axis(a, i, axis=1)
  acc = correct_RxP.astype(jnp.float32)
  own_loss, own_acc = take(loss_RxP, own_RxN), take(acc, own_RxN)
  n = own_RxN.shape[1]
  trained = jnp.broadcast_to(jnp.arange(n) < n_train, own_RxN.shape)
  everything = jnp.ones_like(trained)
  out = {
    "train_loss": own_loss.mean(1),
    "train_acc": own_acc.mean(1),
    "val_loss": masked_mean(own_loss, ~trained),
    "val_acc": masked_mean(own_acc, ~trained),
  }
  if other_RxN is not None:
    test_loss, test_acc = take(loss_RxP, other_RxN), take(acc, other_RxN)
    unseen = ~take(seen_RxP, other_RxN)
    out.update(
      {
        "test_loss": masked_mean(test_loss, everything),
        "test_acc": masked_mean(test_acc, everything),
        "test_unseen_loss": masked_mean(test_loss, unseen),
        "test_unseen_acc": masked_mean(test_acc, unseen),
        "test_unseen_n": unseen.sum(1),
      }
    )
  return out


def holdout_metrics(loss_RxT, correct_RxT):
  return {"holdout_loss": loss_RxT.mean(1), "holdout_acc": correct_RxT.mean(1, dtype=jnp.float32)}


def per_run(labels_T, runs: int):
  """The same labels (T, ...) for every run: (R, T, ...)."""
  return jnp.broadcast_to(labels_T, (runs, *labels_T.shape))


def parameter_metrics(params) -> dict[str, jax.Array]:
  """`param/<layer>/<name>/<i>`: each scalar of the first member's parameters, per run (R,)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    name = "/".join(str(getattr(p, "key", p)) for p in path)
    flat = leaf[:, 0].reshape(leaf.shape[0], -1)
    for i in range(flat.shape[1]):
      out[f"param/{name}/{i}"] = flat[:, i]
  return out


def k_max(config: Config) -> int:
  """The static maximum of pairs any schedule of the study can ask to exchange."""
  tables = config.schedules()
  return max(1, max(k for name in config.study.conditions for _, k in tables[name]))


def eval_pool(evaluate, params, pool: Pool, slope_R):
  """Per-sample (loss, correct) (R, M, P) of every member on the whole pool."""
  return evaluate(
    params, pool.images_VxPxHxWxC, pool.variant_R, pool.labels_RxP, slope_R, part="pool"
  )


def eval_holdout(evaluate, params, pool: Pool, slope_R):
  """Per-sample (loss, correct) (R, M, T) of every member on the holdout (test) set."""
  labels = per_run(pool.holdout_labels_T, pool.variant_R.shape[0])
  images = pool.holdout_images_VxTxHxWxC
  return evaluate(params, images, pool.variant_R, labels, slope_R, part="test")


class Halves(NamedTuple):
  """A swap round's training of both halves: the new networks, the samples seen, each half's
  metrics (`AtoB`, `BtoA`), and the judgements the swap acts on: A's samples that B's network
  misses (R, N) and B's samples that A's network gets right (R, N)."""

  params: Any
  opt_state: Any
  seen_RxMxP: jax.Array
  metrics_a: dict
  metrics_b: dict
  a_miss_RxN: jax.Array
  b_correct_RxN: jax.Array


def make_shared_halves(config: Config, train_epoch, evaluate):
  """Returns `halves(state, pool, runs, k_train_R, idx_a, idx_b) -> Halves` for the report's
  aliasing: one network trains on A, judges B, then trains on B, judges A."""
  n_train = config.num_train

  def halves(state: StudyState, pool: Pool, runs: RunArrays, k_train, idx_a, idx_b) -> Halves:
    slope_R, idx = runs.numbers["leaky_slope"], state.idx_RxMxN
    keys = member_keys(k_train, 2)
    params, opt_state, loss_a, acc_a = train_epoch(
      state.params, state.opt_state, pool, idx[:, :1], keys[:, :1], runs, state.active_R
    )
    seen = state.seen_RxMxP.at[:, 0].set(mark_seen(state.seen_RxMxP[:, 0], idx_a, n_train))
    loss_1, correct_1 = eval_pool(evaluate, params, pool, slope_R)
    hold_1 = eval_holdout(evaluate, params, pool, slope_R)
    metrics_a = half_metrics(loss_1[:, 0], correct_1[:, 0], idx_a, idx_b, seen[:, 0], n_train)
    metrics_a.update(holdout_metrics(hold_1[0][:, 0], hold_1[1][:, 0]))
    b_correct = jnp.take_along_axis(correct_1[:, 0], idx_b, axis=1)
    params, opt_state, loss_b, acc_b = train_epoch(
      params, opt_state, pool, idx[:, 1:], keys[:, 1:], runs, state.active_R
    )
    seen = seen.at[:, 0].set(mark_seen(seen[:, 0], idx_b, n_train))
    loss_2, correct_2 = eval_pool(evaluate, params, pool, slope_R)
    hold_2 = eval_holdout(evaluate, params, pool, slope_R)
    metrics_b = half_metrics(loss_2[:, 0], correct_2[:, 0], idx_b, idx_a, seen[:, 0], n_train)
    metrics_b.update(holdout_metrics(hold_2[0][:, 0], hold_2[1][:, 0]))
    a_miss = ~jnp.take_along_axis(correct_2[:, 0], idx_a, axis=1)
    metrics_a["epoch_loss"], metrics_b["epoch_loss"] = loss_a[:, 0], loss_b[:, 0]
    metrics_a["epoch_acc"], metrics_b["epoch_acc"] = acc_a[:, 0], acc_b[:, 0]
    return Halves(params, opt_state, seen, metrics_a, metrics_b, a_miss, b_correct)

  return halves


def make_paired_halves(config: Config, train_epoch, evaluate):
  """Returns `halves(state, pool, runs, k_train_R, idx_a, idx_b) -> Halves` for two networks:
  A's trains on A and B's on B in one epoch, then each judges the other's half."""
  n_train = config.num_train

  def halves(state: StudyState, pool: Pool, runs: RunArrays, k_train, idx_a, idx_b) -> Halves:
    slope_R, idx = runs.numbers["leaky_slope"], state.idx_RxMxN
    keys = member_keys(k_train, 2)
    params, opt_state, loss_RxM, acc_RxM = train_epoch(
      state.params, state.opt_state, pool, idx, keys, runs, state.active_R
    )
    seen = jnp.stack(
      [mark_seen(state.seen_RxMxP[:, m], idx[:, m], n_train) for m in (0, 1)], axis=1
    )
    loss, correct = eval_pool(evaluate, params, pool, slope_R)
    hold_loss, hold_correct = eval_holdout(evaluate, params, pool, slope_R)
    metrics_a = half_metrics(loss[:, 0], correct[:, 0], idx_a, idx_b, seen[:, 0], n_train)
    metrics_b = half_metrics(loss[:, 1], correct[:, 1], idx_b, idx_a, seen[:, 1], n_train)
    metrics_a.update(holdout_metrics(hold_loss[:, 0], hold_correct[:, 0]))
    metrics_b.update(holdout_metrics(hold_loss[:, 1], hold_correct[:, 1]))
    a_miss = ~jnp.take_along_axis(correct[:, 1], idx_a, axis=1)
    b_correct = jnp.take_along_axis(correct[:, 0], idx_b, axis=1)
    metrics_a["epoch_loss"], metrics_b["epoch_loss"] = loss_RxM[:, 0], loss_RxM[:, 1]
    metrics_a["epoch_acc"], metrics_b["epoch_acc"] = acc_RxM[:, 0], acc_RxM[:, 1]
    return Halves(params, opt_state, seen, metrics_a, metrics_b, a_miss, b_correct)

  return halves


def make_exchange(config: Config):
  """Returns `exchange(state, runs, k_swap_R, idx_a, idx_b, a_miss, b_correct)` -> (new A
  (R, N), new B (R, N), move counts (R, P), `swap/*` metrics): the round's pairs by the
  schedule, moved by `config.study.exchange` (swap.EXCHANGES)."""
  most = k_max(config)
  rule = swaplib.EXCHANGES[config.study.exchange]

  def exchange(state: StudyState, runs: RunArrays, k_swap, idx_a, idx_b, a_miss, b_correct):
    table = swaplib.ScheduleTable(runs.threshold_RxT, runs.k_RxT)
    k_R = jax.vmap(swaplib.schedule_k)(table, a_miss.sum(1))
    k_R = jnp.where((state.round >= runs.warmup_R) & state.active_R, k_R, 0)
    new_a, new_b, moved, moved_ids, valid = jax.vmap(lambda *a: rule(*a, k_max=most))(
      k_swap, idx_a, idx_b, a_miss, b_correct, k_R
    )
    move_count = jax.vmap(swaplib.count_moves)(state.move_count_RxP, moved_ids, valid)
    pool_size = state.move_count_RxP.shape[1]
    duplicates = jax.vmap(lambda a, b: swaplib.duplicates(a, b, pool_size))(new_a, new_b)
    metrics = {
      "swap/a_miss": a_miss.sum(1),
      "swap/b_correct": b_correct.sum(1),
      "swap/k": k_R,
      "swap/moved": moved,
      "swap/duplicates": duplicates,
    }
    return new_a, new_b, move_count, metrics

  return exchange


def make_swap_round(config: Config, train_epoch, evaluate):
  """The swap study's round: returns `round_fn(state, pool, runs, test_due) -> (state,
  metrics)`; every round evaluates both halves and the holdout set (`test_due` unused).

  The pairs move by `config.study.exchange` (swap.EXCHANGES). `swap/duplicates` counts the positions
  of A that hold a pool index B also holds after this round's swap: 0 under "swap"; under
  "copy", A's duplicates of B's samples (A still has N positions, so N - duplicates of them
  hold samples of A's own)."""
  make_halves = make_shared_halves if config.study.shared_model else make_paired_halves
  halves = make_halves(config, train_epoch, evaluate)
  exchange = make_exchange(config)

  def round_fn(state: StudyState, pool: Pool, runs: RunArrays, test_due):
    del test_due
    k_train, k_swap = round_keys(run_keys(config.runs.seed, runs.seed_R), state.round)
    idx_a, idx_b = state.idx_RxMxN[:, 0], state.idx_RxMxN[:, 1]
    trained = halves(state, pool, runs, k_train, idx_a, idx_b)
    metrics = {}
    for name, values in zip(SWAP_MEMBER_NAMES, (trained.metrics_a, trained.metrics_b), strict=True):
      metrics.update({f"{name}/{k}": v for k, v in values.items()})
    new_a, new_b, move_count, swap_metrics = exchange(
      state, runs, k_swap, idx_a, idx_b, trained.a_miss_RxN, trained.b_correct_RxN
    )
    metrics.update(swap_metrics)
    new_state = state._replace(
      params=trained.params,
      opt_state=trained.opt_state,
      idx_RxMxN=jnp.stack([new_a, new_b], axis=1),
      seen_RxMxP=trained.seen_RxMxP,
      move_count_RxP=move_count,
      round=state.round + 1,
    )
    return new_state, metrics

  return round_fn


def trained_metrics(loss_RxMxP, correct_RxMxP, idx_RxMxN, n_train: int):
  """Mean loss and accuracy (R,) of each run's one network on the samples it trains on (the
  first `n_train` positions of its half)."""
  trained = jnp.arange(idx_RxMxN.shape[2]) < n_train
  own_loss = jnp.take_along_axis(loss_RxMxP[:, 0], idx_RxMxN[:, 0], axis=1)
  own_acc = jnp.take_along_axis(correct_RxMxP[:, 0], idx_RxMxN[:, 0], axis=1).astype(jnp.float32)
  train_loss = masked_mean(own_loss, jnp.broadcast_to(trained, own_loss.shape))
  train_acc = masked_mean(own_acc, jnp.broadcast_to(trained, own_acc.shape))
  return train_loss, train_acc


def eval_sets(pool: Pool) -> dict:
  """{name: (images, labels_T)}: the test set, and the second evaluation set if the study has
  one (`test_from_train`); a data set without a test split has none."""
  sets = {}
  if pool.holdout_labels_T.shape[0]:
    sets["test"] = (pool.holdout_images_VxTxHxWxC, pool.holdout_labels_T)
  if pool.extra_labels_E.shape[0]:
    sets["holdout"] = (pool.extra_images_VxExHxWxC, pool.extra_labels_E)
  return sets


def make_tests(evaluate):
  """Returns `tests(params, pool, slope_R, test_due, newly_fit_R)` -> (test loss (R,), test
  accuracy (R,), the other sets' `<name>/loss`, `<name>/acc`): evaluated when `test_due` or
  when a run fits this epoch (lax.cond: one program, the test pass only runs when needed),
  else NaN."""

  def tests(params, pool: Pool, slope_R, test_due, newly_fit_R):
    sets = eval_sets(pool)

    def test(params):
      out = {}
      for name, (images, labels_T) in sets.items():
        labels = per_run(labels_T, pool.variant_R.shape[0])
        t_loss, t_correct = evaluate(params, images, pool.variant_R, labels, slope_R, part=name)
        out[f"{name}/loss"] = t_loss[:, 0].mean(1)
        out[f"{name}/acc"] = t_correct[:, 0].mean(1, dtype=jnp.float32)
      return out

    nan = jnp.full(pool.variant_R.shape, jnp.nan, jnp.float32)

    def skip(params):
      return {f"{name}/{m}": nan for name in sets for m in ("loss", "acc")}

    tested = jax.lax.cond(test_due | newly_fit_R.any(), test, skip, params) if sets else {}
    return tested.pop("test/loss", nan), tested.pop("test/acc", nan), tested

  return tests


def make_epochs_round(config: Config, train_epoch, evaluate):
  """The epochs study's epoch, one network per run: `round_fn(state, pool, runs, test_due)`.

  The test set is evaluated when `test_due` or when a run fits this epoch (lax.cond: one
  program, the test pass only runs when needed); otherwise test metrics are NaN.
  """
  n_train = config.num_train
  stopping = policies.early_stopping(config.study.fit_target, config.study.early_stop)
  tests = make_tests(evaluate)

  def round_fn(state: StudyState, pool: Pool, runs: RunArrays, test_due):
    k_train, _ = round_keys(run_keys(config.runs.seed, runs.seed_R), state.round)
    idx = state.idx_RxMxN
    params, opt_state, epoch_loss, epoch_acc = train_epoch(
      state.params, state.opt_state, pool, idx, member_keys(k_train, 1), runs, state.active_R
    )
    seen = state.seen_RxMxP.at[:, 0].set(mark_seen(state.seen_RxMxP[:, 0], idx[:, 0], n_train))
    slope_R = runs.numbers["leaky_slope"]
    loss, correct = eval_pool(evaluate, params, pool, slope_R)
    m = half_metrics(loss[:, 0], correct[:, 0], idx[:, 0], None, seen[:, 0], n_train)
    # Training accuracy is measured on the samples trained on (Keras' `acc` is a running mean
    # under dropout-free training here, the same samples).
    train_loss, train_acc = trained_metrics(loss, correct, idx, n_train)
    epoch = state.round + 1
    fit, newly_fit = stopping.update(
      policies.FitState(state.fit_epoch_R, state.active_R), train_acc, epoch
    )
    test_loss, test_acc, tested = tests(params, pool, slope_R, test_due, newly_fit)
    metrics = {
      "train/loss": train_loss,
      "train/acc": train_acc,
      "val/loss": m["val_loss"],
      "val/acc": m["val_acc"],
      "test/loss": test_loss,
      "test/acc": test_acc,
      "train/epoch_loss": epoch_loss[:, 0],
      "train/epoch_acc": epoch_acc[:, 0],
      "fit_epoch": fit.fit_epoch_R,
      "active": state.active_R,
      **tested,
      **(parameter_metrics(params) if config.study.log_params else {}),
    }
    new_state = state._replace(
      params=params,
      opt_state=opt_state,
      seen_RxMxP=seen,
      active_R=fit.active_R,
      fit_epoch_R=fit.fit_epoch_R,
      round=epoch,
    )
    return new_state, metrics

  return round_fn


# The round of each study kind (config.STUDY_KINDS): `make(config, train_epoch, evaluate)`.
ROUND_MAKERS = {"swap": make_swap_round, "epochs": make_epochs_round}
