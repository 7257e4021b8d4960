"""Sample-exchange rules as pure functions on device arrays (imports only jax).

Membership is a pair of int32 index arrays into the pool; a swap exchanges entries between
them, never images. Variable counts are masks over a static maximum `k_max`: pick the `k_max`
highest uniform scores among the eligible positions (a uniformly random ordered subset), then
keep the first `moved = min(k, #a_miss, #b_correct)` of them.
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
  key_a, key_b = jax.random.split(key)
  pos_a_K = random_positions(key_a, a_miss_N, k_max)
  pos_b_K = random_positions(key_b, b_correct_N, k_max)
  moved = jnp.minimum(jnp.minimum(k, a_miss_N.sum()), b_correct_N.sum()).astype(jnp.int32)
  valid_K = jnp.arange(k_max) < moved
  a_ids_K, b_ids_K = idx_a_N[pos_a_K], idx_b_N[pos_b_K]
  new_a = idx_a_N.at[pos_a_K].set(jnp.where(valid_K, b_ids_K, a_ids_K))
  new_b = idx_b_N.at[pos_b_K].set(jnp.where(valid_K, a_ids_K, b_ids_K))
  return new_a, new_b, moved, jnp.stack([a_ids_K, b_ids_K]), valid_K


def count_moves(move_count_P: jax.Array, moved_ids_2xK: jax.Array, valid_K: jax.Array):
  """Adds one to the move count of every pool sample that changed sides."""
  add = jnp.broadcast_to(valid_K, moved_ids_2xK.shape).astype(move_count_P.dtype)
  return move_count_P.at[moved_ids_2xK.reshape(-1)].add(add.reshape(-1))
