"""Swap properties: conservation, counts, identity, determinism, vmap equals a loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swapjax import swap

N, K_MAX = 50, 8


def _case(seed, k):
  rng = np.random.default_rng(seed)
  perm = rng.permutation(2 * N).astype(np.int32)
  a_miss = rng.random(N) < rng.random()
  b_correct = rng.random(N) < rng.random()
  return (
    jax.random.key(seed),
    jnp.asarray(perm[:N]),
    jnp.asarray(perm[N:]),
    jnp.asarray(a_miss),
    jnp.asarray(b_correct),
    jnp.asarray(k, jnp.int32),
  )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_partition_kept_and_moved_count(seed, k):
  key, a, b, a_miss, b_correct, kk = _case(seed, k)
  new_a, new_b, moved, ids, valid = swap.exchange(key, a, b, a_miss, b_correct, kk, K_MAX)
  assert sorted(np.concatenate([new_a, new_b])) == list(range(2 * N))
  assert len(set(np.asarray(new_a)) & set(np.asarray(new_b))) == 0
  expected = min(k, int(a_miss.sum()), int(b_correct.sum()))
  assert int(moved) == expected
  # Exactly `moved` ids left A, each was an a_miss position, and went to B.
  left_a = set(np.asarray(a)) - set(np.asarray(new_a))
  assert len(left_a) == expected
  assert left_a <= set(np.asarray(a)[np.asarray(a_miss)])
  assert left_a <= set(np.asarray(new_b))
  left_b = set(np.asarray(b)) - set(np.asarray(new_b))
  assert left_b <= set(np.asarray(b)[np.asarray(b_correct)])
  # Positions not involved are unchanged.
  assert int((np.asarray(new_a) != np.asarray(a)).sum()) == expected


def test_k_zero_is_identity():
  key, a, b, a_miss, b_correct, _ = _case(3, 0)
  new_a, new_b, moved, _, _ = swap.exchange(key, a, b, a_miss, b_correct, jnp.int32(0), K_MAX)
  np.testing.assert_array_equal(new_a, a)
  np.testing.assert_array_equal(new_b, b)
  assert int(moved) == 0


def test_same_key_same_result_other_key_differs():
  key, a, b, _, _, k = _case(5, 8)
  everything = jnp.ones(N, bool)
  one = swap.exchange(key, a, b, everything, everything, k, K_MAX)
  two = swap.exchange(key, a, b, everything, everything, k, K_MAX)
  three = swap.exchange(jax.random.key(99), a, b, everything, everything, k, K_MAX)
  np.testing.assert_array_equal(one[0], two[0])
  assert not np.array_equal(one[0], three[0])


def test_vmap_equals_loop():
  cases = [_case(s, k) for s, k in zip(range(6), [0, 1, 2, 5, 8, 8], strict=True)]
  stacked = [jnp.stack(x) for x in zip(*cases, strict=True)]
  batched = jax.vmap(lambda *a: swap.exchange(*a, k_max=K_MAX))(*stacked)
  for i, case in enumerate(cases):
    single = swap.exchange(*case, K_MAX)
    for got, want in zip(batched, single, strict=True):
      np.testing.assert_array_equal(got[i], want)


def test_selection_is_uniform_over_eligible():
  a = jnp.arange(N, dtype=jnp.int32)
  b = jnp.arange(N, 2 * N, dtype=jnp.int32)
  eligible = jnp.arange(N) < 10
  counts = np.zeros(N)
  for s in range(400):
    new_a, *_ = swap.exchange(jax.random.key(s), a, b, eligible, eligible, jnp.int32(1), 1)
    counts[np.asarray(new_a) != np.asarray(a)] += 1
  assert counts[10:].sum() == 0
  assert counts[:10].min() > 15  # each of the 10 eligible chosen about 40 times


@pytest.mark.parametrize(
  ("a_miss", "k"), [(0, 0), (5, 1), (9, 1), (10, 10), (99, 10), (100, 100), (4000, 100)]
)
def test_report_schedule(a_miss, k):
  table = swap.ScheduleTable(jnp.array([100, 10, 0], jnp.int32), jnp.array([100, 10, 1]))
  assert int(swap.schedule_k(table, jnp.int32(a_miss))) == (k if a_miss else 1)


def test_padding_rows_never_fire():
  table = swap.ScheduleTable(jnp.array([5, swap.NEVER], jnp.int32), jnp.array([3, 7]))
  assert int(swap.schedule_k(table, jnp.int32(4))) == 0
  assert int(swap.schedule_k(table, jnp.int32(6))) == 3


def test_count_moves():
  counts = swap.count_moves(
    jnp.zeros(6, jnp.int32), jnp.array([[0, 1], [4, 5]]), jnp.array([True, False])
  )
  np.testing.assert_array_equal(counts, [1, 0, 0, 0, 1, 0])
