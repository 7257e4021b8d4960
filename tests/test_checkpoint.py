"""Checkpoints: small states saved packed (one array per dtype), larger ones as their tree, and
both forms (the tree is what older workdirs hold) restored exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from swapjax import checkpoint


def state():
  return {
    "params": {"w": jnp.arange(12.0).reshape(2, 3, 2), "b": jnp.full((2, 3), -0.5)},
    "seen": jnp.array([[True, False], [False, True]]),
    "count": (jnp.arange(4, dtype=jnp.int32), jnp.array(7, jnp.int32)),
    "host": np.arange(3, dtype=np.uint8),
  }


def assert_same(got, want):
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert np.asarray(a).dtype == np.asarray(b).dtype and np.shape(a) == np.shape(b)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_packing_joins_each_dtype_and_gives_every_leaf_back():
  saved = checkpoint.to_saved(state())
  assert set(saved) == {checkpoint.PACKED}
  assert {k: v.shape for k, v in saved[checkpoint.PACKED].items()} == {
    "float32": (18,),
    "bool": (4,),
    "int32": (5,),
    "uint8": (3,),
  }
  abstract = checkpoint.abstract_like(state())
  assert jax.tree.map(np.shape, checkpoint.packed_abstract(abstract)) == jax.tree.map(
    np.shape, saved
  )
  assert_same(checkpoint.from_packed(saved, abstract), state())


def saved_arrays(directory, step):
  manager = ocp.CheckpointManager(str(directory), item_handlers=ocp.StandardCheckpointHandler())
  tree = manager.item_metadata(step).tree
  return jax.tree.leaves(tree, is_leaf=lambda x: not isinstance(x, dict | list | tuple))


def test_a_small_state_is_saved_packed_and_restores_exactly(tmp_path):
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  ckpt.save(1, state())
  ckpt.close()
  assert len(saved_arrays(tmp_path / "c", 1)) == 4  # one per dtype, not one per leaf (6)
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  step, restored = ckpt.restore_latest(checkpoint.abstract_like(state()), [])
  ckpt.close()
  assert step == 1
  assert_same(restored, state())


def test_a_large_state_is_saved_as_its_tree_and_restores_exactly(tmp_path, monkeypatch):
  monkeypatch.setattr(checkpoint, "PACK_BYTES", 16)
  assert set(checkpoint.to_saved(state())) == set(state())
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  ckpt.save(1, state())
  ckpt.close()
  assert len(saved_arrays(tmp_path / "c", 1)) == 6
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  step, restored = ckpt.restore_latest(checkpoint.abstract_like(state()), [])
  ckpt.close()
  assert step == 1
  assert_same(restored, state())


def test_a_workdir_of_tree_checkpoints_resumes_and_goes_on_packed(tmp_path):
  """Older code saved the tree; this code restores it, and its newer packed checkpoint wins."""
  manager = ocp.CheckpointManager(
    str(tmp_path / "c"), options=ocp.CheckpointManagerOptions(create=True)
  )
  manager.save(1, args=ocp.args.StandardSave(state()))  # as older code wrote it
  manager.wait_until_finished()
  manager.close()
  abstract = checkpoint.abstract_like(state())
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  step, restored = ckpt.restore_latest(abstract, [])
  assert step == 1
  assert_same(restored, state())
  later = jax.tree.map(lambda a: a * 2 if np.asarray(a).dtype == np.float32 else a, state())
  ckpt.save(2, later)
  ckpt.close()
  assert len(saved_arrays(tmp_path / "c", 1)) == 6 and len(saved_arrays(tmp_path / "c", 2)) == 4
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  step, restored = ckpt.restore_latest(abstract, [])
  ckpt.close()
  assert step == 2
  assert_same(restored, later)


def test_a_packed_checkpoint_of_another_state_is_refused():
  saved = checkpoint.to_saved(state())
  smaller = {**state(), "host": np.arange(2, dtype=np.uint8)}
  with pytest.raises(ValueError, match="3 uint8 values, the state 2"):
    checkpoint.from_packed(saved, checkpoint.abstract_like(smaller))


def _disk_full():
  raise OSError(28, "No space left on device")


def test_a_failing_study_keeps_its_error_and_a_failed_save_becomes_a_note(tmp_path):
  with (
    pytest.raises(ValueError, match="the study's own error") as e,
    checkpoint.Checkpointer(tmp_path / "c") as ckpt,
  ):
    ckpt.save(1, state())
    ckpt.wait()
    ckpt._manager.wait_until_finished = _disk_full
    raise ValueError("the study's own error")
  assert any("disk full" in note for note in getattr(e.value, "__notes__", []))


def test_leaving_the_checkpointer_waits_for_the_save_in_flight(tmp_path):
  with checkpoint.Checkpointer(tmp_path / "c") as ckpt:
    ckpt.save(1, state())
  assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["1"]  # committed, no tmp folder
  with (
    pytest.raises(checkpoint.CheckpointError, match="disk full"),
    checkpoint.Checkpointer(tmp_path / "d") as ckpt,
  ):
    ckpt._manager.wait_until_finished = _disk_full


def test_a_failed_save_in_flight_still_closes_the_manager(tmp_path):
  closed = []
  ckpt = checkpoint.Checkpointer(tmp_path / "c")
  manager, real_close = ckpt._manager, ckpt._manager.close

  def close():
    closed.append(True)
    del manager.wait_until_finished  # orbax's own wait again, so its close ends its threads
    real_close()

  manager.wait_until_finished, manager.close = _disk_full, close
  with pytest.raises(checkpoint.CheckpointError, match="disk full"):
    ckpt.close()
  assert closed == [True]
