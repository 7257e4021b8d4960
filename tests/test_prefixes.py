"""eval_shared_prefixes: a causal sequence network evaluated once per distinct input prefix
(swapjax/prefixes.py) gives every sample the outputs of the per-sample evaluation."""

import jax
import numpy as np
import pytest
from conftest import run_rows

from swapjax import backend, generated, prefixes, registry, study, train
from swapjax.config import apply_overrides, variant_configs


def _distinct(seqs_NxTxF, t):
  return {seq[: t + 1].tobytes() for seq in seqs_NxTxF}


def test_forest_lists_each_distinct_prefix_once():
  rng = np.random.default_rng(0)
  seqs = rng.integers(0, 2, size=(2, 300, 6, 2)).astype(np.float32)  # two input variants
  seqs[1, :100] = seqs[0, :100]  # prefixes shared across variants count once
  seqs[0, 5] = np.float32(-0.0) * seqs[0, 5]  # -0.0 is another input bitwise, a row of its own
  forest = prefixes.build(seqs)
  flat = seqs.reshape(600, 6, 2)
  assert forest.offsets[0] == 0 and len(forest.offsets) == 7
  for t in range(6):
    rows = slice(forest.offsets[t], forest.offsets[t + 1])
    assert forest.offsets[t + 1] - forest.offsets[t] == len(_distinct(flat, t))
    assert (forest.step_S[rows] == t).all()
    # each row's source sample has the row's prefix; its parent is the prefix one step shorter
    sources = forest.source_S[rows]
    assert len({flat[s, : t + 1].tobytes() for s in sources}) == len(sources)
    if t:
      parent_rows = forest.offsets[t - 1] + forest.parents(t)
      parent_sources = forest.source_S[parent_rows]
      np.testing.assert_array_equal(flat[sources, :t], flat[parent_sources, :t])
  # every sample at every step points at a row whose source shares its prefix
  row = forest.row_VxNxT.reshape(600, 6)
  for t in range(6):
    np.testing.assert_array_equal(flat[forest.source_S[row[:, t]], : t + 1], flat[:, : t + 1])
  assert prefixes.worth_it(forest) == (forest.rows <= 0.5 * 300 * 6)


def test_causal_networks_only():
  assert prefixes.causal(("rnn:16:relu", "dense:1"))
  assert prefixes.causal(("rnn:8", "dropout:0.2", "rnn:4:sigmoid", "dense:3", "relu", "dense:1"))
  assert not prefixes.causal(("dense:12", "relu", "dense:3"))  # no sequence
  assert not prefixes.causal(("rnn:16", "flatten", "dense:1"))  # the last step sees all inputs


def _binary_addition(overrides, seeds=2):
  base = apply_overrides(registry.get_config("binary_addition"), ["cpu_devices=1", *overrides])
  cfg = variant_configs(base)[0].replace(num_seeds=seeds)
  ds = generated.binary_addition(cfg.seed)
  return study.resolve_sizes(cfg, ds), ds


@pytest.mark.parametrize(
  "group,layers",
  [
    ("base", None),
    ("sigmoid", None),
    ("units128", None),
    (None, "rnn:12:tanh,rnn:6:relu:0.5:0.3,dense:4,leaky_relu,dense:1"),  # stacked, dropouts
  ],
)
def test_forest_evaluation_is_the_per_sample_evaluation(group, layers):
  """Per-sample loss to float rounding and the same correct bits, for the pool and the test set,
  with trained-looking (perturbed) parameters; the forest has a quarter of the sample-steps."""
  overrides = [f"groups={group}"] if group else [f"layers={layers}", "variants="]
  cfg, ds = _binary_addition(overrides)
  built = study.build(cfg, ds)
  pool = built.pool
  forests = study.eval_forests(cfg, pool)
  assert set(forests) == {"pool", "test"}
  assert forests["pool"].rows < 0.26 * 10_000 * 8
  state = built.init_state(built.runs)
  noise = lambda k, a: a + 0.3 * jax.random.normal(k, a.shape)
  leaves, tree = jax.tree.flatten(state.params)
  keys = jax.random.split(jax.random.key(3), len(leaves))
  params = jax.tree.unflatten(tree, [noise(k, a) for k, a in zip(keys, leaves, strict=True)])
  model = backend.kernels(cfg).eval_model(cfg)
  plain = jax.jit(train.make_evaluate(cfg, model))
  shared = jax.jit(train.make_evaluate(cfg, model, forests=forests), static_argnames="part")
  slope = built.runs.numbers["leaky_slope"]
  test_labels = np.broadcast_to(pool.holdout_labels_T, (2, *pool.holdout_labels_T.shape))
  for part, images, labels in [
    ("pool", pool.images_VxPxHxWxC, pool.labels_RxP),
    ("test", pool.holdout_images_VxTxHxWxC, test_labels),
  ]:
    want_loss, want_correct = plain(params, images, pool.variant_R, labels, slope)
    loss, correct = shared(params, images, pool.variant_R, labels, slope, part=part)
    assert loss.shape == want_loss.shape == (2, 1, images.shape[1])
    np.testing.assert_allclose(np.asarray(loss), np.asarray(want_loss), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(correct), np.asarray(want_correct))
    assert 0.05 < float(np.asarray(correct).mean()) < 0.95  # bits that can be wrong


def test_option_off_and_non_causal_networks_evaluate_per_sample():
  cfg, _ = _binary_addition(["groups=base", "eval_shared_prefixes=false"])
  cfg_on, ds = _binary_addition(["groups=base"])
  built = study.build(cfg_on, ds)
  assert study.eval_forests(cfg, built.pool) == {}
  flat = cfg_on.replace(layers=("rnn:4", "flatten", "dense:8"))
  assert study.eval_forests(flat, built.pool) == {}
  few = cfg_on.replace(pool_size=300, holdout_size=100)
  small = study.build(few, ds)  # 300 random pairs share too few prefixes to be worth it
  assert study.eval_forests(few, small.pool) == {}


def test_study_rows_equal_either_way(tmp_path):
  """Two epochs of three groups (2 seeds, 2,000 pairs): the metric rows with shared prefixes
  equal the per-sample evaluation's to float rounding (training is the same program)."""

  def rows(name, shared):
    cfg = registry.get_config("binary_addition").replace(
      num_seeds=2,
      rounds=2,
      pool_size=2000,
      holdout_size=1000,
      cpu_devices=1,
      groups=("base", "tanh", "recurrent_dropout"),
      eval_shared_prefixes=shared,
    )
    return run_rows(cfg, "binary_addition", tmp_path / name)

  per_sample, shared = rows("per_sample", False), rows("shared", True)
  assert len(shared) == len(per_sample) == 12
  for a, b in zip(per_sample, shared, strict=True):
    assert (a["group"], a["epoch"], a["seed"]) == (b["group"], b["epoch"], b["seed"])
    for key in ("train/loss", "train/acc", "test/loss", "test/acc", "train/epoch_loss"):
      assert abs(a[key] - b[key]) <= 1e-5, (a["group"], a["epoch"], key, a[key], b[key])
