"""cifar10_arch (seeds/001): its groups, on-device augmentation through the engine, and
memory-based chunks of runs."""

import json

import numpy as np
import pytest

from swapjax import config as C
from swapjax import memory, registry, runner


def _shrunk(**changes):
  cfg = registry.get_config("cifar10_arch")
  small = dict(
    source="synthetic", pool_size=64, holdout_size=16, rounds=2, num_seeds=1, batch_size=8,
    eval_batch_size=16, test_every=2,
  )  # fmt: skip
  return cfg.replace(**{**small, **changes})


def _rows(workdir):
  return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


def _run(cfg, workdir):
  C.validate(cfg)
  runner.run(cfg, "cifar10_arch", runner.RunOptions(workdir=str(workdir), progress=False))
  return _rows(workdir)


def test_groups_are_the_reports_trials_in_order():
  cfg = registry.get_config("cifar10_arch")
  names = [v.variant for v in C.variant_configs(cfg)]
  assert names == [
    "baseline", "vgg_like", "vgg_like_leaky", "vgg_like_b1024", "dropout_gap",
    "dropout_gap_aug", "dropout_gap_flip",
  ]  # fmt: skip
  by = {v.variant: v for v in C.variant_configs(cfg.replace(groups=()))}
  assert by["vgg_like_b1024"].batch_size == 1024 and by["dropout_gap_flip_b2000"].batch_size == 2000
  assert by["dropout_gap_aug"].augment_rotation == (0.1,) and by[
    "dropout_gap_aug"
  ].augment_flip == (1,)
  assert by["dropout_gap_flip"].augment_rotation == (0.0,)
  assert "leaky_relu" in by["vgg_like_leaky"].layers and "relu" not in by["vgg_like_leaky"].layers
  assert by["dropout_gap"].layers.count("dropout:0.4") == 4 and "gap" in by["dropout_gap"].layers
  # The report's steps the default study leaves out (its old workdirs resume).
  dropout = by["vgg_like_dropout"]
  assert dropout.layers.count("dropout:0.2") == 3 and dropout.batch_size == 1024
  assert [x for x in dropout.layers if x != "dropout:0.2"] == list(by["vgg_like_b1024"].layers)
  assert by["dropout_gap_aug_updown"].augment_flip == (2,)
  assert by["dropout_gap_aug_updown"].augment_rotation == (0.1,)
  with pytest.raises(C.ConfigError, match="groups=nope: not a variant"):
    C.validate(cfg.replace(groups=("nope",)))


def test_a_workdir_of_the_default_study_resumes_after_variants_were_added(tmp_path):
  """A cifar10_arch config.json as recorded before `vgg_like_dropout` and
  `dropout_gap_aug_updown` existed holds the same study; a changed selected variant does not."""
  from pathlib import Path

  from swapjax.workdir import Workdir, WorkdirError

  stored = json.loads((Path(__file__).parent / "golden" / "experiment_configs.json").read_text())
  old = {**stored["defaults"], **stored["experiments"]["cifar10_arch"]}
  assert "vgg_like_dropout" not in old["variants"]  # recorded before the variant existed
  new = registry.get_config("cifar10_arch").to_json()
  assert "vgg_like_dropout" in new["variants"]
  wd = Workdir(str(tmp_path / "w"))
  wd.path.mkdir()
  wd.write_config(
    {"experiment": "cifar10_arch", "config": {**old, "description": new["description"]}}
  )
  assert wd.check_config(new, "cifar10_arch") is True
  changed = {**new, "variants": new["variants"].replace("batch_size=1024", "batch_size=512", 1)}
  with pytest.raises(WorkdirError, match="holds a different study"):
    wd.check_config(changed, "cifar10_arch")


def test_flip_augmentation_changes_training_and_off_changes_nothing(tmp_path):
  """One program, flips off and on as a traced run axis: the run with flips off reproduces a
  study without augmentation exactly (both programs of two runs: XLA compiles another program
  for another run count); the run with flips on trains differently."""
  base = _shrunk(groups=("dropout_gap",), rounds=1)
  plain = _run(base.replace(num_seeds=2), tmp_path / "plain")
  gap = next(v for v in C.variant_configs(base) if v.variant == "dropout_gap")
  both = base.replace(variants="", groups=(), layers=gap.layers, augment_flip=(0, 1))
  rows = _run(both, tmp_path / "flips")
  off = next(r for r in rows if r["augment_flip"] == 0)
  on = next(r for r in rows if r["augment_flip"] == 1)
  for key in ("train/loss", "train/epoch_loss", "val/loss", "test/loss"):
    assert off[key] == plain[0][key], key
    assert on[key] != off[key], key


