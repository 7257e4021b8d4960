"""The `copy` rule against report 000's NumPy swap statement, executed literally on rows.

The report swaps with `x_a[A_miss[j]], x_b[B_correct[j]] = x_b[B_correct[j]], x_a[A_miss[j]]`
(and the same for the one-hot labels) on NumPy arrays. Its right side are views, so the
statement copies B's row into A and leaves B as it was. Here the pairs of `swap.pairs` play the
report's shuffled `A_miss` and `B_correct`; the rows A and B hold after the NumPy loop must be
the pool rows of the memberships the rule returns, round after round.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_swap_config

from swapjax import config as C
from swapjax import data, study, swap

N, K_MAX, CLASSES = 16, 8, 10
P = 2 * N


def _pool(seed):
  """Distinct float image rows and one-hot label rows (keras' to_categorical) of a pool."""
  rng = np.random.default_rng(seed)
  images_P = rng.random((P, 4, 4, 3)).astype(np.float32)
  labels_P = np.eye(CLASSES, dtype=np.float32)[rng.integers(CLASSES, size=P)]
  perm = rng.permutation(P).astype(np.int32)
  return images_P, labels_P, perm[:N], perm[N:]


def _report_lists(key, a_miss_N, b_correct_N, k):
  """The report's `A_miss` and `B_correct` after `random.shuffle`: every eligible position, the
  pairs `swap.pairs` draws first (so the report's loop takes exactly those), the rest after."""
  pos_a, pos_b, moved, _ = swap.pairs(
    key, jnp.asarray(a_miss_N), jnp.asarray(b_correct_N), k, K_MAX
  )
  first_a = [int(p) for p in pos_a[: int(moved)]]
  first_b = [int(p) for p in pos_b[: int(moved)]]
  assert all(a_miss_N[first_a]) and all(b_correct_N[first_b])
  A_miss = first_a + [int(p) for p in np.flatnonzero(a_miss_N) if p not in first_a]
  B_correct = first_b + [int(p) for p in np.flatnonzero(b_correct_N) if p not in first_b]
  return A_miss, B_correct


def _numpy_round(x_a, x_b, y_a, y_b, A_miss, B_correct, k):
  """The report's loop body, verbatim, over min(len(A_miss), len(B_correct), k) pairs."""
  for j in range(min(len(A_miss), len(B_correct), k)):
    x_a[A_miss[j]], x_b[B_correct[j]] = x_b[B_correct[j]], x_a[A_miss[j]]
    y_a[A_miss[j]], y_b[B_correct[j]] = y_b[B_correct[j]], y_a[A_miss[j]]


def _scripted_rounds(seed):
  """(a_miss, b_correct, k) per round: random rounds of several pairs, a round without pairs,
  and rounds that copy one B sample into A twice and copy over a position holding a copy."""
  rng = np.random.default_rng(100 + seed)
  out = []
  for k in (5, 3, 0, 8):
    out.append((rng.random(N) < 0.5, rng.random(N) < 0.6, k))
  only = lambda *p: np.isin(np.arange(N), p)  # noqa: E731
  out.append((only(1), only(7), 1))  # B's position 7 into A's 1,
  out.append((only(1), only(3), 1))  # B's 3 over that copy,
  out.append((only(2), only(3), 1))  # and B's 3 again into A's 2: one B sample twice in A
  return out


def _replay(rule, seed):
  """Runs `rule` and the NumPy statement side by side; [(rule's rows, NumPy's rows)] per round,
  rows as (x_a, x_b, y_a, y_b), and the rule's final memberships."""
  images_P, labels_P, idx_a, idx_b = _pool(seed)
  x_a, x_b = images_P[idx_a], images_P[idx_b]  # copies, as train_test_split returns
  y_a, y_b = labels_P[idx_a], labels_P[idx_b]
  a, b = jnp.asarray(idx_a), jnp.asarray(idx_b)
  rounds = []
  for r, (a_miss, b_correct, k) in enumerate(_scripted_rounds(seed)):
    key = jax.random.key(1000 * seed + r)
    kk = jnp.int32(k)
    A_miss, B_correct = _report_lists(key, a_miss, b_correct, kk)
    _numpy_round(x_a, x_b, y_a, y_b, A_miss, B_correct, k)
    a, b, moved, _, _ = rule(key, a, b, jnp.asarray(a_miss), jnp.asarray(b_correct), kk, K_MAX)
    assert int(moved) == min(len(A_miss), len(B_correct), k)
    ours = (images_P[np.asarray(a)], images_P[np.asarray(b)])
    ours += (labels_P[np.asarray(a)], labels_P[np.asarray(b)])
    rounds.append((ours, (x_a.copy(), x_b.copy(), y_a.copy(), y_b.copy())))
  return rounds, np.asarray(a), np.asarray(b)


def _same_rows(rounds) -> bool:
  return all(
    np.array_equal(o, t) for ours, theirs in rounds for o, t in zip(ours, theirs, strict=True)
  )


@pytest.mark.parametrize("seed", range(4))
def test_copy_reproduces_the_report_statement_row_for_row(seed):
  """Guards the rule against the report's own code: after every round the rows A and B hold
  under `copy` equal the NumPy result, B never changes, and the scripted rounds really leave
  A with duplicates (so the test sees the difference to an exchange)."""
  rounds, a, b = _replay(swap.copy, seed)
  assert _same_rows(rounds)
  images_P, _, _, idx_b = _pool(seed)
  np.testing.assert_array_equal(b, idx_b)
  for _, (_, x_b, _, _) in rounds:
    np.testing.assert_array_equal(x_b, images_P[idx_b])  # the NumPy B never changes either
  assert a[1] == a[2] == idx_b[3]  # the scripted last rounds: B's sample 3 twice in A
  assert int(swap.duplicates(jnp.asarray(a), jnp.asarray(b), P)) > 0


@pytest.mark.parametrize("seed", range(4))
def test_the_real_exchange_differs_from_the_report_statement(seed):
  """The same test body with today's exchange must fail: if `copy` became an exchange, the
  test above would fail the same way."""
  rounds, a, b = _replay(swap.exchange, seed)
  assert not _same_rows(rounds)
  assert sorted(np.concatenate([a, b]).tolist()) == list(range(P))  # still a partition


def test_the_exchange_is_the_statement_with_copied_right_sides():
  """What the report meant: with `.copy()` on the right side the NumPy statement is an
  exchange, and that is what `exchange` does on the same pairs."""
  images_P, labels_P, idx_a, idx_b = _pool(9)
  x_a, x_b = images_P[idx_a], images_P[idx_b]
  a, b = jnp.asarray(idx_a), jnp.asarray(idx_b)
  for r, (a_miss, b_correct, k) in enumerate(_scripted_rounds(9)):
    key = jax.random.key(r)
    A_miss, B_correct = _report_lists(key, a_miss, b_correct, jnp.int32(k))
    for j in range(min(len(A_miss), len(B_correct), k)):
      x_a[A_miss[j]], x_b[B_correct[j]] = x_b[B_correct[j]].copy(), x_a[A_miss[j]].copy()
    am, bc = jnp.asarray(a_miss), jnp.asarray(b_correct)
    a, b, *_ = swap.exchange(key, a, b, am, bc, jnp.int32(k), K_MAX)
    np.testing.assert_array_equal(images_P[np.asarray(a)], x_a)
    np.testing.assert_array_equal(images_P[np.asarray(b)], x_b)


def test_duplicates_counts_positions_of_a_holding_b_samples():
  a = jnp.array([0, 5, 5, 6, 2], jnp.int32)
  b = jnp.array([5, 6, 7, 8, 9], jnp.int32)
  assert int(swap.duplicates(a, b, 10)) == 3
  assert int(swap.duplicates(jnp.arange(5, dtype=jnp.int32), b, 10)) == 0


def test_copy_under_vmap_equals_a_loop():
  keys = jax.random.split(jax.random.key(0), 3)
  rng = np.random.default_rng(0)
  perms = np.stack([rng.permutation(P) for _ in range(3)]).astype(np.int32)
  a_miss = jnp.asarray(rng.random((3, N)) < 0.5)
  b_correct = jnp.asarray(rng.random((3, N)) < 0.5)
  k = jnp.array([0, 2, 8], jnp.int32)
  args = (keys, jnp.asarray(perms[:, :N]), jnp.asarray(perms[:, N:]), a_miss, b_correct, k)
  batched = jax.vmap(lambda *x: swap.copy(*x, k_max=K_MAX))(*args)
  for i in range(3):
    single = swap.copy(*(x[i] for x in args), K_MAX)
    for got, want in zip(batched, single, strict=True):
      np.testing.assert_array_equal(got[i], want)


def test_exchange_config_is_validated():
  assert C.apply_overrides(C.Config(), ["exchange=copy"]).exchange == "copy"
  with pytest.raises(C.ConfigError) as e:
    C.apply_overrides(C.Config(), ["exchange=move"])
  assert str(e.value) == "exchange=move: allowed values are swap, copy"


def test_copy_rounds_keep_b_and_count_a_duplicates():
  """Guards the wiring through the compiled round (shared model, as the report ran): B's
  membership never changes, every position of A that changed holds a pool id of B, and
  `swap/duplicates` is the count membership.npz shows (`np.isin(a_idx, b_idx)`)."""
  cfg = tiny_swap_config(shared_model=True, exchange="copy", conditions=("schedule",))
  ds = data.synthetic("cifar10", cfg.pool_size, cfg.holdout_size)
  built = study.build(cfg, ds)
  state = built.init_state(built.runs)
  idx0 = np.asarray(state.idx_RxMxN)
  moved = 0
  for r in range(2):
    state, m = jax.device_get(study.step_round(built, state, study.test_due(cfg, r)))
    idx = np.asarray(state.idx_RxMxN)
    moved = moved + m["swap/moved"]
    np.testing.assert_array_equal(idx[:, 1], idx0[:, 1])
    for run in range(idx.shape[0]):
      changed = idx[run, 0] != idx0[run, 0]
      assert np.isin(idx[run, 0][changed], idx0[run, 1]).all()
      assert m["swap/duplicates"][run] == np.isin(idx[run, 0], idx[run, 1]).sum()
  assert moved.min() > 0 and m["swap/duplicates"].min() > 0
  swapped = cfg.replace(exchange="swap")
  built = study.build(swapped, ds)
  _, m = jax.device_get(study.step_round(built, built.init_state(built.runs)))
  assert m["swap/moved"].min() > 0 and (m["swap/duplicates"] == 0).all()
