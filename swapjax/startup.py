"""A study's process start-up, shared by `python -m swapjax.main` and `swapjax.run`.

Everything here must happen before JAX starts its backends: the persistent compilation cache,
the backend's process set-up (on a CPU: XLA flags and the CPU split into devices) and, for a
multi-host job, JAX's distributed runtime.
"""

from __future__ import annotations

import os

from swapjax.config import Config


def enable_compilation_cache() -> None:
  """Reruns skip XLA compilation (about 1 s to 0.02 s per program on CPU); off with
  SWAPJAX_COMPILATION_CACHE=''. A cache folder the caller already chose is kept."""
  import jax

  folder = os.environ.get("SWAPJAX_COMPILATION_CACHE", "~/.cache/swapjax/xla")
  if folder and not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(folder))
    # Every program, not only those over JAX's default 1 s of compiling: a study of tiny
    # networks compiles many small programs (initialisers, evaluations, its rounds).
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


class DistributedStartError(RuntimeError):
  """JAX's distributed runtime did not start (a process missing, a coordinator unreachable)."""


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  heartbeat_timeout: int = 60,
  startup_timeout: int = 300,
) -> None:
  """JAX's distributed runtime (auto-detected on Cloud TPU, SLURM and Open MPI); CPU processes
  exchange data through gloo. A process silent for `heartbeat_timeout` seconds is lost to the
  runtime as to swapjax's own watch (swapjax.peers)."""
  import jax

  from swapjax import peers

  if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
      initialization_timeout=startup_timeout,
      heartbeat_timeout_seconds=heartbeat_timeout,
      shutdown_timeout_seconds=heartbeat_timeout,
    )
  except Exception as e:  # noqa: BLE001 - every way the runtime fails to start is one line
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise DistributedStartError(f"{reason}; waited up to {startup_timeout} s") from None
  peers.report_identity(jax.process_index(), jax.process_count())


def start(config: Config, distributed: dict | None = None) -> None:
  """Prepares this process for `config`'s study. `distributed`: the keyword arguments of
  `initialize_distributed` for a multi-host job, None for one process."""
  from absl import flags, logging

  from swapjax import backend

  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # absl-based libraries read flags; a notebook parses none
  enable_compilation_cache()
  backend.prepare_process(config, distributed is not None)
  if distributed is not None:
    initialize_distributed(**distributed)
