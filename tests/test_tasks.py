"""Tasks beyond softmax classification (sigmoid bits, regression) and the SimpleRNN layer,
against numpy references; binary addition's generated data; an RNN study that learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_rows

from swapjax import config as C
from swapjax import generated, models, registry, train
from swapjax.models import SimpleRNN


def _numpy_rnn(x_BxTxF, kernel, recurrent, bias, act):
  h = np.zeros((x_BxTxF.shape[0], kernel.shape[1]), np.float64)
  out = []
  for t in range(x_BxTxF.shape[1]):
    h = act(x_BxTxF[:, t] @ kernel + h @ recurrent + bias)
    out.append(h)
  return np.stack(out, 1)


NUMPY_ACTS = {
  "relu": lambda z: np.maximum(z, 0),
  "tanh": np.tanh,
  "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
}


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTS))
@pytest.mark.parametrize("unroll", [False, True])
def test_simple_rnn_is_keras_recurrence(activation, unroll):
  x = np.random.default_rng(0).normal(size=(3, 8, 2)).astype(np.float32)
  layer = SimpleRNN(5, activation, unroll=unroll)
  params = layer.init(jax.random.key(1), x)["params"]
  params = jax.tree.map(lambda a: a + 0.1, params)  # a non-zero bias
  got = layer.apply({"params": params}, x)
  want = _numpy_rnn(
    x,
    *(np.asarray(params[k]) for k in ("kernel", "recurrent_kernel", "bias")),
    NUMPY_ACTS[activation],
  )
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def _autodiff_recurrence(activation, xw_TxBxU, recurrent, mask):
  """The recurrence as a plain scan, differentiated by JAX: the reference for `recurrence`."""
  act = models.ACTIVATIONS[activation]

  def step(h, xw):
    h = act(xw + (h if mask is None else h * mask) @ recurrent)
    return h, h

  return jax.lax.scan(step, jnp.zeros_like(xw_TxBxU[0]), xw_TxBxU)[1]


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTS))
@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_recurrence_gradient_is_backpropagation_through_time(activation, unroll, masked):
  """The hand-written VJP equals autodiff of the plain scan, for every input (the kernel's
  gradient too), under vmap over a population of models as in training."""
  rng = np.random.default_rng(0)
  xw = jnp.asarray(rng.normal(size=(4, 8, 3, 6)), jnp.float32)  # models, time, batch, units
  recurrent = jnp.asarray(rng.normal(size=(4, 6, 6)) * 0.5, jnp.float32)
  weights = jnp.asarray(rng.normal(size=(8, 3, 6)), jnp.float32)  # a loss using every h_t
  mask = jnp.asarray(rng.integers(0, 2, size=(4, 3, 6)) * 2.0, jnp.float32) if masked else None

  def loss(f):
    return lambda xw, u, m: jnp.sum(jnp.sin(f(xw, u, m)) * weights)

  ours = lambda xw, u, m: models.recurrence(activation, unroll, xw, u, m)
  ref = lambda xw, u, m: _autodiff_recurrence(activation, xw, u, m)
  np.testing.assert_allclose(
    jax.vmap(ours)(xw, recurrent, mask), jax.vmap(ref)(xw, recurrent, mask), rtol=1e-6
  )
  got = jax.vmap(jax.grad(loss(ours), argnums=(0, 1)))(xw, recurrent, mask)
  want = jax.vmap(jax.grad(loss(ref), argnums=(0, 1)))(xw, recurrent, mask)
  for g, w in zip(got, want, strict=True):
    assert np.abs(np.asarray(w)).max() > 1e-3  # a gradient that can be wrong
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5)


def test_simple_rnn_keras_initialisers():
  params = SimpleRNN(16).init(jax.random.key(0), jnp.zeros((1, 8, 2)))["params"]
  u = np.asarray(params["recurrent_kernel"])
  np.testing.assert_allclose(u @ u.T, np.eye(16), atol=1e-5)  # orthogonal
  assert not np.any(np.asarray(params["bias"]))
  limit = np.sqrt(6 / (2 + 16))  # glorot uniform
  k = np.asarray(params["kernel"])
  assert k.shape == (2, 16) and np.abs(k).max() <= limit and np.abs(k).max() > limit / 2


@pytest.mark.parametrize("which", ["input", "recurrent"])
def test_rnn_dropout_is_one_mask_per_sequence(which):
  """Keras drops the same units at every time step of a sequence: with unit weights and a
  constant input, each sequence's unit is 0 or 1/keep at every step, never mixed."""
  rates = (0.5, 0.0) if which == "input" else (0.0, 0.5)
  layer = SimpleRNN(1, "relu", *rates)
  x = jnp.ones((400, 6, 1))
  params = {"kernel": jnp.ones((1, 1)), "bias": jnp.zeros(1)}
  if which == "input":
    params["recurrent_kernel"] = jnp.zeros((1, 1))
  else:  # h_t = 1 + 2 h_{t-1} (mask 2) or 1 (mask 0): the mask is the same at every step
    params["recurrent_kernel"] = jnp.ones((1, 1))
  out = np.asarray(layer.apply({"params": params}, x, True, rngs={"dropout": jax.random.key(3)}))
  if which == "input":
    per_sequence = out[:, :, 0]
    assert set(np.unique(per_sequence)) == {0.0, 2.0}
    assert np.all(per_sequence == per_sequence[:, :1])
  else:
    kept = out[:, -1, 0] > 1
    assert 100 < kept.sum() < 300
    np.testing.assert_array_equal(
      out[kept, :, 0], np.tile(2.0 ** np.arange(1, 7) - 1, (kept.sum(), 1))
    )
    np.testing.assert_array_equal(out[~kept, :, 0], 1.0)
  evaluated = np.asarray(layer.apply({"params": params}, x, False))
  assert np.all(evaluated == evaluated[:1])  # no dropout outside training


