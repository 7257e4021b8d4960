"""The compiled round on a tiny pool: membership invariants, honest metrics, drivers, modes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_swap_config

from swapjax import backend, data, rounds, study, train
from swapjax.models import conv3x3_lax, make_model


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


def _rule_k(table, a_miss):
  """The report's rule from the parsed schedule table: k of the first threshold reached."""
  return next((k for threshold, k in table if a_miss >= threshold), 0)


def test_membership_is_a_partition_and_moves_are_counted(tiny):
  """Guards the swap bookkeeping in real rounds: `swap/k` is the schedule's k for
  `swap/a_miss` (0 during warm-up), `swap/moved` == min(k, a_miss, b_correct) exactly, the
  halves stay a partition of the pool, move counts add up, and something actually moves."""
  cfg, ds = tiny
  built, state, history = _run(cfg, ds, 2)
  idx = np.asarray(state.idx_RxMxN)
  for r in range(idx.shape[0]):
    assert sorted(idx[r].ravel()) == list(range(cfg.pool_size))
  moved = sum(h["swap/moved"] for h in history)
  np.testing.assert_array_equal(state.move_count_RxP.sum(1), 2 * moved)
  tables = cfg.schedules()
  for rnd, h in enumerate(history):
    for i, run in enumerate(built.runs_table):
      due = rnd >= run["warmup"]
      want_k = _rule_k(tables[run["condition"]], int(h["swap/a_miss"][i])) if due else 0
      assert h["swap/k"][i] == want_k, (rnd, run)
    np.testing.assert_array_equal(
      h["swap/moved"], np.minimum(np.minimum(h["swap/k"], h["swap/a_miss"]), h["swap/b_correct"])
    )
  schedule_runs = [i for i, r in enumerate(built.runs_table) if r["condition"] == "schedule"]
  assert moved[schedule_runs].min() > 0  # the rule fired and samples really moved
  assert (state.move_count_RxP[schedule_runs].sum(1) > 0).all()
  # Runs sharing a seed share their start: identical first-round metrics across conditions.
  np.testing.assert_array_equal(history[0]["AtoB/test_acc"][0], history[0]["AtoB/test_acc"][2])


def _predictions(cfg, ds, params_M):
  """Class predictions (M, P) of each member on the whole pool, computed here with a plain
  `lax` model, independently of the study's evaluation code."""
  model = make_model(cfg.model.name, conv3x3_lax, cfg.dropout)
  x = train.normalize(jnp.asarray(ds.train_images[: cfg.pool_size]), cfg.normalize)
  apply = jax.jit(lambda p: jnp.argmax(model.apply({"params": p}, x, train=False), -1))
  members = jax.tree.leaves(params_M)[0].shape[0]
  return np.stack(
    [np.asarray(apply(jax.tree.map(lambda a, m=m: a[m], params_M))) for m in range(members)]
  )


def _judged(pred_P, labels_P, ids):
  return pred_P[ids] == labels_P[ids]


def test_independent_mode_judges_each_half_with_the_other_model(tiny):
  """Guards which model judges which half: A's misses come from model B's predictions on A,
  B's hits from model A's predictions on B (seeds/000), and the ids that moved are exactly such
  samples. Fails if A judged itself, or B judged B."""
  cfg, ds = tiny
  built = study.build(cfg, ds)
  before = built.init_state(built.runs)
  idx0 = np.asarray(before.idx_RxMxN)
  after, m = study.step_round(built, before)
  after, m = jax.device_get((after, m))
  labels = np.asarray(built.pool.labels_RxP)
  differs = 0
  for r in range(idx0.shape[0]):
    pred = _predictions(cfg, ds, jax.tree.map(lambda a, r=r: a[r], after.params))
    a_ids, b_ids = idx0[r, 0], idx0[r, 1]
    a_miss_by_b = ~_judged(pred[1], labels[r], a_ids)
    b_correct_by_a = _judged(pred[0], labels[r], b_ids)
    assert m["swap/a_miss"][r] == a_miss_by_b.sum()
    assert m["swap/b_correct"][r] == b_correct_by_a.sum()
    differs += int((~_judged(pred[0], labels[r], a_ids)).sum() != a_miss_by_b.sum())
    differs += int(_judged(pred[1], labels[r], b_ids).sum() != b_correct_by_a.sum())
    left_a = np.setdiff1d(a_ids, after.idx_RxMxN[r, 0])
    left_b = np.setdiff1d(b_ids, after.idx_RxMxN[r, 1])
    assert len(left_a) == len(left_b) == m["swap/moved"][r]
    assert (pred[1][left_a] != labels[r][left_a]).all()  # B got every id that left A wrong
    assert (pred[0][left_b] == labels[r][left_b]).all()  # A got every id that left B right
  assert differs > 0  # the self-judged counts differ, so the test tells the two apart


