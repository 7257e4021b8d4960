"""The compiled round on a tiny pool: membership invariants, honest metrics, drivers, modes."""

import dataclasses

import jax
import numpy as np
import pytest
from conftest import tiny_swap_config

from swapjax import data, study


@pytest.fixture(scope="module")
def tiny():
  cfg = tiny_swap_config()
  return cfg, data.synthetic("cifar10", cfg.pool_size, cfg.holdout_size)


def _run(cfg, ds, rounds):
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  history = []
  for r in range(rounds):
    state, metrics = study.step_round(built, state, study.test_due(cfg, r))
    history.append(jax.device_get(metrics))
  return built, jax.device_get(state), history


def test_membership_is_a_partition_and_moves_are_counted(tiny):
  cfg, ds = tiny
  built, state, history = _run(cfg, ds, 2)
  idx = np.asarray(state.idx_RxHxN)
  for r in range(idx.shape[0]):
    assert sorted(idx[r].ravel()) == list(range(cfg.pool_size))
  moved = sum(h["swap/moved"] for h in history)
  assert (state.move_count_RxP.sum(1) == 2 * moved).all()
  for h in history:
    assert (h["swap/moved"] <= np.minimum(h["swap/k"], h["swap/a_miss"])).all()
    assert (h["swap/moved"] <= h["swap/b_correct"]).all()
  conds = [r["condition"] for r in built.runs_table]
  assert all(h["swap/k"][i] == 0 for h in history for i, c in enumerate(conds) if c == "none")
  # Runs sharing a seed share their start: identical first-round metrics across conditions.
  np.testing.assert_array_equal(history[0]["AtoB/test_acc"][0], history[0]["AtoB/test_acc"][2])


def test_seen_tracking_and_unseen_metrics(tiny):
  cfg, ds = tiny
  _, state, history = _run(cfg, ds, 1)
  seen = np.asarray(state.seen_RxMxP)
  assert (seen.sum(2) == cfg.num_train).all()  # one round: exactly the trained positions
  h = history[0]
  # Before any swap, the other half is entirely unseen: test == test_unseen.
  np.testing.assert_allclose(h["AtoB/test_acc"], h["AtoB/test_unseen_acc"])
  assert (h["AtoB/test_unseen_n"] == cfg.half_size).all()
  for key in ["AtoB/train_loss", "BtoA/val_acc", "AtoB/holdout_acc", "swap/a_miss"]:
    assert np.isfinite(h[key]).all()


def test_warmup_suppresses_swaps(tiny):
  cfg, ds = tiny
  cfg = dataclasses.replace(cfg, warmup=(1,), conditions=("one",))
  _, _, history = _run(cfg, ds, 2)
  assert (history[0]["swap/k"] == 0).all() and (history[1]["swap/k"] == 1).all()


def test_scan_and_host_drivers_agree(tiny):
  cfg, ds = tiny
  cfg = dataclasses.replace(cfg, num_seeds=1)
  _, s1, h1 = _run(cfg, ds, 1)
  _, s2, h2 = _run(dataclasses.replace(cfg, driver="host"), ds, 1)
  np.testing.assert_array_equal(s1.idx_RxHxN, s2.idx_RxHxN)
  for key in h1[0]:
    np.testing.assert_allclose(h1[0][key], h2[0][key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_conv_formulations_give_the_same_round(tiny):
  cfg, ds = tiny
  cfg = dataclasses.replace(cfg, num_seeds=1, conditions=("none",))
  _, _, h1 = _run(cfg, ds, 1)
  _, _, h2 = _run(dataclasses.replace(cfg, conv_impl="lax", eval_population="vmap"), ds, 1)
  for key in h1[0]:
    np.testing.assert_allclose(h1[0][key], h2[0][key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_init_without_llvm_optimisation_gives_the_same_state(tiny):
  cfg, ds = tiny
  built = study.build(cfg, ds)
  fast = jax.device_get(built.init_state(built.runs))
  options = study.init_compiler_options(jax.default_backend())
  assert options or jax.default_backend() != "cpu"
  plain = jax.device_get(jax.jit(built.init_state.__wrapped__)(built.runs))
  for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain), strict=True):
    np.testing.assert_array_equal(a, b)


def test_round_compiles_once(tiny):
  cfg, ds = tiny
  built = study.build(dataclasses.replace(cfg, num_seeds=1), ds)
  state = built.init_state(built.runs)
  for _ in range(3):
    state, _ = study.step_round(built, state)
  assert built.round_fn._cache_size() == 1


def test_shared_model_mode(tiny):
  cfg, ds = tiny
  cfg = dataclasses.replace(cfg, shared_model=True, num_seeds=1)
  built, state, history = _run(cfg, ds, 2)
  assert jax.tree.leaves(state.params)[0].shape[1] == 1
  seen = np.asarray(state.seen_RxMxP)
  assert (seen.sum(2) >= 2 * cfg.num_train).all()  # one network trained on both halves
  h = history[1]
  # The one network has trained on both halves: of its "test" half only the positions held
  # out by validation_split can be unseen.
  assert (h["BtoA/test_unseen_n"] <= cfg.half_size - cfg.num_train).all()


def test_memorize_round_labels_and_fit():
  from swapjax.config import Config

  cfg = Config(
    study="memorize",
    dataset="mnist",
    model="mnist_cnn",
    source="synthetic",
    pool_size=40,
    holdout_size=20,
    batch_size=8,
    rounds=3,
    num_seeds=1,
    conditions=("none",),
    warmup=(0,),
    label_corruption=(0.0, 0.5, 1.0),
    input_corruption=("none", "gaussian"),
    dropout=False,
    normalize="centered",
    learning_rate=(0.003,),
    fit_target=0.2,
    early_stop=True,
    eval_batch_size=16,
  )
  ds = data.synthetic("mnist", 100, 20)
  built = study.build(cfg, ds)
  labels = np.asarray(built.pool.labels_RxP)
  assert (labels[0] == ds.train_labels[:40]).all()  # corruption 0: true labels
  assert (labels[2] != ds.train_labels[:40]).sum() <= 20
  assert [r["input_corruption"] for r in built.runs_table] == ["none", "gaussian", "none", "none"]
  assert list(np.asarray(built.pool.variant_R)) == [0, 1, 0, 0]
  state = built.init_state(built.runs)
  fit_seen = False
  for r in range(3):
    params_before = jax.device_get(state.params)
    active_before = np.asarray(state.active_R)
    state, m = study.step_round(built, state, study.test_due(cfg, r))
    m = jax.device_get(m)
    for i in np.flatnonzero(~active_before):  # stopped runs keep their params
      for a, b in zip(jax.tree.leaves(params_before), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a[i], np.asarray(b)[i])
    fit_seen |= (m["fit_epoch"] > 0).any()
  assert fit_seen