def test_sigmoid_task_mse_and_per_bit_accuracy():
  logits = np.array([[[2.0], [-1.0], [0.5]], [[-3.0], [0.1], [4.0]]], np.float32)  # (2, 3, 1)
  targets = np.array([[[1.0], [1.0], [0.0]], [[0.0], [0.0], [1.0]]], np.float32)
  loss, correct = train.per_sample("sigmoid", "mean_squared_error", logits, targets, 2)
  p = 1 / (1 + np.exp(-logits))
  np.testing.assert_allclose(loss, ((p - targets) ** 2).mean((1, 2)), rtol=1e-6)
  np.testing.assert_allclose(correct, [1 / 3, 2 / 3])
  ce, _ = train.per_sample("sigmoid", "cross_entropy", logits, targets, 2)
  want = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean((1, 2))
  np.testing.assert_allclose(ce, want, rtol=1e-5)
  reg, acc = train.per_sample("regression", "mean_squared_error", logits, targets, 2)
  np.testing.assert_allclose(reg, ((logits - targets) ** 2).mean((1, 2)), rtol=1e-6)
  assert np.isnan(acc).all()


def test_keras_cross_entropy_clips_the_probabilities_as_keras_2():
  """loss=keras_cross_entropy: Keras 2's cross-entropy of probabilities clipped to [1e-7,
  1 - 1e-7]: a sure right answer costs -ln(1 - 1e-7) and has no gradient, a sure wrong one
  costs -ln(1e-7) = 16.12 (report 003's collapsed network: 0.90 x 16.12 = 14.54)."""
  logits = np.array([[40.0, 0.0, 0.0], [0.0, 40.0, 0.0], [0.5, 0.2, -0.3]], np.float32)
  labels = np.array([0, 0, 2])
  loss, correct = train.per_sample("softmax", "keras_cross_entropy", logits, labels, 0)
  e = np.exp(logits - logits.max(-1, keepdims=True))
  p = np.clip((e / e.sum(-1, keepdims=True))[np.arange(3), labels], 1e-7, 1 - 1e-7)
  np.testing.assert_allclose(loss, -np.log(p.astype(np.float32)), rtol=1e-5)
  assert 0 < loss[0] < 2e-7 and abs(loss[1] - 16.118) < 1e-3  # the clip, both ends
  np.testing.assert_array_equal(correct, [True, False, False])
  from_logits, _ = train.per_sample("softmax", "cross_entropy", logits, labels, 0)
  assert from_logits[0] == 0.0 and from_logits[1] > 39  # no clip: another loss
  np.testing.assert_allclose(from_logits[2], loss[2], rtol=1e-5)  # the same inside the clip

  def total(z, kind):
    return train.per_sample("softmax", kind, z, jnp.asarray(labels), 0)[0].sum()

  grad = np.asarray(jax.grad(total)(jnp.asarray(logits), "keras_cross_entropy"))
  np.testing.assert_array_equal(grad[:2], 0.0)  # clipped: no gradient at either end
  assert np.abs(grad[2]).sum() > 0.1
  assert np.abs(np.asarray(jax.grad(total)(jnp.asarray(logits), "cross_entropy"))[1]).sum() > 1
  bits = np.array([[[30.0], [-30.0], [0.4]]], np.float32)
  targets = np.array([[[1.0], [1.0], [0.0]]], np.float32)
  got, _ = train.per_sample("sigmoid", "keras_cross_entropy", bits, targets, 2)
  q = np.clip(1 / (1 + np.exp(-bits.astype(np.float64))), 1e-7, 1 - 1e-7)
  want = -(targets * np.log(q) + (1 - targets) * np.log(1 - q)).mean((1, 2))
  np.testing.assert_allclose(got, want, rtol=1e-4)


