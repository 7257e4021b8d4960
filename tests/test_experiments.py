"""Every registered experiment runs one shrunk round end to end, and fashion_dropout's rows
keep the contract of its issue."""

import json

import numpy as np
import pytest

from swapjax import config as C
from swapjax import registry, runner


def shrunk(name, **changes):
  """The experiment on synthetic data of its shapes: a tiny pool, one seed, one round."""
  cfg = registry.get_config(name)
  images = cfg.dataset in C.IMAGE_DATASETS  # generated data sets keep their (small) sizes
  small = dict(
    source="synthetic",
    pool_size=64 if images or cfg.pool_size > 64 else cfg.pool_size,
    holdout_size=16 if images else min(cfg.holdout_size, 16),
    test_from_train=16 if cfg.test_from_train else 0,
    batch_size=8,
    eval_batch_size=16,
    rounds=1,
    num_seeds=1,
  )
  if cfg.study.kind == "swap":
    small["swap_schedules"] = "none=0:0;one=0:1;schedule=20:5,2:2,0:1"
  return cfg.replace(**{**small, **changes})


def _rows(workdir):
  return [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", registry.names())
def test_every_registered_experiment_runs_a_shrunk_round(tmp_path, name):
  """Guards experiments that validate but cannot run (a registered config nobody ran)."""
  cfg = shrunk(name)
  C.validate(cfg)
  runner.run(cfg, name, runner.RunOptions(workdir=str(tmp_path / "w"), progress=False))
  rows = _rows(tmp_path / "w")
  table = C.run_table(cfg)
  assert sorted(r["run"] for r in rows) == list(range(len(table)))
  used = set(C.row_axes(cfg)) | {"variant"}
  for row in rows:
    run = table[row["run"]]
    assert row["group"] == C.group_name(cfg, run)
    # The run axes the study uses, with the run's values; no other axis.
    assert {k: row[k] for k in run if k in used} == {k: v for k, v in run.items() if k in used}
    assert not (set(C.RUN_AXES) - used) & set(row)
  assert (tmp_path / "w" / "report.md").exists()


def test_fashion_dropout_rows_programs_and_traced_rate(tmp_path):
  """The issue's row contract; fractions are separate programs, dropout rates share one; the
  rate really changes training (0.5 differs from 0 on the same seed and images)."""
  cfg = shrunk("fashion_dropout", rounds=2)
  runner.run(cfg, "fashion_dropout", runner.RunOptions(workdir=str(tmp_path), progress=False))
  rows = _rows(tmp_path)
  last = {r["run"]: r for r in rows if r["epoch"] == 2}
  assert len(last) == 4
  for row in last.values():
    for key in (
      "group",
      "train_fraction",
      "dropout_rate",
      "train/acc",
      "train/epoch_acc",
      "train/loss",
      "val/acc",
      "val/loss",
      "test/acc",
      "test/loss",
      "holdout/acc",
      "holdout/loss",
    ):
      assert row[key] is not None, key
  timing = json.loads((tmp_path / "timing.json").read_text())
  assert [p["groups"] for p in timing["programs"]] == [
    ["train_fraction=0.2,dropout_rate=0.0", "train_fraction=0.2,dropout_rate=0.5"],
    ["train_fraction=1.0,dropout_rate=0.0", "train_fraction=1.0,dropout_rate=0.5"],
  ]
  by_group = {r["group"]: r for r in last.values()}
  a = by_group["train_fraction=1.0,dropout_rate=0.0"]
  b = by_group["train_fraction=1.0,dropout_rate=0.5"]
  assert a["train/epoch_loss"] != b["train/epoch_loss"]
  membership = np.load(tmp_path / "membership.npz")
  # The 20% program trains on the first 13 of the 64 pool images, 90% of them.
  assert membership["p0_train_idx"].shape == (2, 13)
  assert membership["p1_train_idx"].shape == (2, 64)
  assert "Compared with the report" in (tmp_path / "report.md").read_text()


def test_variants_are_groups_of_their_own_programs(tmp_path):
  """Named variants change static structure (batch size, optimiser): each is its own program
  and group, with its own run axes; rows say which variant and carry its values."""
  cfg = C.apply_overrides(
    shrunk("memorize_mnist", rounds=1, num_seeds=2),
    ["variants=adam_b8:batch_size=8;sgd_b16:batch_size=16+optimizer=sgd+learning_rate=0.1,0.01"],
  )
  runner.run(cfg, "memorize_mnist", runner.RunOptions(workdir=str(tmp_path), progress=False))
  rows = _rows(tmp_path)
  assert [(r["run"], r["variant"], r["group"]) for r in rows] == [
    (0, "adam_b8", "adam_b8"),
    (1, "adam_b8", "adam_b8"),
    (2, "sgd_b16", "sgd_b16,learning_rate=0.1"),
    (3, "sgd_b16", "sgd_b16,learning_rate=0.1"),
    (4, "sgd_b16", "sgd_b16,learning_rate=0.01"),
    (5, "sgd_b16", "sgd_b16,learning_rate=0.01"),
  ]
  timing = json.loads((tmp_path / "timing.json").read_text())
  assert [(p["variant"], p["runs"]) for p in timing["programs"]] == [("adam_b8", 2), ("sgd_b16", 4)]
  assert rows[2]["learning_rate"] == 0.1 and rows[0]["learning_rate"] == 0.0001


@pytest.mark.parametrize(
  ("item", "needle"),
  [
    ("variants=x:rounds=3", "'x' sets rounds, which is the whole study's"),
    ("variants=x:batch_size=a", "expected an integer"),
    ("variants=a:batch_size=2;a:batch_size=3", "names repeat"),
    ("variants=x:dropout_rate=0.5", "a condition on no axis"),
    ("variants=x", "'x' has no ':' after its name"),
    ("variants=x:", None),
  ],
)
def test_bad_variants_are_one_line_config_errors(item, needle):
  """Guards variant texts the engine cannot run: one ConfigError line each."""
  base = registry.get_config("memorize_mnist")
  if needle is None:  # a variant without changes is the base config under a name
    assert C.run_table(C.apply_overrides(base, [item]))[0]["variant"] == "x"
    return
  with pytest.raises(C.ConfigError) as e:
    C.apply_overrides(base, [item])
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_bare_clone_finds_its_experiments_without_installing(tmp_path):
  """Guards decision 8 from a clone that was never installed (no site-packages at all, `-S`):
  `swapjax.experiments` is the clone's own experiments/ folder, found by the import system."""
  import shutil
  import subprocess
  import sys
  from pathlib import Path

  repo = Path(__file__).resolve().parents[1]
  for folder in ("swapjax", "experiments"):
    shutil.copytree(repo / folder, tmp_path / folder)
  code = "from swapjax import registry; import swapjax.experiments as e; "
  code += "print(','.join(registry.names())); print(e.__file__)"
  result = subprocess.run(
    [sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
  )
  assert result.returncode == 0, result.stderr
  listed, where = result.stdout.split()
  assert listed.split(",") == registry.names()
  assert Path(where) == tmp_path / "experiments" / "__init__.py"
