"""Orbax checkpoints of a study's state (every round, every `--checkpoint_every` rounds, or
continuously: after each round whose previous checkpoint's write has finished), with fallback
to the newest one that restores; `pack` / `unpack` turn the programs' chunk states into the
checkpointed tree and back.

A checkpoint is only taken for good once orbax has committed it (an unfinished write stays a
`*.orbax-checkpoint-tmp` folder, which orbax ignores). A committed one that fails to restore
(a truncated file, a missing marker) is skipped with a message, and the previous one is used.

A state of at most PACK_BYTES on one device or the host is saved packed: `{"packed": {dtype:
every leaf of that dtype raveled and joined, in the tree's order}}` (`to_saved`). orbax's save
costs a share per array beside its cost per save, which for a tiny study's state of 30-60
arrays is more than a round of its networks; packed, it is one save of a few arrays. Larger states
and states sharded over a mesh are saved as the tree itself; a checkpoint restores in the form
it was written (its orbax metadata says which), so older workdirs resume.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from swapjax import mesh as meshlib
from swapjax.state import StudyState


class CheckpointError(RuntimeError):
  """A checkpoint that could not be written; one line for the user. Earlier ones stay valid."""

  def __init__(self, directory, step: int, cause: Exception):
    which = f"checkpoint {step}" if step >= 0 else "a checkpoint"
    reason = (
      "disk full" if getattr(cause, "errno", None) == 28 else f"{type(cause).__name__}: {cause}"
    )
    super().__init__(
      f"{which} could not be written to {directory} ({reason}); the previous "
      "checkpoints are intact; free space and rerun the same command to resume"
    )


class Checkpointer:
  """Async `CheckpointManager` keeping the newest `keep` rounds, which says when a round's
  checkpoint is `due`: every `every` rounds, or continuously (`every=0`: orbax's
  `ContinuousCheckpointingPolicy`, each round whose previous checkpoint's write has finished
  and, with `min_interval`, at least that many seconds after the previous one), and at the last
  round."""

  def __init__(
    self, directory, keep: int = 3, async_save: bool = True, every: int = 1, min_interval: int = 0
  ):
    # orbax's array writer refuses relative paths (in its background thread), and the default
    # --workdir is relative.
    self._directory = Path(directory).absolute()
    self._continuous = every == 0
    policy = None
    if self._continuous:
      policy = ocp.checkpoint_managers.ContinuousCheckpointingPolicy(
        minimum_interval_secs=min_interval or None
      )
    self._options = ocp.CheckpointManagerOptions(
      max_to_keep=keep,
      create=True,
      enable_async_checkpointing=async_save,
      save_decision_policy=policy,
    )
    self._every = every
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    # The handler named: a new manager's `item_metadata` then reads the saved tree.
    return ocp.CheckpointManager(
      str(self._directory), options=self._options, item_handlers=ocp.StandardCheckpointHandler()
    )

  def _set_aside(self, steps: list[int], notes: list[str]) -> None:
    """Moves damaged steps to `damaged-checkpoints/` beside the folder (nothing is deleted)."""
    if not steps:
      return
    self._manager.close()
    target = self._directory.parent / "damaged-checkpoints"
    target.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for step in steps:
      destination = target / f"{step}-{stamp}"
      (self._directory / str(step)).rename(destination)
      notes.append(f"moved damaged checkpoint {step} to {destination}")
    self._manager = self._open()

  def due(self, step: int, last: int) -> bool:
    """Whether round `step`'s checkpoint is due (`last`: the study's last round). Continuous:
    call it after every round on every process alike (process 0 decides, see `may_save`)."""
    if self._continuous:
      return self.may_save(step) or step == last
    return step == last or step % self._every == 0

  def may_save(self, step: int) -> bool:
    """Continuous checkpoints: whether `step` may be saved without waiting, that is, no earlier
    checkpoint's write is still in flight. Process 0 decides for every process (orbax's
    policy, through JAX's distributed runtime): call it on every process at the same rounds."""
    return self._manager.should_save(step)

  def save(self, step: int, state) -> None:
    """Saves `step` (async); it first waits for an earlier save's write still in flight.
    Continuous: saved whatever the policy says (the caller decided)."""
    try:
      saved = self._manager.save(
        step, args=ocp.args.StandardSave(to_saved(state)), force=self._continuous
      )
    except Exception as e:  # noqa: BLE001 - disk full, permissions, a failed earlier async save
      raise CheckpointError(self._directory, step, e) from None
    if not saved:
      raise RuntimeError(f"orbax did not save checkpoint {step} (not newer than the latest?)")

  def wait(self) -> None:
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001 - an async write that failed
      raise CheckpointError(self._directory, -1, e) from None

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore_latest(self, abstract_state, notes: list[str]):
    """(step, state) of the newest checkpoint that restores, or (0, None) if none does."""
    damaged = []
    for step in reversed(self.steps()):
      try:
        saved_tree = self._manager.item_metadata(step).tree
        packed = isinstance(saved_tree, dict) and set(saved_tree) == {PACKED}
        target = packed_abstract(abstract_state) if packed else abstract_state
        state = self._manager.restore(step, args=ocp.args.StandardRestore(target))
        state = from_packed(state, abstract_state) if packed else state
      except Exception as e:  # noqa: BLE001 - any failure means this checkpoint is unusable
        message = (
          f"checkpoint {step} is damaged ({type(e).__name__}: "
          f"{str(e).splitlines()[0][:160] if str(e) else ''}); falling back to an "
          "earlier one"
        )
        logging.warning(message)
        print(f"swapjax: {message}", flush=True)
        notes.append(message)
        damaged.append(step)
        continue
      self._set_aside(damaged, notes)
      return step, state
    self._set_aside(damaged, notes)
    return 0, None

  def close(self) -> None:
    """Waits for the save in flight, then closes the manager, also when that save failed."""
    try:
      self.wait()
    except CheckpointError:
      with contextlib.suppress(Exception):  # the failed save again: the error above says it
        self._manager.close()
      raise
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    """Closes on every way out: the save in flight finishes first. If the study is already
    failing, a failed save is added to its error as a note instead of replacing it."""
    if exc is None:
      self.close()
      return
    try:
      self.close()
    except CheckpointError as failed:
      exc.add_note(f"swapjax: {failed}")


