"""The checks across a config's sections (swapjax/config/validation.py): each refusal's whole
line, and the nearest config each check lets through."""

import pytest

from swapjax import config as C

EPOCHS = ["study=epochs", "conditions=none"]


def refusal(items, sizes_known=False) -> str:
  """The ConfigError's line for the Config() with `items` set (validated as `--set` does, and
  again with `sizes_known`); "" if it passes."""
  try:
    config = C.apply_overrides(C.Config(), items)
    if sizes_known:
      C.validate(config, sizes_known=True)
  except C.ConfigError as e:
    assert "\n" not in str(e)
    return str(e)
  return ""


@pytest.mark.parametrize(
  ("items", "line"),
  [
    (["conv_impl=onednn", "compute_dtype=bfloat16"],
     "conv_impl=onednn computes in float32, not compute_dtype=bfloat16"),
    # The training convolutions named in neither: the forward-only ones are checked all the same
    (["eval_conv_impl=onednn", "compute_dtype=bfloat16"],
     "eval_conv_impl=onednn computes in float32, not compute_dtype=bfloat16"),
    (["rnn_impl=native", "compute_dtype=bfloat16"],
     "rnn_impl=native computes in float32, not compute_dtype=bfloat16"),
    (["rnn_impl=fused", "compute_dtype=bfloat16"],
     "rnn_impl=fused computes in float32, not compute_dtype=bfloat16"),
    (["rnn_impl=native", "rnn_unroll=true"],
     "rnn_unroll unrolls the lax.scan: use it with rnn_impl=scan"),
    (["rnn_impl=fused", "rnn_unroll=true"],
     "rnn_unroll unrolls the lax.scan: use it with rnn_impl=scan"),
    (["task=regression"],
     "task=regression: the swap study judges samples by softmax classification"),
    (["target_noise=0.1"], "target_noise=0.1: only regression targets take noise"),
    ([*EPOCHS, "target_noise=0,0.25"], "target_noise=0.0,0.25: only regression targets take noise"),
    (["runs_per_device=4", "num_seeds=5"],
     "runs_per_device=4 does not divide the 30 runs of a program"),
    (["micro_batches=3", "batch_size=32", "pool_size=128", "holdout_size=8"],
     "micro_batches=3 does not divide the batch of 32"),
    # The batch is at most the program's training samples: 4 of them, in 8 micro-batches
    ([*EPOCHS, "micro_batches=8", "batch_size=32", "pool_size=5", "holdout_size=1",
      "validation_split=0.2"], "micro_batches=8 does not divide the batch of 4"),
    # The whole pool keeps 8 of its 20 samples to train on, the program of 5% none of its one
    ([*EPOCHS, "train_fraction=0.05,1", "pool_size=20", "holdout_size=1", "batch_size=1",
      "validation_split=0.6"],
     "train_fraction=0.05 leaves no training sample of the 20 in the pool"),
    ([*EPOCHS, "pool_size=2", "holdout_size=1", "batch_size=1", "validation_split=0.7"],
     "validation_split=0.7 leaves no training samples of 2"),
    ([*EPOCHS, "model=cifar_cnn", "dataset=mnist"],
     "model=cifar_cnn: 28x28 datasets take cnn_004 or cnn_004_dropout"),
  ],
)  # fmt: skip
def test_each_check_refuses_with_its_own_line(items, line):
  assert refusal(items) == line


@pytest.mark.parametrize(
  "items",
  [
    ["conv_impl=onednn", "eval_conv_impl=onednn"],
    ["compute_dtype=bfloat16"],  # no native kernel named
    ["rnn_impl=scan", "compute_dtype=bfloat16", "rnn_unroll=true"],
    ["rnn_impl=native"],
    [*EPOCHS, "task=regression", "target_noise=0.1,0.2"],
    ["runs_per_device=5", "num_seeds=5"],
    ["conditions=none,one", "runs_per_device=6", "num_seeds=3", "train_fraction=0.5,1",
     "pool_size=40", "holdout_size=8", "batch_size=2"],
    ["conditions=none,one", "micro_batches=4", "batch_size=32", "pool_size=128",
     "holdout_size=8"],
    [*EPOCHS, "micro_batches=4", "batch_size=32", "pool_size=5", "holdout_size=1",
     "validation_split=0.2"],
    [*EPOCHS, "train_fraction=0.2,1", "pool_size=20", "holdout_size=1", "batch_size=1",
     "validation_split=0.6"],
    [*EPOCHS, "pool_size=2", "holdout_size=1", "batch_size=1", "validation_split=0.3"],
    [*EPOCHS, "model=cnn_004", "dataset=mnist"],
    [*EPOCHS, "model=cnn_004_dropout", "dataset=fashion_mnist"],
    [*EPOCHS, "model=cifar_cnn", "dataset=cifar10"],
    [*EPOCHS, "layers=dense:8", "dataset=mnist"],
  ],
)  # fmt: skip
def test_the_nearest_configs_pass(items):
  assert refusal(items) == ""


def test_runs_per_device_divides_every_program_of_every_variant():
  """Each program of each variant: variant a's 12 runs and b's 6 (one learning rate) divide
  by 6; 4 divides a's, not b's."""
  variants = ["variants=a:;b:learning_rate=0.1", "learning_rate=0.1,0.2", "num_seeds=3"]
  assert refusal([*EPOCHS, *variants, "runs_per_device=6"]) == ""
  assert refusal([*EPOCHS, *variants, "runs_per_device=4"]) == (
    "runs_per_device=4 does not divide the 6 runs of a program"
  )


def test_sizes_wait_for_the_data_unless_known():
  """A size of 0 (all the data has) defers the size checks to the run, which checks the
  data's sizes: a swap study without test samples is refused there, an epochs study is not."""
  swap = ["conditions=none,one", "pool_size=4", "holdout_size=0", "batch_size=1"]
  assert refusal(swap) == ""
  assert refusal(swap, sizes_known=True) == "holdout_size=0: the swap study needs test samples"
  assert refusal([*swap, "holdout_size=1"], sizes_known=True) == ""
  assert refusal([*EPOCHS, *swap[1:]], sizes_known=True) == ""
  variants = ["variants=a:;b:batch_size=2"]
  assert refusal([*swap, *variants]) == ""
  assert refusal([*swap, *variants], sizes_known=True) == (
    "holdout_size=0: the swap study needs test samples"
  )
  assert refusal(["conditions=none,one", "pool_size=0", "holdout_size=1"], sizes_known=True) == (
    "pool_size=0: the swap study needs a pool of at least 4 that splits into 2 equal part(s)"
  )


def test_a_swap_study_whose_data_has_no_test_samples_is_refused_before_anything_is_written(
  tmp_path,
):
  """`holdout_size=0` asks for every test image the data has; tiny's synthetic data then has
  none: the run says so in one line and leaves no workdir."""
  from conftest import tiny_swap_config

  from swapjax import runner

  workdir = tmp_path / "w"
  with pytest.raises(C.ConfigError) as e:
    runner.run(tiny_swap_config(holdout_size=0), "tiny", runner.RunOptions(workdir=str(workdir)))
  assert str(e.value) == "holdout_size=0: the swap study needs test samples"
  assert not workdir.exists()
