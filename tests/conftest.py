"""Test set-up: CPU, a persistent compilation cache, absl flags parsed, shared tiny configs."""

import json
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
from absl import flags  # noqa: E402

from swapjax import startup  # noqa: E402

# One persistent compilation cache for the tests and the studies they start as processes (both
# read SWAPJAX_COMPILATION_CACHE), every program cached as `swapjax.main` caches them: the suite
# builds the same small programs again in many tests.
os.environ.setdefault(
  "SWAPJAX_COMPILATION_CACHE", os.environ.get("SWAPJAX_TEST_CACHE", "/tmp/swapjax-test-jax-cache")
)
startup.enable_compilation_cache()
flags.FLAGS.mark_as_parsed()

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tiny_swap_config(**changes):
  from swapjax import registry

  base = registry.get_config("tiny").replace(rounds=2, num_seeds=2)
  return base.replace(**changes)


def run_rows(config, experiment: str, workdir) -> list[dict]:
  """Runs the study `config` in-process in `workdir` (no progress lines); its metric rows."""
  from swapjax import runner

  runner.run(config, experiment, runner.RunOptions(workdir=str(workdir), progress=False))
  return [json.loads(x) for x in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def shared_data():
  if not (SHARED_DATA / "mnist").is_dir():
    pytest.skip("../shared/data not present")
  return SHARED_DATA


# One run per pytest invocation, shared by test files.
@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
  """get(count) -> (rows, membership) of tests/distributed_job.py's study run on `count`
  processes without a kill: the scale-out and lost-process tests' reference."""
  from distributed_job import uninterrupted_runs

  return uninterrupted_runs(tmp_path_factory)


# The suite runs on two workers, a file to a worker (`-n 2 --dist loadfile` in pyproject.toml);
# these files, the slowest (cold cache, 2 cores), go out first so that the workers end together.
SLOWEST_FIRST = (
  "test_runner.py",
  "test_scale.py",
  "test_lost_process.py",
  "test_experiments.py",
  "test_rnn_kernel.py",
  "test_cifar10_arch.py",
  "test_round.py",
  "test_old_workdirs.py",
  "test_benchmarks.py",
  "test_backend.py",
)


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
