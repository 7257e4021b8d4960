"""Config overrides, validation and the run product."""

import itertools
import json

import pytest

from swapjax import config as C
from swapjax import registry
from swapjax.config import keys


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
      " holdout_size = 2_000 ",
      "adam_eps=1",
      "description=a=b, c",
    ],
  )
  assert (cfg.rounds, cfg.num_seeds, cfg.warmup) == (3, 2, (0, 5))
  assert cfg.conditions == ("none", "one") and cfg.shared_model is True
  assert cfg.learning_rate == (0.001, 0.0001)
  assert cfg.holdout_size == 2000 and cfg.description == "a=b, c"
  # `==` holds between 3 and 3.0: the types are checked on their own.
  assert type(cfg.rounds) is int and all(type(w) is int for w in cfg.warmup)
  assert type(cfg.adam_eps) is float and all(type(x) is float for x in cfg.learning_rate)


@pytest.mark.parametrize(
  ("text", "value"),
  [(t, True) for t in ("1", "true", "True", "yes", "on")]
  + [(t, False) for t in ("0", "false", "FALSE", "no", "off")],
)
def test_bool_spellings(text, value):
  """Guards: a spelling users type for a flag read the wrong way, or refused."""
  assert C.parse_value("shared_model", text) is value
  assert C.parse_value("dropout", f" {text} ") is value


@pytest.mark.parametrize(
  ("ok", "bad"),
  [
    (["rounds=1"], ["rounds=0"]),
    (["num_seeds=1"], ["num_seeds=0"]),
    (["num_seeds=100000"], ["num_seeds=100001"]),
    (["batch_size=1"], ["batch_size=0"]),
    (["validation_split=0"], ["validation_split=-0.01"]),
    (["validation_split=0.99", "batch_size=1"], ["validation_split=1"]),
    (["eval_batch_size=0"], ["eval_batch_size=-1"]),
    (["checkpoint_keep=1"], ["checkpoint_keep=0"]),
    (["test_every=1"], ["test_every=0"]),
    (["fit_target=1"], ["fit_target=1.01"]),
    (["fit_target=0.001"], ["fit_target=0"]),
    (["holdout_size=0"], ["holdout_size=-1"]),  # 0: all the test data has
    (["pool_size=0"], ["pool_size=-1"]),  # 0: all the training data has
    (["micro_batches=0"], ["micro_batches=-1"]),
    (["adam_eps=1e-30"], ["adam_eps=0"]),
    (["learning_rate=9.99"], ["learning_rate=10"]),
    (["learning_rate=1e-9"], ["learning_rate=0"]),
    (["label_corruption=0,1"], ["label_corruption=1.01"]),
    (["label_corruption=0"], ["label_corruption=-0.01"]),
    (["warmup=0"], ["warmup=-1"]),
    (["mesh_runs=0"], ["mesh_runs=-1"]),
    (["mesh_data=1"], ["mesh_data=0"]),
    (["conditions=none,one", "pool_size=4", "batch_size=1"], ["pool_size=2"]),
    (["conditions=none,one", "pool_size=6", "batch_size=1"], ["pool_size=5"]),
    (["augment_flip=0,1,2"], ["augment_flip=3"]),
    (["augment_rotation=0.5"], ["augment_rotation=0.6"]),
    (
      ["conditions=none,one", "pool_size=4", "validation_split=0.5", "batch_size=1"],
      ["validation_split=0.6"],
    ),
    (["swap_schedules=none=0:0;big=0:5000", "conditions=big"], ["swap_schedules=big=0:5001"]),
    (["conditions=none,one"], ["conditions=none,one,none"]),
    (["study=epochs", "conditions=none", "pool_size=2", "batch_size=1"], ["pool_size=1"]),
    (["study=epochs", "conditions=none", "pool_size=3", "batch_size=1"], ["conditions=one"]),
    (
      ["study=epochs", "conditions=none", "model=cnn_004", "dataset=mnist"],
      ["model=cifar_cnn"],
    ),
    (["study=epochs", "conditions=none", "dataset=cifar10"], ["dataset=fashion_mnist"]),
  ],
)
def test_validation_boundaries(ok, bad):
  """Guards off-by-one validation (`>` for `>=`, `<` for `<=`): the last allowed value passes and
  the first value past it fails, each with a one-line ConfigError."""
  C.apply_overrides(C.Config(), ok)
  with pytest.raises(C.ConfigError) as e:
    C.apply_overrides(C.Config(), ok + bad)
  key = bad[0].split("=")[0]
  assert "\n" not in str(e.value)
  assert {"swap_schedules": "does not fit"}.get(key, key) in str(e.value)  # names the value


