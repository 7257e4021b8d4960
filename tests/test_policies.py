"""The early-stopping policy: fit once, at the first round that reaches the target."""

import jax.numpy as jnp
import numpy as np
import pytest

from swapjax import policies


@pytest.mark.parametrize("stop", [True, False])
def test_fit_is_recorded_once_and_stops_only_when_asked(stop):
  """Guards the fit epoch (first round at or above the target, never moved later) and the
  stop (only with `stop`, only runs that fit); a `>` for `>=` or a refit fails."""
  policy = policies.early_stopping(0.9, stop)
  state = policy.init(3)
  history = [[0.5, 0.9, 0.95], [0.95, 0.2, 0.99], [0.99, 0.99, 0.99]]
  newly = []
  for round_number, acc in enumerate(history, start=1):
    state, fit_now = policy.update(state, jnp.asarray(acc), round_number)
    newly.append(np.asarray(fit_now).tolist())
  np.testing.assert_array_equal(state.fit_epoch_R, [2, 1, 1])  # run 1's fall does not refit
  assert newly == [[False, True, True], [True, False, False], [False, False, False]]
  np.testing.assert_array_equal(state.active_R, [not stop] * 3)
