"""Sample-exchange rules as pure functions on device arrays (imports only jax).

Membership is a pair of int32 index arrays into the pool; a swap exchanges entries between
them, never images. Variable counts are masks over a static maximum `k_max`: pick the `k_max`
highest uniform scores among the eligible positions (a uniformly random ordered subset), then
keep the first `moved = min(k, #a_miss, #b_correct)` of them.

Two rules pair the same positions (`EXCHANGES`, config `exchange`): `exchange` ("swap") trades
the pool indices of each pair, so A and B stay a partition of the pool; `copy` writes B's index
into A's position and leaves B as it is. `copy` is what report 000's
`x_a[i], x_b[j] = x_b[j], x_a[i]` does on NumPy rows (the right side are views, so B's row is
written back into B): A's miss becomes a duplicate of B's sample and A's own sample leaves the
study. Under `copy`, a position of A whose pool index is also in B holds a duplicate of that
B sample (`duplicates` counts them; from membership.npz: `np.isin(a_idx, b_idx)` per run).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

NEVER = jnp.iinfo(jnp.int32).max  # threshold of a padding row: never reached


class ScheduleTable(NamedTuple):
  """A swap-count rule: k = k_T[first t with a_miss >= threshold_T[t]], 0 if none.

  Rows are sorted by descending threshold; padding rows have threshold NEVER.
  """

  threshold_T: jax.Array  # int32 (T,)
  k_T: jax.Array  # int32 (T,)


def schedule_k(table: ScheduleTable, a_miss_count: jax.Array) -> jax.Array:
  """The number of pairs the rule asks to exchange for this a_miss count (int32 scalar)."""
  hit_T = a_miss_count >= table.threshold_T
  return jnp.where(hit_T.any(), table.k_T[jnp.argmax(hit_T)], 0).astype(jnp.int32)


def random_positions(key: jax.Array, eligible_N: jax.Array, k_max: int) -> jax.Array:
  """`k_max` positions in random order; the eligible ones come first."""
  scores_N = jnp.where(eligible_N, jax.random.uniform(key, eligible_N.shape), -1.0)
  return jax.lax.top_k(scores_N, k_max)[1]


def pairs(key: jax.Array, a_miss_N: jax.Array, b_correct_N: jax.Array, k: jax.Array, k_max: int):
  """The pairs both rules act on: (pos_a_K, pos_b_K, moved, valid_K).

  Pair `j < moved` is A's position `pos_a_K[j]` (an a_miss) with B's `pos_b_K[j]` (a b_correct),
  like the report's `A_miss[j], B_correct[j]` after `random.shuffle`; `valid_K = j < moved`.
  """
  key_a, key_b = jax.random.split(key)
  pos_a_K = random_positions(key_a, a_miss_N, k_max)
  pos_b_K = random_positions(key_b, b_correct_N, k_max)
  moved = jnp.minimum(jnp.minimum(k, a_miss_N.sum()), b_correct_N.sum()).astype(jnp.int32)
  return pos_a_K, pos_b_K, moved, jnp.arange(k_max) < moved


def exchange(
  key: jax.Array,
  idx_a_N: jax.Array,
  idx_b_N: jax.Array,
  a_miss_N: jax.Array,
  b_correct_N: jax.Array,
  k: jax.Array,
  k_max: int,
):
  """Swaps `min(k, #a_miss, #b_correct)` random pairs (a_miss in A, b_correct in B).

  Returns (idx_a', idx_b', moved, moved_ids_2xK, valid_K): the new memberships, the number of
  pairs exchanged, and the pool ids that changed sides (valid where `valid_K`).
  """
  pos_a_K, pos_b_K, moved, valid_K = pairs(key, a_miss_N, b_correct_N, k, k_max)
  a_ids_K, b_ids_K = idx_a_N[pos_a_K], idx_b_N[pos_b_K]
  new_a = idx_a_N.at[pos_a_K].set(jnp.where(valid_K, b_ids_K, a_ids_K))
  new_b = idx_b_N.at[pos_b_K].set(jnp.where(valid_K, a_ids_K, b_ids_K))
  return new_a, new_b, moved, jnp.stack([a_ids_K, b_ids_K]), valid_K


def copy(
  key: jax.Array,
  idx_a_N: jax.Array,
  idx_b_N: jax.Array,
  a_miss_N: jax.Array,
  b_correct_N: jax.Array,
  k: jax.Array,
  k_max: int,
):
  """Report 000's one-way copy: A's position of each pair takes B's pool index; B is unchanged.

  The same pairs as `exchange` for the same key. Returns (idx_a', idx_b, moved, moved_ids_2xK,
  valid_K): moved_ids are the ids overwritten in A (they leave the study unless B or another
  position of A holds them) and the B ids copied into A.
  """
  pos_a_K, pos_b_K, moved, valid_K = pairs(key, a_miss_N, b_correct_N, k, k_max)
  a_ids_K, b_ids_K = idx_a_N[pos_a_K], idx_b_N[pos_b_K]
  new_a = idx_a_N.at[pos_a_K].set(jnp.where(valid_K, b_ids_K, a_ids_K))
  return new_a, idx_b_N, moved, jnp.stack([a_ids_K, b_ids_K]), valid_K


# The rules by config value (`Config.exchange`): same signature, same pairs for the same key.
EXCHANGES = {"swap": exchange, "copy": copy}


def duplicates(idx_a_N: jax.Array, idx_b_N: jax.Array, pool_size: int) -> jax.Array:
  """Positions of A whose pool index B also holds (int32): A's duplicates of B's samples.

  Always 0 under `exchange`; under `copy`, the copies A holds now (a copy overwritten by a
  later copy counts once, the later one).
  """
  in_b_P = jnp.zeros(pool_size, bool).at[idx_b_N].set(True)
  return in_b_P[idx_a_N].sum().astype(jnp.int32)


def count_moves(move_count_P: jax.Array, moved_ids_2xK: jax.Array, valid_K: jax.Array):
  """Adds one to the move count of every pool sample that changed sides."""
  add = jnp.broadcast_to(valid_K, moved_ids_2xK.shape).astype(move_count_P.dtype)
  return move_count_P.at[moved_ids_2xK.reshape(-1)].add(add.reshape(-1))