def test_unknown_key_lists_every_valid_key():
  """Guards: the unknown-key message losing the list users pick the right key from (section by
  section) and the nearest key."""
  with pytest.raises(C.ConfigError) as e:
    C.parse_value("round", "3")
  settable = [keys.full(k) for s in keys.SECTIONS.values() for k in s if k not in keys.INTERNAL]
  assert sorted(settable) == sorted(keys.full(k) for k in C.field_types() if k not in keys.INTERNAL)
  assert str(e.value).endswith("did you mean study.rounds? valid keys: " + ", ".join(settable))


@pytest.mark.parametrize(
  ("item", "needle"),
  [
    ("rounds=abc", "--set rounds=abc: expected an integer"),
    ("warmup=1,x", "--set warmup=x: expected an integer"),
    ("adam_eps=abc", "--set adam_eps=abc: expected a number"),
    ("warmup=,", "--set warmup=,: expected a comma-separated list"),
    ("nope=1", "unknown config key"),
    ("rounds", "expected key=value"),
    ("shared_model=maybe", "true or false"),
    ("rounds=0", "rounds=0"),
    ("conditions=none,bogus", "'bogus' is not a swap schedule; defined: none, one, schedule"),
    ("conditions=none,one,none", "conditions=none,one,none: names repeat"),
    ("pool_size=7", "pool of at least 4 that splits into 2 equal part(s)"),
    ("validation_split=1.5", "validation_split=1.5: must be in [0, 1)"),
    ("validation_split=1", "validation_split=1.0: must be in [0, 1)"),
    ("layers=conv:8,lstm:4", "layers: unknown layer 'lstm:4'"),
    ("leaky_slope=0.1", "leaky_slope=0.1: model cifar_cnn has no leaky_relu layer"),
    ("task=regression", "task=regression: the swap study judges samples by softmax"),
    ("swap_schedules=big=0:9999", "does not fit"),
    ("conv_impl=magic", "conv_impl=magic: allowed values are auto, patches, lax, hybrid, onednn"),
    ("eval_conv_impl=auto", "eval_conv_impl=auto: allowed values are patches, lax, hybrid, onednn"),
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
  """Guards: runs missing or in another order (seeds must vary fastest: paired runs)."""
  cfg = C.Config(num_seeds=3)
  table = C.run_table(cfg)
  assert len(table) == 3 * 2 * 3
  assert [(r["condition"], r["warmup"], r["seed"]) for r in table] == list(
    itertools.product(cfg.conditions, cfg.warmup, range(3))
  )
  assert all(set(r) == set(C.RUN_AXES) for r in table)
  first = {
    "condition": "none",
    "warmup": 0,
    "learning_rate": 0.001,
    "label_corruption": 0.0,
    "input_corruption": "none",
    "train_fraction": 1.0,
    "dropout_rate": 0.0,
    "seed": 0,
  }
  assert {axis: table[0][axis] for axis in first} == first


def test_input_corruptions_take_the_lowest_label_corruption_only():
  """Guards: the true-labels rule skipped for two label levels (a `> 2` for `> 1`), which would
  add runs that corrupt both inputs and labels."""
  cfg = C.Config(
    study="epochs", conditions=("none",), warmup=(0,), num_seeds=1, label_corruption=(0.5, 0.0),
    input_corruption=("none", "gaussian"),
  )  # fmt: skip
  table = C.run_table(cfg)
  assert [(r["label_corruption"], r["input_corruption"]) for r in table] == [
    (0.5, "none"), (0.0, "none"), (0.0, "gaussian"),
  ]  # fmt: skip
  assert len(C.run_table(cfg.replace(input_corruption_true_labels=False))) == 4


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
    assert C.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    # A resume compares config.json as read back with to_json() of the live config: tuples
    # there (not lists) would make every resume look like a different study.
    assert json.loads(json.dumps(cfg.to_json())) == cfg.to_json()
    assert registry.describe(name)


def test_default_study_is_60_runs_120_models():
  cfg = registry.get_config("swap_cifar10")
  assert len(C.run_table(cfg)) == 60 and cfg.members == 2 and cfg.rounds == 50
  assert cfg.num_train == 4500


def test_from_json_keeps_defaults_and_ignores_unknown_keys():
  """Guards: an old config.json (fewer keys) or a newer one (extra keys) failing to load."""
  cfg = C.from_json({"rounds": 7, "warmup": [1, 2], "no_such_key": 1})
  assert cfg == C.Config().replace(rounds=7, warmup=(1, 2))


def test_a_workdir_of_an_older_version_still_resumes(tmp_path):
  """Keys added since an older version take their defaults (what it ran) and renamed model
  specs their new names, so its workdir resumes; a real change is still refused."""
  from swapjax import registry
  from swapjax.workdir import Workdir, WorkdirError

  config = registry.get_config("memorize_mnist")
  old = {k: v for k, v in config.to_json().items() if k not in ("layers", "task", "micro_batches")}
  old["model"] = "mnist_cnn"  # the spec's name before the mnist_cnn experiment took it
  wd = Workdir(str(tmp_path))
  wd.prepare()
  wd.write_config({"config": old, "experiment": "memorize_mnist"})
  assert wd.check_config(config.to_json(), "memorize_mnist") is True
  changed = config.replace(task="sigmoid")
  with pytest.raises(WorkdirError, match="task: 'softmax' -> 'sigmoid'"):
    wd.check_config(changed.to_json(), "memorize_mnist")


def test_the_epochs_study_kind_keeps_its_earlier_name():
  base = C.Config(study="epochs", conditions=("none",), warmup=(0,))
  assert C.apply_overrides(base, ["study=memorize"]).study.kind == "epochs"
  assert C.from_json({**base.to_json(), "study": "memorize"}).study.kind == "epochs"
  with pytest.raises(C.ConfigError, match="study"):
    C.apply_overrides(base, ["study=memorise"])


def test_rows_carry_the_run_axes_the_study_uses():
  def axes(name):
    return C.row_axes(registry.get_config(name))

  assert axes("swap_cifar10") == ("condition", "warmup", "learning_rate", "seed")
  assert axes("fashion_dropout") == ("learning_rate", "train_fraction", "dropout_rate", "seed")
  assert axes("memorize_mnist") == ("learning_rate", "label_corruption", "seed")
  assert axes("regression") == ("learning_rate", "target_noise", "seed")
  # An axis at its default joins the rows once the study groups by it or varies it.
  iris = registry.get_config("iris")
  assert "dropout_rate" in C.row_axes(iris.replace(group_by=("dropout_rate",)))
  assert "leaky_slope" in C.row_axes(iris.replace(leaky_slope=(0.1, 0.3)))


def test_config_takes_sections_and_flat_keys_but_not_both_for_one_section():
  """A section passed whole keeps its fields, a flat key changes one of it; a section beside a
  flat key of a section (`study="epochs"` beside `data=Data()`) is refused; an unknown key
  names itself; a variants mapping becomes the variants' text."""
  study = C.Config(study=C.Study(kind="epochs"), rounds=3).study
  assert (study.kind, study.rounds) == ("epochs", 3)
  assert C.Config(data=C.Data(pool_size=8), holdout_size=2).data.pool_size == 8
  with pytest.raises(TypeError, match=r"^change a config's flat keys with config\.replace"):
    C.Config(data=C.Data(), study="epochs")
  with pytest.raises(TypeError, match=r"^Config has no field bogus, nope$"):
    C.Config(nope=2, bogus=1)
  assert C.Config(variant="x").variant == "x"
  assert C.Config(variants={"a": {"batch_size": 2}, "b": {}}).study.variants == "a:batch_size=2;b:"