def test_memory_budget_splits_a_program_into_equal_chunks(tmp_path, monkeypatch):
  """A budget for two runs splits a program of four into two calls of two (a divisor: every
  call is the same compiled program); timing.json reports the estimate and XLA's figure."""
  cfg = _shrunk(groups=("vgg_like",), num_seeds=4, rounds=1)
  vgg = C.variant_configs(cfg)[0]
  per_run, per_program = memory.program_bytes(vgg, (32, 32, 3))
  monkeypatch.setattr(memory, "device_budget", lambda device=None: per_program + 2 * per_run + 1)
  rows = _run(cfg, tmp_path)
  assert sorted(r["run"] for r in rows) == [0, 1, 2, 3]
  timing = json.loads((tmp_path / "timing.json").read_text())
  (program,) = timing["programs"]
  assert program["runs_per_call"] == 2 and program["calls_per_round"] == 2
  assert program["memory_estimate_bytes_per_run"] == per_run
  # The computed estimate agrees with XLA's own figure for the compiled round (two runs).
  ratio = program["xla_peak_bytes_per_call"] / (per_program + 2 * per_run)
  assert 0.5 < ratio < 2, ratio


def test_runs_per_chunk_is_the_largest_fitting_divisor():
  assert memory.runs_per_chunk(12, 10, 0, 1000) == 12
  assert memory.runs_per_chunk(12, 10, 0, 50) == 4  # 5 fit, 4 divides 12
  assert memory.runs_per_chunk(7, 10, 0, 65) == 1  # 6 fit, 7 is prime
  assert memory.runs_per_chunk(4, 10, 100, 50) == 1  # nothing fits: one run per call


def test_memory_estimate_grows_with_the_batch_and_counts_conv_patches():
  cfg = next(
    v for v in C.variant_configs(_shrunk(pool_size=4000, groups=())) if v.variant == "vgg_like"
  )
  small, _ = memory.program_bytes(cfg, (32, 32, 3))
  large, _ = memory.program_bytes(cfg.replace(batch_size=1024), (32, 32, 3))
  # vgg_like's second conv alone keeps 1024 x 28 x 28 x 9 x 64 floats of patches.
  assert large - small > 4 * (1024 - 8) * 28 * 28 * 9 * 64
  params, _ = memory._shapes(cfg, (32, 32, 3), 1)
  assert params == 7_225_994  # Keras' count for the report's network (3x3 valid convs)
  assert small > 4 * 4 * params


def test_shrunk_study_names_the_groups_and_says_the_data_is_a_subset(tmp_path):
  cfg = _shrunk(groups=("vgg_like", "vgg_like_leaky", "dropout_gap_flip"), rounds=1)
  rows = _run(cfg, tmp_path)
  assert [r["group"] for r in rows] == ["vgg_like", "vgg_like_leaky", "dropout_gap_flip"]
  assert [r["leaky_slope"] for r in rows] == [0.3, 0.3, 0.3]
  report = (tmp_path / "report.md").read_text()
  for group in ("vgg_like", "vgg_like_leaky", "dropout_gap_flip"):
    assert f"`{group}`" in report
  assert np.isfinite([r["test/acc"] for r in rows]).all()


def _memorize(**changes):
  cfg = registry.get_config("memorize_mnist")  # no dropout: slices draw no other masks
  small = dict(
    source="synthetic", pool_size=80, holdout_size=16, rounds=2, num_seeds=2, batch_size=24,
    eval_batch_size=16, label_corruption=(0.0,), early_stop=False, test_every=1,
  )  # fmt: skip
  return cfg.replace(**{**small, **changes})


def _metrics(rows):
  keys = ("train/loss", "train/epoch_loss", "train/epoch_acc", "val/loss", "test/loss")
  return np.array([[r[k] for k in keys] for r in rows])


def test_micro_batches_give_the_whole_batch_update(tmp_path):
  """Gradient accumulation over 4 slices of each batch trains the same networks as the whole
  batch (up to float order): every metric of every epoch agrees to 1e-4."""
  whole = _metrics(_run_named(_memorize(), tmp_path / "whole"))
  sliced = _metrics(_run_named(_memorize(micro_batches=4), tmp_path / "sliced"))
  np.testing.assert_allclose(sliced, whole, rtol=1e-4, atol=1e-6)
  with pytest.raises(C.ConfigError, match="micro_batches=5 does not divide the batch of 24"):
    C.validate(_memorize(micro_batches=5))


def test_a_batch_that_does_not_fit_is_sliced_and_one_that_never_fits_is_refused(
  tmp_path, monkeypatch, capsys
):
  cfg = _memorize(num_seeds=1)
  per_run, per_program = memory.program_bytes(cfg, (28, 28, 1))
  sliced, _ = memory.program_bytes(cfg.replace(micro_batches=3), (28, 28, 1))
  assert sliced < per_run
  monkeypatch.setattr(memory, "device_budget", lambda device=None: per_program + sliced + 1)
  _run_named(cfg, tmp_path / "fits")
  assert "each batch in 3 slices, gradients accumulated" in capsys.readouterr().out
  timing = json.loads((tmp_path / "fits" / "timing.json").read_text())
  assert timing["programs"][0]["memory_estimate_bytes_per_run"] == sliced
  monkeypatch.setattr(memory, "device_budget", lambda device=None: per_program)
  with pytest.raises(C.ConfigError, match="even one sample at a time"):
    _run_named(cfg, tmp_path / "never")
  assert not (tmp_path / "never").exists()  # nothing written


def _run_named(cfg, workdir):
  C.validate(cfg)
  runner.run(cfg, "memorize_mnist", runner.RunOptions(workdir=str(workdir), progress=False))
  return _rows(workdir)
