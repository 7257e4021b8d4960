"""A round compiled for one CPU device and loaded for another computes bitwise what the round
compiled for that device computes, on that device (swapjax/cpu/executables.py)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import jax
import numpy as np

jax.config.update("jax_num_cpu_devices", 2)
jax.config.update("jax_compilation_cache_dir", CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
from swapjax import registry, study
from swapjax.cpu import executables
from swapjax.config import apply_overrides

overrides = ["groups=recurrent_dropout", "num_seeds=4", "pool_size=60", "holdout_size=20"]
config = apply_overrides(registry.get_config("binary_addition"), overrides)
datasets = study.load_datasets(config, None, None)
first, second = study.build_programs(config, datasets, [None], jax.devices())
assert (first.device.id, second.device.id) == (0, 1)


def args(program):
  state = study.init_states([program])[0]
  return state, program.pool, program.runs, np.asarray(False)


compiled, fresh = executables.compile(first.round_fn.lower(*args(first)))
assert fresh
moved = executables.on_device(compiled, second.device)
assert moved is not None
direct, direct_fresh = executables.compile(second.round_fn.lower(*args(second)))
assert direct_fresh  # not in the cache: a different device assignment
got, want = moved(*args(second)), direct(*args(second))
for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
  assert a.devices() == {second.device}, a.devices()
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
# Executables the persistent cache loaded fail when serialized again: they are not moved, both
# from the cache itself and from JAX's in-memory cache of a lowering compiled before.
_, again_fresh = executables.compile(first.round_fn.lower(*args(first)))
assert not again_fresh
jax.clear_caches()
_, cached_fresh = executables.compile(first.round_fn.lower(*args(first)))
assert not cached_fresh
print("moved ok")
"""


def test_a_moved_round_is_bitwise_the_compiled_one(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  script = SCRIPT.replace("CACHE", repr(str(tmp_path / "cache")))
  result = subprocess.run(
    [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "moved ok" in result.stdout
