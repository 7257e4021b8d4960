"""Swap properties: conservation, counts, identity, determinism, vmap equals a loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swapjax import config as C
from swapjax import study, swap

N, K_MAX = 50, 8


def _case(seed, k):
  rng = np.random.default_rng(seed)
  perm = rng.permutation(2 * N).astype(np.int32)
  # Densities in [0.2, 0.8]: every case has eligible positions on both sides, so k > 0 moves.
  a_miss = rng.random(N) < rng.uniform(0.2, 0.8)
  b_correct = rng.random(N) < rng.uniform(0.2, 0.8)
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
  assert expected == k  # the cases have enough eligible positions: nothing here passes unmoved
  assert int(moved) == expected
  # Exactly `moved` ids left each side, each from an eligible position, and arrived on the other.
  left_a = set(np.asarray(a)) - set(np.asarray(new_a))
  left_b = set(np.asarray(b)) - set(np.asarray(new_b))
  assert len(left_a) == len(left_b) == expected
  assert left_a <= set(np.asarray(a)[np.asarray(a_miss)])
  assert left_b <= set(np.asarray(b)[np.asarray(b_correct)])
  assert left_a == set(np.asarray(new_b)) - set(np.asarray(b))
  assert left_b == set(np.asarray(new_a)) - set(np.asarray(a))
  # Positions not involved are unchanged.
  assert int((np.asarray(new_a) != np.asarray(a)).sum()) == expected
  assert int((np.asarray(new_b) != np.asarray(b)).sum()) == expected


def test_k_zero_is_identity():
  key, a, b, a_miss, b_correct, _ = _case(3, 0)
  assert a_miss.any() and b_correct.any()  # so only k = 0 keeps the halves as they are
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
  for x, y in zip(one, two, strict=True):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(one[0], three[0])


def test_vmap_equals_loop():
  cases = [_case(s, k) for s, k in zip(range(6), [0, 1, 2, 5, 8, 8], strict=True)]
  assert len({int(c[-1]) for c in cases}) > 1  # runs that differ, so a batch mix-up shows
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
  assert counts.sum() == 400  # one pair per draw
  assert counts[10:].sum() == 0
  assert counts[:10].min() > 15  # each of the 10 eligible chosen about 40 times


@pytest.mark.parametrize(
  ("a_miss", "k"), [(0, 1), (5, 1), (9, 1), (10, 10), (99, 10), (100, 100), (4000, 100)]
)
def test_report_schedule(a_miss, k):
  table = swap.ScheduleTable(jnp.array([100, 10, 0], jnp.int32), jnp.array([100, 10, 1]))
  assert int(swap.schedule_k(table, jnp.int32(a_miss))) == k


# a_miss -> k of the report's rules: "none" never swaps, "one" always one pair, "schedule" steps.
REPORT_RULES = {
  "none": {0: 0, 9: 0, 10: 0, 99: 0, 100: 0, 4000: 0},
  "one": {0: 1, 9: 1, 10: 1, 99: 1, 100: 1, 4000: 1},
  "schedule": {0: 1, 9: 1, 10: 10, 99: 10, 100: 100, 4000: 100},
  # Custom rules, wider and narrower than the defaults, so padding and row order matter.
  "late": {0: 0, 9: 0, 10: 0, 99: 0, 100: 3, 4000: 3},
  "wide": {0: 0, 9: 2, 10: 2, 99: 4, 100: 4, 4000: 5},
}


def test_report_rules_through_config_and_run_arrays():
  """Guards the whole path from schedule text to k: a parser that sorts ascending, schedule_k with
  `>` for `>=`, build_runs padding rows that fire (threshold 0 instead of NEVER) or writing rows
  shifted / into the wrong run, and a run getting another condition's table."""
  assert C.DEFAULT_SCHEDULES == "none=0:0;one=0:1;schedule=100:100,10:10,0:1"
  cfg = C.apply_overrides(
    C.Config(),
    [
      f"swap_schedules={C.DEFAULT_SCHEDULES};late=100:3;wide=2000:5,1:2,50:4,3000:5",
      "conditions=none,one,schedule,late,wide",
      "num_seeds=2",
    ],
  )
  table = C.run_table(cfg)
  runs = study.build_runs(cfg, table)
  assert runs.threshold_RxT.shape == runs.k_RxT.shape == (len(table), 4)
  a_miss_A = jnp.asarray(list(REPORT_RULES["none"]), jnp.int32)
  k_RxA = jax.vmap(jax.vmap(swap.schedule_k, in_axes=(None, 0)))(
    swap.ScheduleTable(runs.threshold_RxT, runs.k_RxT), jnp.broadcast_to(a_miss_A, (len(table), 6))
  )
  for run, k_A in zip(table, np.asarray(k_RxA), strict=True):
    assert (
      dict(zip(REPORT_RULES["none"], k_A.tolist(), strict=True)) == REPORT_RULES[run["condition"]]
    ), run
  # The default schedule on its own (width 3), one a_miss per run as a round sees it.
  default = C.apply_overrides(C.Config(), ["warmup=0", "num_seeds=1"])
  runs = study.build_runs(default, C.run_table(default))
  for a_miss, want in REPORT_RULES["schedule"].items():
    k_R = jax.vmap(swap.schedule_k)(
      swap.ScheduleTable(runs.threshold_RxT, runs.k_RxT), jnp.full(3, a_miss, jnp.int32)
    )
    assert k_R.tolist() == [0, 1, want], a_miss


def test_padding_rows_never_fire():
  table = swap.ScheduleTable(jnp.array([5, swap.NEVER], jnp.int32), jnp.array([3, 7]))
  assert int(swap.schedule_k(table, jnp.int32(4))) == 0
  assert int(swap.schedule_k(table, jnp.int32(6))) == 3


def test_count_moves():
  counts = swap.count_moves(
    jnp.zeros(6, jnp.int32), jnp.array([[0, 1], [4, 5]]), jnp.array([True, False])
  )
  np.testing.assert_array_equal(counts, [1, 0, 0, 0, 1, 0])
