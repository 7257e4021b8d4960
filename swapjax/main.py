"""`python -m swapjax.main --experiment=NAME [--workdir=W] [--data_dir=D] [--set key=value]`.

This file is intentionally kept short: it parses flags and hands a frozen config to the runner.
"""

import json
import os
import sys
from pathlib import Path

from absl import app

from swapjax import api, peers, registry, startup
from swapjax import config as configlib
from swapjax import flags as swapflags


def _fail(message: str) -> None:
  print(f"swapjax: error: {message}", file=sys.stderr)
  sys.exit(2)


def _with_notes(line: str, error: Exception) -> str:
  """An outcome's line and, one per line below it, the notes added on the way out (a save in
  flight that failed as the study stopped)."""
  return "\n".join([line, *getattr(error, "__notes__", ())])


def main(argv):
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}")
  if swapflags.LIST.value:
    width = max(map(len, registry.names()))
    for name in registry.names():
      print(f"{name:{width}s} {registry.describe(name)}")
    return
  name = swapflags.EXPERIMENT.value
  if name is None:
    _fail(f"--experiment is required; one of: {', '.join(registry.names())}")
  try:
    config = configlib.apply_overrides(registry.get_config(name), swapflags.SET.value)
  except configlib.ConfigError as e:
    _fail(str(e))
  if swapflags.SHOW_CONFIG.value:
    print(json.dumps(config.to_nested(), indent=2))
    return
  cadence = (swapflags.CHECKPOINT_EVERY.value, swapflags.CHECKPOINT_MIN_INTERVAL.value)
  try:
    api.check_checkpoint_cadence(*cadence, prefix="--")
  except configlib.ConfigError as e:
    _fail(str(e))
  workdir_path = swapflags.WORKDIR.value or f"runs/{name}"
  distributed = None
  if swapflags.DISTRIBUTED.value:
    if not peers.supervised():  # this process watches the others; a child runs the study
      timeouts = (swapflags.HEARTBEAT_TIMEOUT.value, swapflags.STALL_TIMEOUT.value)
      sys.exit(peers.supervise(sys.argv[1:], workdir_path, *timeouts))
    distributed = dict(
      coordinator_address=swapflags.COORDINATOR.value,
      num_processes=swapflags.NUM_PROCESSES.value,
      process_id=swapflags.PROCESS_ID.value,
      heartbeat_timeout=swapflags.HEARTBEAT_TIMEOUT.value,
      startup_timeout=swapflags.STARTUP_TIMEOUT.value,
    )
  _start(config, distributed, workdir_path)
  from swapjax import checkpoint, data, mesh, runner, workdir  # heavy imports after validation

  options = runner.RunOptions(
    workdir=workdir_path,
    data_dir=swapflags.DATA_DIR.value,
    tfds_data_dir=swapflags.TFDS_DATA_DIR.value,
    restart=swapflags.RESTART.value,
    stop_after=swapflags.STOP_AFTER.value,
    checkpoint_every=swapflags.CHECKPOINT_EVERY.value,
    checkpoint_min_interval=swapflags.CHECKPOINT_MIN_INTERVAL.value,
  )
  try:
    path = runner.run(config, name, options)
  except (configlib.ConfigError, data.DataError, workdir.WorkdirError, mesh.MeshError) as e:
    _fail(str(e))
  except checkpoint.CheckpointError as e:
    print(_with_notes(f"swapjax: error: {e}", e), file=sys.stderr)
    sys.exit(1)
  except runner.StudyStopped as e:
    print(_with_notes(f"swapjax: {e}", e), file=sys.stderr)
    sys.exit(e.code)
  except Exception as e:
    if peers.supervised():  # a failed collective: its watcher tells whether a process was lost
      peers.fail_to_watcher(e)
    raise
  print(f"swapjax: report written to {path}")


def _start(config, distributed: dict | None, workdir_path: str) -> None:
  """startup.start; a distributed runtime that does not start is one line and status 75."""
  try:
    startup.start(config, distributed)
  except startup.DistributedStartError as e:
    status = peers.say_rerun(f"JAX's distributed runtime did not start ({e})", Path(workdir_path))
    os._exit(status)  # JAX's shutdown would wait for the processes that never came


def _parse_flags(argv):
  """absl parsing with bad flags reported as one line and exit status 2."""
  from absl import flags

  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e).splitlines()[0])


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
