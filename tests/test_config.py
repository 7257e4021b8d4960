"""Config overrides, validation and the run product."""

import pytest

from swapjax import config as C
from swapjax import registry


def test_overrides_are_typed():
  cfg = C.apply_overrides(
    C.Config(),
    [
      "rounds=3",
      "num_seeds=2",
      "warmup=0,5",
      "conditions=none,one",
      "shared_model=true",
      "learning_rate=0.001,0.0001",
    ],
  )
  assert (cfg.rounds, cfg.num_seeds, cfg.warmup) == (3, 2, (0, 5))
  assert cfg.conditions == ("none", "one") and cfg.shared_model is True
  assert cfg.learning_rate == (0.001, 0.0001)


@pytest.mark.parametrize(
  ("item", "needle"),
  [
    ("rounds=abc", "expected an integer"),
    ("nope=1", "unknown config key"),
    ("rounds", "expected key=value"),
    ("shared_model=maybe", "true or false"),
    ("rounds=0", "rounds=0"),
    ("conditions=none,bogus", "'bogus' is not a swap schedule"),
    ("pool_size=7", "even pool"),
    ("validation_split=1.5", "validation_split"),
    ("batch_size=100000", "larger than"),
    ("swap_schedules=big=0:9999", "does not fit"),
    ("conv_impl=magic", "allowed values"),
    ("learning_rate=-1", "learning_rate"),
    ("label_corruption=2", "label_corruption"),
    ("swap_schedules=x=1:a", "threshold:k"),
  ],
)
def test_bad_overrides_raise_one_line(item, needle):
  extra = ["conditions=big"] if item.startswith("swap_schedules=big") else []
  with pytest.raises(C.ConfigError) as e:
    C.apply_overrides(C.Config(), [item, *extra])
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_schedule_tables_sorted_and_custom():
  tables = C.parse_schedules("mine=5:2,50:20;none=0:0")
  assert tables["mine"] == ((50, 20), (5, 2))
  cfg = C.apply_overrides(C.Config(), ["swap_schedules=mine=5:2,50:20", "conditions=mine"])
  assert cfg.conditions == ("mine",)


def test_run_table_is_the_product():
  cfg = C.Config(num_seeds=3)
  table = C.run_table(cfg)
  assert len(table) == 3 * 2 * 3
  assert table[0] == {
    "condition": "none",
    "warmup": 0,
    "learning_rate": 0.001,
    "label_corruption": 0.0,
    "input_corruption": "none",
    "seed": 0,
  }


def test_zhang_runs_pair_input_corruptions_with_true_labels():
  cfg = registry.get_config("memorize_sweep")
  table = C.run_table(cfg)
  assert len(table) == (6 + 3) * len(cfg.learning_rate) * cfg.num_seeds
  assert {r["learning_rate"] for r in table} == {0.001, 0.0001}  # the report's and the main job's
  assert all(r["label_corruption"] == 0.0 for r in table if r["input_corruption"] != "none")


def test_every_registered_experiment_validates_and_round_trips():
  for name in registry.names():
    cfg = registry.get_config(name)
    C.validate(cfg)
    assert C.from_json(cfg.to_json()) == cfg
    assert registry.describe(name)


def test_default_study_is_60_runs_120_models():
  cfg = registry.get_config("swap_cifar10")
  assert len(C.run_table(cfg)) == 60 and cfg.members == 2 and cfg.rounds == 50
  assert cfg.num_train == 4500