def test_keras_cross_entropy_needs_probabilities():
  with pytest.raises(C.ConfigError, match="loss=keras_cross_entropy: needs task=softmax"):
    C.apply_overrides(registry.get_config("regression"), ["loss=keras_cross_entropy"]).validate()


def test_binary_addition_data_is_the_reports_protocol():
  ds = generated.binary_addition(seed=0)
  assert ds.train_images.shape == (10_000, 8, 2) and ds.test_images.shape == (9_999, 8, 2)
  assert ds.train_labels.shape == (10_000, 8, 1) and ds.train_images.dtype == np.float32
  weights = 2 ** np.arange(8)  # least significant bit first
  for x, d in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
    a, b = x[..., 0] @ weights, x[..., 1] @ weights
    assert a.max() < 128 and b.max() < 128 and a.max() > 120
    np.testing.assert_array_equal(d[..., 0] @ weights, a + b)
  full = generated.binary_addition(seed=0, num_train=20_000)  # index 10,000 is skipped
  np.testing.assert_array_equal(full.train_images[10_001:], ds.test_images)
  assert not np.array_equal(generated.binary_addition(seed=1).train_images, ds.train_images)


def test_layer_spec_errors_are_one_line_config_errors():
  base = registry.get_config("binary_addition")
  for layers, needle in [
    ("rnn:16:softplus,dense:1", "rnn:UNITS"),
    ("rnn:x,dense:1", "rnn:UNITS"),
    ("conv:8:full", "conv:FILTERS"),
    ("lstm:16", "unknown layer"),
    ("dropout:1.5", "dropout:RATE"),
  ]:
    with pytest.raises(C.ConfigError, match=needle):
      C.apply_overrides(base, [f"layers={layers}", "variants="])


def test_binary_addition_rnn_learns_and_logs_both_accuracies(tmp_path):
  """Two seeds of the report's network on 2,000 pairs for 3 epochs: both learn (test per-bit
  accuracy well above the 0.5 of guessing; a broken gradient or task stays near it), and the
  rows carry the issue's fields."""
  cfg = registry.get_config("binary_addition").replace(
    num_seeds=2,
    rounds=3,
    pool_size=2000,
    holdout_size=1000,
    variants="",
  )
  rows = run_rows(cfg, "binary_addition", tmp_path)
  last = [r for r in rows if r["epoch"] == 3]
  assert len(last) == 2
  for r in last:
    for key in ("group", "train/acc", "train/epoch_acc", "train/loss", "test/acc", "test/loss"):
      assert r[key] is not None, key
    assert r["test/acc"] > 0.85 and r["train/epoch_acc"] > 0.8
    assert r["val/acc"] is None  # no validation split
  assert last[0]["train/acc"] != last[1]["train/acc"]  # seeds differ


def test_batch_larger_than_the_training_set_is_one_partial_batch(tmp_path, capsys):
  """Keras trains one partial batch per epoch when the batch exceeds the training set: the
  same numbers as a batch of exactly the training set, and a log line says so."""
  base = registry.get_config("binary_addition").replace(
    num_seeds=1,
    rounds=2,
    pool_size=40,
    holdout_size=20,
    variants="",
    validation_split=0.1,
  )
  rows = {}
  for batch in (36, 1000):  # 36 = 40 x 0.9 training samples
    cfg = base.replace(batch_size=batch)
    C.validate(cfg)
    rows[batch] = run_rows(cfg, "binary_addition", tmp_path / str(batch))
  out = capsys.readouterr().out
  assert "batch_size=1000 > 36 training samples: one partial batch of 36" in out
  assert "batch_size=36 >" not in out
  metric = lambda rs: [(r["train/loss"], r["train/epoch_loss"], r["test/acc"]) for r in rs]
  assert metric(rows[1000]) == metric(rows[36])


