"""The notebook API: the CLI's runner and workdir contract, `--set` validation, the result."""

import json
import sys

import pytest

import swapjax
from swapjax import api, data, mesh, registry, workdir
from swapjax import config as configlib

ERRORS = (configlib.ConfigError, data.DataError, workdir.WorkdirError, mesh.MeshError)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  path = tmp_path_factory.mktemp("api") / "tiny"
  return swapjax.run("tiny", workdir=path, progress=False, rounds=1, num_seeds=1)


def _jsonl(path):
  return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _records(frame):
  """DataFrame rows as dicts, NaN back to None (as in metrics.jsonl)."""
  return frame.astype(object).where(frame.notna(), None).to_dict("records")


def test_run_writes_the_workdir_contract_and_load_reads_it(tiny):
  for name in ["config.json", "metrics.jsonl", "membership.npz", "report.md", "timing.json"]:
    assert (tiny.workdir / name).exists(), name
  assert sorted(p.name for p in (tiny.workdir / "checkpoints").iterdir()) == ["1"]
  rows = _jsonl(tiny.workdir)
  assert len(rows) == 2  # conditions none and schedule, one seed, one round
  assert tiny.experiment == "tiny" and tiny.config["rounds"] == 1 and tiny.config["num_seeds"] == 1
  assert tiny.config == json.loads((tiny.workdir / "config.json").read_text())["config"]
  assert _records(tiny.metrics) == rows
  loaded = swapjax.load(tiny.workdir)
  assert _records(loaded.metrics) == rows
  assert loaded.config == tiny.config and loaded.report == tiny.report
  assert "condition=schedule" in tiny.report


def test_metrics_without_pandas_is_a_list_of_dicts(tiny, monkeypatch):
  monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
  assert tiny.metrics == _jsonl(tiny.workdir)
  table = tiny.compare(tiny)
  assert isinstance(table, list) and {r["group"] for r in table} == {
    "condition=none",
    "condition=schedule",
  }


def test_rerun_resumes_and_a_changed_config_is_refused(tiny):
  again = swapjax.run("tiny", workdir=tiny.workdir, progress=False, rounds=1, num_seeds=1)
  assert again.rows() == tiny.rows()  # nothing left to train: the same rows
  with pytest.raises(workdir.WorkdirError, match=r"num_seeds: 1 -> 2.*--restart"):
    swapjax.run("tiny", workdir=tiny.workdir, progress=False, rounds=1, num_seeds=2)


def test_report_and_plots_are_rebuilt_when_missing(tiny):
  text = tiny.report
  (tiny.workdir / "report.md").unlink()
  for png in (tiny.workdir / "plots").glob("*.png"):
    png.unlink()
  paths = tiny.plot()  # not in a notebook: the paths
  assert [p.name for p in paths] == ["accuracy.png", "honest_accuracy.png", "loss.png"]
  assert all(p.stat().st_size > 1000 for p in paths)
  assert tiny.report == text


def test_compare_with_itself_gives_equal_columns(tiny):
  table = tiny.compare(swapjax.load(tiny.workdir))
  assert list(table.index) == ["condition=none", "condition=schedule"]
  mine = [c for c in table.columns if c.endswith("_tiny")]
  assert "AtoB/test_acc_tiny" in mine and "swap/moved_tiny" in mine
  assert len(table.columns) == 2 * len(mine)
  for column in mine:
    assert table[column].equals(table[column + "_2"]), column
  last = {r["group"]: r for r in tiny.rows()}  # one seed, one round: the row itself
  for group, row in last.items():
    assert table.loc[group, "AtoB/test_acc_tiny"] == pytest.approx(row["AtoB/test_acc"])


def test_unknown_experiment_lists_the_valid_names(tmp_path):
  with pytest.raises(configlib.ConfigError) as error:
    swapjax.run("nope", workdir=tmp_path / "w")
  assert all(name in str(error.value) for name in registry.names())
  assert not (tmp_path / "w").exists()


