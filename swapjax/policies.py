"""Policies applied after train -> evaluate, in the optax mould: pure `(init, update)` pairs
whose state is a NamedTuple of per-run arrays (imports only jax).

`early_stopping`: a run has fit once its training accuracy reaches a target; with `stop` it then
stops training (its parameters freeze, its rows repeat). The swap rule is the other policy of
the engine, a pure function in `swap.py`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class FitState(NamedTuple):
  fit_epoch_R: jax.Array  # int32: first round (1-based) that reached the target, -1 before
  active_R: jax.Array  # bool: false once a run stopped


class Policy(NamedTuple):
  init: callable
  update: callable


def early_stopping(fit_target: float, stop: bool) -> Policy:
  """`update(state, train_acc_R, round) -> (state, newly_fit_R)`; `round` is 1-based."""

  def init(num_runs: int) -> FitState:
    return FitState(jnp.full(num_runs, -1, jnp.int32), jnp.ones(num_runs, bool))

  def update(state: FitState, train_acc_R, round_number):
    newly_fit = state.active_R & (state.fit_epoch_R < 0) & (train_acc_R >= fit_target)
    fit_epoch = jnp.where(newly_fit, round_number, state.fit_epoch_R)
    active = state.active_R & ~(newly_fit & stop)
    return FitState(fit_epoch, active), newly_fit

  return Policy(init, update)