def test_logic_gate_and_regression_data():
  for gate, outputs in {"or": [0, 1, 1, 1], "and": [0, 0, 0, 1], "xor": [0, 1, 1, 0]}.items():
    ds = generated.load(f"logic_{gate}", 0)
    a, b = ds.train_images.T
    np.testing.assert_array_equal(ds.train_labels[:, 0], outputs)
    assert {"or": np.logical_or, "and": np.logical_and, "xor": np.logical_xor}[gate](
      a, b
    ).tolist() == [bool(o) for o in outputs]
  ds = generated.load("cubic_a", 0)
  x = ds.train_images[:, 0]
  np.testing.assert_allclose(ds.train_images[:, 2], x**3, rtol=1e-6)
  want = -0.4 * x**3 + 1.6 * x**2 - 2.8 * x + 1
  np.testing.assert_allclose(ds.train_labels[:, 0], want, rtol=1e-5, atol=1e-6)
  assert np.abs(x).max() <= 1 and ds.test_images.shape == (100, 3)


def test_iris_ships_with_its_checksum(tmp_path, monkeypatch):
  ds = generated.load("iris", 0)
  assert ds.train_images.shape == (150, 4) and np.bincount(ds.train_labels).tolist() == [50] * 3
  np.testing.assert_allclose(ds.train_images[0], [5.1, 3.5, 1.4, 0.2])
  tampered = tmp_path / "iris.csv"
  tampered.write_bytes(generated.IRIS.read_bytes().replace(b"5.1,3.5", b"5.1,3.6", 1))
  monkeypatch.setattr(generated, "IRIS", tampered)
  with pytest.raises(Exception, match="checksum mismatch"):
    generated.load("iris", 0)


def test_target_noise_is_drawn_per_seed_on_training_targets_only():
  from swapjax import study

  cfg = registry.get_config("regression").replace(variants="", num_seeds=2, target_noise=(0.0, 1.0))
  ds = generated.load("line_a", 0)
  table = C.run_table(cfg)
  pool = study.build_pool(cfg, ds, table)
  labels = np.asarray(pool.labels_RxP)[..., 0]
  noise = {
    (r["target_noise"], r["seed"]): labels[i] - ds.train_labels[:, 0] for i, r in enumerate(table)
  }
  assert not np.any(noise[(0.0, 0)]) and not np.any(noise[(0.0, 1)])
  assert 0.75 < noise[(1.0, 0)].std() < 1.25 and abs(noise[(1.0, 0)].mean()) < 0.3
  assert not np.allclose(noise[(1.0, 0)], noise[(1.0, 1)])
  np.testing.assert_array_equal(np.asarray(pool.holdout_labels_T), ds.test_labels)  # clean


def test_split_per_seed_orders_each_seeds_pool_at_random():
  from swapjax import study

  cfg = registry.get_config("iris").replace(variants="", num_seeds=3)
  built = study.build(cfg, generated.load("iris", 0))
  idx = np.asarray(built.init_state(built.runs).idx_RxMxN)[:, 0]
  for row in idx:
    assert sorted(row.tolist()) == list(range(150))  # every sample once
  held_out = [set(row[120:].tolist()) for row in idx]  # Keras' validation_split 0.2: the last 30
  assert held_out[0] != held_out[1] != held_out[2]
  plain = study.build(cfg.replace(split_per_seed=False), generated.load("iris", 0))
  assert np.array_equal(
    np.asarray(plain.init_state(plain.runs).idx_RxMxN)[:, 0], np.tile(np.arange(150), (3, 1))
  )


def test_variant_datasets_row_fields_and_parameters_in_rows(tmp_path):
  """logic_gates' variants train on different data sets in one study and name `gate` and
  `network` in their rows; regression logs every parameter of its Dense(1)."""
  cfg = registry.get_config("logic_gates").replace(
    num_seeds=2,
    rounds=2,
    groups=("or_perceptron", "xor_hidden"),
    test_every=1,
    log_params=True,
  )
  rows = run_rows(cfg, "logic_gates", tmp_path)
  by_group = {r["group"]: r for r in rows if r["epoch"] == 2}
  assert by_group["or_perceptron"]["gate"] == "or" and by_group["xor_hidden"]["network"] == "hidden"
  assert sorted(k for k in by_group["or_perceptron"] if k.startswith("param/")) == [
    "param/Dense_0/bias/0",
    "param/Dense_0/kernel/0",
    "param/Dense_0/kernel/1",
  ]
  assert len([k for k in by_group["xor_hidden"] if k.startswith("param/")]) == 2 * 8 + 8 + 8 + 1
  assert "logic_or from generated; logic_xor from generated" in (tmp_path / "report.md").read_text()


def test_the_config_lists_exactly_the_generated_data_sets():
  assert tuple(generated.GENERATORS) == C.GENERATED_DATASETS