# The bad inputs of test_runner.py's test_cli_bad_input_is_one_line_exit_2, as API calls; the
# last items are the same overrides as typed Python values.
@pytest.mark.parametrize(
  ("experiment", "kwargs", "needle"),
  [
    ("nope", {}, "value should be one of"),
    ("tiny", {"rounds": "x"}, "expected an integer"),
    ("tiny", {"unknown": 1}, "unknown config key"),
    ("tiny", {"conditions": "none,zzz"}, "not a swap schedule"),
    ("swap_cifar10", {"data_dir": "/nonexistent"}, "no such directory"),
    ("fashion_dropout", {"dropout_rate": "0,1.0"}, "must be in [0, 1)"),
    ("memorize_mnist", {"dropout_rate": "0.5"}, "a condition on no axis"),
    ("fashion_dropout", {"train_fraction": "1e-6"}, "no training sample"),
    ("tiny", {"model": "resnet"}, "allowed values"),
    ("tiny", {"conditions": ["none", "zzz"]}, "not a swap schedule"),
    ("fashion_dropout", {"dropout_rate": (0, 1.0)}, "must be in [0, 1)"),
    ("memorize_mnist", {"dropout_rate": 0.5}, "a condition on no axis"),
    ("fashion_dropout", {"train_fraction": 1e-6}, "no training sample"),
    ("tiny", {"rounds": 1.5}, "expected an integer"),
    ("tiny", {"shared_model": "maybe"}, "expected true or false"),
  ],
)
def test_bad_input_raises_the_cli_message_and_writes_nothing(tmp_path, experiment, kwargs, needle):
  with pytest.raises(ERRORS) as error:
    swapjax.run(experiment, workdir=tmp_path / "w", progress=False, **kwargs)
  message = str(error.value)
  assert needle in message and "\n" not in message
  assert not (tmp_path / "w").exists()  # nothing written
  overrides = {k: v for k, v in kwargs.items() if k != "data_dir"}
  if experiment in registry.names() and overrides:  # word for word what `--set` says
    cli = [f"{k}={v}" for k, v in _as_set_text(overrides).items()]
    with pytest.raises(configlib.ConfigError) as from_cli:
      configlib.apply_overrides(registry.get_config(experiment), cli)
    assert message == str(from_cli.value)


def _as_set_text(overrides):
  """What a user would type after `--set` for these values."""
  text = {}
  for key, value in overrides.items():
    if isinstance(value, (list, tuple)):
      value = ",".join(str(v) for v in value)
    text[key] = str(value)
  return text


def test_typed_overrides_equal_their_set_text():
  typed = api.make_config(
    "tiny",
    rounds=3,
    num_seeds=2,
    learning_rate=[0.1, 1e-4],
    warmup=(0, 2),
    conditions=("none",),
    shared_model=True,
    validation_split=0.25,
  )
  text = configlib.apply_overrides(
    registry.get_config("tiny"),
    [
      "rounds=3",
      "num_seeds=2",
      "learning_rate=0.1,1e-4",
      "warmup=0,2",
      "conditions=none",
      "shared_model=true",
      "validation_split=0.25",
    ],
  )
  assert typed == text and typed.learning_rate == (0.1, 1e-4) and typed.shared_model is True


def test_mappings_are_taken_as_experiment_files_write_them():
  """Variants, swap schedules and row fields as mappings give the config their text gives."""
  from swapjax.layers import Dense, sigmoid

  variants = {"wide": {"layers": (Dense(24), sigmoid, Dense(3)), "learning_rate": 5e-3}}
  typed = api.make_config("iris", variants=variants, row_fields={"note": "a"})
  text = configlib.apply_overrides(
    registry.get_config("iris"),
    ["variants=wide:layers=dense:24,sigmoid,dense:3+learning_rate=0.005", "row_fields=note=a"],
  )
  assert typed == text and typed.variants.startswith("wide:")
  schedules = {"none": ((0, 0),), "big": ((0, 8),)}
  typed = api.make_config("tiny", swap_schedules=schedules, conditions=("none", "big"))
  assert typed.schedules() == schedules
  with pytest.raises(configlib.ConfigError, match="takes a value, not a mapping"):
    api.make_config("tiny", rounds={"a": 1})