def test_shared_mode_judges_b_before_and_a_after_the_b_epoch(tiny):
  """Guards the report's aliased model (`model_AtoB = model_BtoA = model`): B's hits are judged
  by the network after its A epoch and before its B epoch, A's misses by the network after
  its B epoch. The A-epoch network is rebuilt here from the round's own keys."""
  cfg, ds = tiny
  cfg = cfg.replace(shared_model=True, num_seeds=1, conditions=("schedule",))
  built = study.build(cfg, ds)
  before = built.init_state(built.runs)
  after, m = jax.device_get(study.step_round(built, jax.tree.map(jnp.copy, before)))
  idx0 = np.asarray(before.idx_RxMxN)
  model = make_model(cfg.model.name, backend.conv_function(built.conv_impl), cfg.dropout)
  train_epoch = jax.jit(train.make_train_epoch(cfg, model, train.make_optimizer(cfg), built.driver))
  k_train, _ = rounds.round_keys(rounds.run_keys(cfg.seed, built.runs.seed_R), before.round)
  keys = rounds.member_keys(k_train, 2)
  mid_params, *_ = train_epoch(
    before.params,
    before.opt_state,
    built.pool,
    before.idx_RxMxN[:, :1],
    keys[:, :1],
    built.runs,
    before.active_R,
  )
  labels = np.asarray(built.pool.labels_RxP)
  pred_mid = _predictions(cfg, ds, jax.tree.map(lambda a: a[0], mid_params))[0]
  pred_end = _predictions(cfg, ds, jax.tree.map(lambda a: a[0], after.params))[0]
  b_ids, a_ids = idx0[0, 1], idx0[0, 0]
  assert m["swap/b_correct"][0] == _judged(pred_mid, labels[0], b_ids).sum()
  assert m["swap/a_miss"][0] == (~_judged(pred_end, labels[0], a_ids)).sum()
  assert _judged(pred_end, labels[0], b_ids).sum() != m["swap/b_correct"][0]


def _recording(monkeypatch):
  """Records the pool ids of every training batch (S, R, M, B), in step order."""
  batches = []
  original = train.gather_batch

  def gather(pool, ids_RxMxB, mode):
    jax.debug.callback(lambda ids: batches.append(np.asarray(ids)), ids_RxMxB, ordered=True)
    return original(pool, ids_RxMxB, mode)

  monkeypatch.setattr(train, "gather_batch", gather)
  return batches


@pytest.mark.parametrize("driver", ["scan", "host"])
def test_epoch_trains_on_the_first_num_train_positions_each_once(tiny, monkeypatch, driver):
  """Guards Keras `validation_split`: an epoch trains every member on exactly the first
  `num_train` positions of its half, each once, and never on a validation position (the last
  `validation_split` of the half). The padding of the last partial batch is masked out."""
  cfg, ds = tiny
  cfg = cfg.replace(num_seeds=1, driver=driver)
  assert cfg.num_train % cfg.batch_size  # a partial last batch
  batches = _recording(monkeypatch)
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  idx = np.asarray(state.idx_RxMxN)
  jax.block_until_ready(study.step_round(built, state))
  jax.effects_barrier()
  ids_SxRxMxB = np.stack(batches)
  steps = -(-cfg.num_train // cfg.batch_size)
  assert ids_SxRxMxB.shape[0] == steps
  for r in range(idx.shape[0]):
    for mem in range(idx.shape[1]):
      trained = ids_SxRxMxB[:, r, mem].reshape(-1)[: cfg.num_train]
      assert sorted(trained) == sorted(idx[r, mem, : cfg.num_train])
      assert not set(trained) & set(idx[r, mem, cfg.num_train :])


def test_last_partial_batch_loss_is_the_mean_over_its_real_samples():
  """Guards the masked loss of a padded last batch: the mean over the real samples only (a
  bug dividing by the batch size, or counting the padding, fails)."""
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(8, 10)).astype(np.float32)
  labels = rng.integers(0, 10, 8)
  mask = (np.arange(8) < 3).astype(np.float32)
  per_sample, _ = train.per_sample("softmax", "cross_entropy", jnp.asarray(logits), labels, 0)
  got = float(train.masked_mean_loss(per_sample, mask))
  # Slices of the batch over the whole batch's count (gradient accumulation) sum to it.
  sliced = [
    train.masked_mean_loss(per_sample[s], mask[s], mask.sum()) for s in (slice(0, 2), slice(2, 8))
  ]
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  want = -log_p[np.arange(3), labels[:3]].mean()
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(float(sum(sliced)), want, rtol=1e-6)


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
  cfg = cfg.replace(warmup=(1,), conditions=("one",))
  _, _, history = _run(cfg, ds, 2)
  assert (history[0]["swap/k"] == 0).all() and (history[1]["swap/k"] == 1).all()