def abstract_like(state):
  """The abstract target orbax restores into (shapes, dtypes and shardings of `state`)."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


PACKED = "packed"  # the key of a packed checkpoint's tree (see the module)
PACK_BYTES = 64 * 2**20  # larger states are saved as their tree


def _packable(leaves) -> bool:
  """Whether leaves are small and each whole on one device or the host."""
  whole = all(
    isinstance(leaf, np.ndarray | np.generic)
    or (isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) == 1)
    for leaf in leaves
  )
  return whole and sum(leaf.nbytes for leaf in leaves) <= PACK_BYTES


def to_saved(state):
  """The tree orbax saves: `state` packed (see the module) where `_packable`, else `state`."""
  leaves = jax.tree.leaves(state)
  if not leaves or not _packable(leaves):
    return state
  by_dtype: dict[str, list[np.ndarray]] = {}
  for leaf in jax.device_get(leaves):
    by_dtype.setdefault(np.dtype(leaf.dtype).name, []).append(np.ravel(leaf))
  return {PACKED: {name: np.concatenate(parts) for name, parts in by_dtype.items()}}


def packed_abstract(abstract_state):
  """The abstract tree of `to_saved` for a state of `abstract_state`'s leaves."""
  sizes: dict[str, int] = {}
  for leaf in jax.tree.leaves(abstract_state):
    name = np.dtype(leaf.dtype).name
    sizes[name] = sizes.get(name, 0) + int(np.prod(leaf.shape, dtype=np.int64))
  return {PACKED: {k: jax.ShapeDtypeStruct((n,), np.dtype(k)) for k, n in sizes.items()}}


def from_packed(saved, abstract_state):
  """The state (host arrays) of a restored packed tree, shaped like `abstract_state`."""
  offsets = dict.fromkeys(saved[PACKED], 0)
  leaves, treedef = jax.tree.flatten(abstract_state)
  out = []
  for leaf in leaves:
    name, size = np.dtype(leaf.dtype).name, int(np.prod(leaf.shape, dtype=np.int64))
    flat = np.asarray(saved[PACKED][name])
    out.append(flat[offsets[name] : offsets[name] + size].reshape(leaf.shape))
    offsets[name] += size
  for name, flat in saved[PACKED].items():
    if offsets[name] != np.size(flat):
      raise ValueError(f"it holds {np.size(flat)} {name} values, the state {offsets[name]}")
  return jax.tree.unflatten(treedef, out)


def _join_runs(*leaves):
  """One leaf of several chunks joined on the run axis (scalars, like the round, are shared)."""
  if not np.ndim(leaves[0]):
    return leaves[0]
  return (np.concatenate if isinstance(leaves[0], np.ndarray) else jnp.concatenate)(leaves)


def pack(programs, states):
  """The checkpointed tree: each program's state with its chunks joined on the run axis (so a
  checkpoint does not depend on the chunking or the device count); the state itself for one
  program, `{program_<i>: state}` for several. Chunks on several processes meet on every
  process's host (orbax writes host arrays from process 0)."""
  joined = []
  if jax.process_count() > 1 and any(p.device is not None for p in programs):
    states = chunks_on_host(programs, states)
  for i in sorted({p.program for p in programs}):
    chunks = [(p, s) for p, s in zip(programs, states, strict=True) if p.program == i]
    parts = [s for _, s in chunks]
    if len(parts) > 1 and any(p.device is not None for p, _ in chunks):
      parts = jax.device_get(parts)  # chunks on different devices meet on the host
    joined.append(parts[0] if len(parts) == 1 else jax.tree.map(_join_runs, *parts))
  return joined[0] if len(joined) == 1 else {f"program_{i}": s for i, s in enumerate(joined)}


def chunks_on_host(programs, states) -> list:
  """Every chunk's state as host arrays on every process, each process giving its own."""
  mine = {
    i: jax.device_get(state)
    for i, (built, state) in enumerate(zip(programs, states, strict=True))
    if meshlib.owns(built.device)
  }
  every = meshlib.exchange(mine)
  return [every[i] for i in range(len(programs))]


def unpack(programs, tree, like):
  """The chunk states of a packed tree, placed like the freshly initialised `like` states."""
  joined = [tree] if isinstance(tree, StudyState) else list(tree.values())
  out, offset = [], dict.fromkeys(range(len(joined)), 0)
  for built, fresh in zip(programs, like, strict=True):
    size, start = len(built.runs_table), offset[built.program]
    offset[built.program] += size
    if not meshlib.owns(built.device):  # another process's chunk: restored there
      out.append(fresh)
      continue
    part = jax.tree.map(
      lambda a, start=start, size=size: a if not np.ndim(a) else a[start : start + size],
      joined[built.program],
    )
    out.append(jax.tree.map(lambda a, ref: jax.device_put(a, ref.sharding), part, fresh))
  return out
