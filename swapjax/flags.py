"""Command-line flags (defined here, not in the module run with -m)."""

from absl import flags

from swapjax import registry

EXPERIMENT = flags.DEFINE_enum(
  "experiment", None, registry.names(), "Which experiment to run (see --list)."
)
WORKDIR = flags.DEFINE_string(
  "workdir", None, "Output folder (default: runs/<experiment>). Rerunning resumes."
)
DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the original dataset files.")
TFDS_DATA_DIR = flags.DEFINE_string(
  "tfds_data_dir", None, "A prepared tensorflow-datasets directory."
)
SET = flags.DEFINE_multi_string("set", [], "key=value config override (repeatable).")
LIST = flags.DEFINE_bool("list", False, "List the experiments and exit.")
RESTART = flags.DEFINE_bool(
  "restart",
  False,
  "Move the workdir's previous study into previous-<time>/ and start over (nothing is deleted).",
)
SHOW_CONFIG = flags.DEFINE_bool("show_config", False, "Print the resolved config and exit.")
STOP_AFTER = flags.DEFINE_integer(
  "stop_after",
  0,
  "Stop cleanly after this many rounds (as on SIGTERM); for testing resumption.",
  lower_bound=0,
)
CHECKPOINT_EVERY = flags.DEFINE_integer(
  "checkpoint_every",
  1,
  "Write a checkpoint after every N rounds (1: every round; 0: after each round whose previous "
  "checkpoint's write has finished, so the loop never waits for a write); the last round, an "
  "early stop and a stop (SIGTERM, Ctrl-C) always write one. After kill -9 a rerun repeats the "
  "rounds since the newest checkpoint, with the same results. For studies whose rounds take "
  "milliseconds (N > 1, or 0 on a GPU or TPU, where a round is shorter than a write).",
  lower_bound=0,
)
CHECKPOINT_MIN_INTERVAL = flags.DEFINE_integer(
  "checkpoint_min_interval",
  0,
  "With --checkpoint_every=0: at least this many seconds from one checkpoint to the next "
  "(orbax's minimum_interval_secs), so that a study of rounds of milliseconds spends its host "
  "time on rounds, not on saves; a kill -9 then costs at most about this many seconds of "
  "rounds and one write. 0 (default): none, a checkpoint as soon as the previous write is done.",
  lower_bound=0,
)
DISTRIBUTED = flags.DEFINE_bool(
  "distributed",
  False,
  "Multi-host: call jax.distributed.initialize() (auto-detected on Cloud TPU, SLURM and Open "
  "MPI; on plain machines give the three flags below). Every host runs the same command.",
)
COORDINATOR = flags.DEFINE_string("coordinator_address", None, "host:port of process 0.")
NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
HEARTBEAT_TIMEOUT = flags.DEFINE_integer(
  "heartbeat_timeout",
  60,
  "With --distributed: a process silent this many seconds is lost, and every other process "
  "exits with status 75 (rerun the same command to resume). Also JAX's distributed runtime's "
  "heartbeat and shutdown timeouts.",
  lower_bound=2,
)
STALL_TIMEOUT = flags.DEFINE_integer(
  "stall_timeout",
  0,
  "With --distributed: a process whose study finishes no round (nor its start-up and "
  "compilation) for this many seconds is stopped and every process exits with status 75, as "
  "for a lost one: a hung process. 0 (default): off. Set it above the longest start-up plus "
  "round.",
  lower_bound=0,
)
STARTUP_TIMEOUT = flags.DEFINE_integer(
  "startup_timeout",
  300,
  "With --distributed: seconds to wait for every process to join JAX's distributed runtime.",
  lower_bound=1,
)