def test_scan_and_host_drivers_agree(tiny):
  cfg, ds = tiny
  cfg = cfg.replace(num_seeds=1)
  _, s1, h1 = _run(cfg, ds, 1)
  _, s2, h2 = _run(cfg.replace(driver="host"), ds, 1)
  np.testing.assert_array_equal(s1.idx_RxMxN, s2.idx_RxMxN)
  for key in h1[0]:
    np.testing.assert_allclose(h1[0][key], h2[0][key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_conv_formulations_give_the_same_round(tiny):
  cfg, ds = tiny
  cfg = cfg.replace(num_seeds=1, conditions=("none",))
  _, _, h1 = _run(cfg, ds, 1)
  _, _, h2 = _run(cfg.replace(conv_impl="lax", eval_population="vmap"), ds, 1)
  for key in h1[0]:
    np.testing.assert_allclose(h1[0][key], h2[0][key], rtol=2e-4, atol=2e-5, err_msg=key)


def test_init_without_llvm_optimisation_gives_the_same_state(tiny):
  cfg, ds = tiny
  built = study.build(cfg, ds)
  fast = jax.device_get(built.init_state(built.runs))
  options = backend.init_compiler_options()
  assert options or jax.default_backend() != "cpu"
  plain = jax.device_get(jax.jit(built.init_state_fn)(built.runs))
  for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(plain), strict=True):
    np.testing.assert_array_equal(a, b)


def test_round_compiles_once(tiny, monkeypatch):
  """Guards against a retrace per round (a changing weak type, sharding or Python value)."""
  cfg, ds = tiny
  make = rounds.ROUND_MAKERS["swap"]
  monkeypatch.setitem(
    rounds.ROUND_MAKERS, "swap", lambda *a, **k: chex.assert_max_traces(make(*a, **k), n=1)
  )
  built = study.build(cfg.replace(num_seeds=1), ds)
  state = built.init_state(built.runs)
  for _ in range(3):
    state, _ = study.step_round(built, state)
  jax.block_until_ready(state)


def test_shared_model_mode(tiny):
  cfg, ds = tiny
  cfg = cfg.replace(shared_model=True, num_seeds=1)
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
    study="epochs",
    dataset="mnist",
    model="cnn_004",
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


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_is_keras_sgd_with_a_per_run_learning_rate(momentum):
  """Guards the SGD optimiser: with the engine's `-lr * update`, two steps equal Keras'
  `v = m v - lr g; w += v` (a wrong sign, a missing momentum or a rate applied twice fails)."""
  from swapjax.config import Config

  opt = train.make_optimizer(Config(optimizer="sgd", momentum=momentum))
  lr, w = 0.1, jnp.array([1.0, -2.0])
  grads = [jnp.array([0.5, 0.25]), jnp.array([-1.0, 2.0])]
  state, v, keras_w = opt.init(w), np.zeros(2), np.asarray(w)
  for g in grads:
    update, state = opt.update(g, state, w)
    w = w - lr * update
    v = momentum * v - lr * np.asarray(g)
    keras_w = keras_w + v
  np.testing.assert_allclose(w, keras_w, rtol=1e-6)
