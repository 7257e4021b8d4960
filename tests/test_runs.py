"""A study's runs (swapjax/config/runs.py): the variants' text, the configs per variant and
program, the run table, the group names and the run axes a row carries."""

import pytest

from swapjax import config as C
from swapjax.config import runs as R

EPOCHS = ["study=epochs", "conditions=none", "warmup=0"]


def config(*items):
  return C.apply_overrides(C.Config(), [*EPOCHS, *items])


def groups(cfg) -> list[str]:
  """The study's group names in order of appearance."""
  return list(dict.fromkeys(R.group_names(cfg, R.run_table(cfg))))


def _each_variant(text: str, why: str) -> tuple[str, str]:
  return text, f"variants={text}: each variant is name:key=value+...; {why}"


@pytest.mark.parametrize(
  ("text", "line"),
  [
    _each_variant("a", "'a' has no ':' after its name ('a:' keeps the study's values)"),
    _each_variant("a=b", "'a=b' has no name (name:a=b)"),
    _each_variant(":dropout=true", "':dropout=true' has no name before its ':'"),
    _each_variant("a=b:dropout=true", "'a=b' is not a name (no '=', ',' or '+')"),
    _each_variant("a,b:dropout=true", "'a,b' is not a name (no '=', ',' or '+')"),
    _each_variant("a+b:dropout=true", "'a+b' is not a name (no '=', ',' or '+')"),
    _each_variant("a:;b:;a:", "names repeat (a)"),
    _each_variant("b:;a:;b:;a:", "names repeat (a, b)"),
    _each_variant("", "none given"),
    _each_variant(";", "none given"),
    ("a:dropout", "variants: 'dropout' in 'a' is not key=value"),
    ("a:num_seeds=3", "variants: 'a' sets num_seeds, which is the whole study's"),
    ("a:learning_rate=0.1+rounds=3", "variants: 'a' sets rounds, which is the whole study's"),
  ],
)
def test_bad_variants_name_the_fault(text, line):
  with pytest.raises(C.ConfigError) as e:
    R.parse_variants(text)
  assert str(e.value) == line


def test_variants_are_typed_and_keep_their_order():
  assert R.parse_variants("b:learning_rate=0.1,0.2+batch_size=2; a:;X c:adam_eps=1e+3") == [
    ("b", {"learning_rate": (0.1, 0.2), "batch_size": 2}),
    ("a", {}),
    ("X c", {"adam_eps": 1000.0}),
  ]


def test_variant_configs_narrow_to_the_groups_asked_for():
  """Each variant's config has its own values, no variants and no groups of its own; `groups`
  keeps the variants it names, in the variants' order; a name that is no variant is refused
  with the variants there are."""
  cfg = config("variants=a:;b:batch_size=2;c:batch_size=4")
  got = R.variant_configs(cfg)
  assert [(v.variant, v.study.variants, v.study.groups) for v in got] == [
    ("a", "", ()),
    ("b", "", ()),
    ("c", "", ()),
  ]
  assert [v.optim.batch_size for v in got] == [cfg.optim.batch_size, 2, 4]
  picked = R.variant_configs(cfg.replace(groups=("c", "a")))
  assert [(v.variant, v.study.groups) for v in picked] == [("a", ()), ("c", ())]
  with pytest.raises(C.ConfigError) as e:
    R.variant_configs(cfg.replace(groups=("d", "a", "b0")))
  assert str(e.value) == "groups=b0,d: not a variant of this study; variants: a, b, c"
  assert R.variant_configs(config()) == [config()]


def test_run_table_runs_each_variant_in_turn_named_by_it():
  cfg = config("variants=a:;b:learning_rate=0.1,0.2", "num_seeds=2")
  table = R.run_table(cfg)
  assert [(r["variant"], r["learning_rate"], r["seed"]) for r in table] == [
    ("a", 0.001, 0),
    ("a", 0.001, 1),
    ("b", 0.1, 0),
    ("b", 0.1, 1),
    ("b", 0.2, 0),
    ("b", 0.2, 1),
  ]
  assert "variant" not in R.run_table(config())[0]


def test_inputs_corrupted_with_true_labels_take_the_lowest_label_corruption_only():
  both = ("label_corruption=0,0.5", "input_corruption=none,gaussian")
  pairs = lambda cfg: {(r["label_corruption"], r["input_corruption"]) for r in R.run_table(cfg)}
  assert pairs(config(*both)) == {(0.0, "none"), (0.0, "gaussian"), (0.5, "none")}
  assert len(pairs(config(*both, "input_corruption_true_labels=false"))) == 4


@pytest.mark.parametrize(
  ("items", "names"),
  [
    ((), ["all"]),
    (("num_seeds=3",), ["all"]),  # seeds are the runs of a group
    (("group_by=learning_rate",), ["learning_rate=0.001"]),
    (
      ("train_fraction=0.5,1", "learning_rate=0.1,0.2"),
      [
        "learning_rate=0.1,train_fraction=0.5",
        "learning_rate=0.1,train_fraction=1.0",
        "learning_rate=0.2,train_fraction=0.5",
        "learning_rate=0.2,train_fraction=1.0",
      ],
    ),
    (
      ("variants=a:;b:learning_rate=0.1,0.2", "group_by=train_fraction"),
      [
        "a,train_fraction=1.0",
        "b,learning_rate=0.1,train_fraction=1.0",
        "b,learning_rate=0.2,train_fraction=1.0",
      ],
    ),  # fmt: skip
  ],
)
def test_group_names_say_what_varies_in_the_variant(items, names):
  cfg = config(*items)
  assert groups(cfg) == names
  table = R.run_table(cfg)
  assert [R.group_name(cfg, run) for run in table] == R.group_names(cfg, table)


@pytest.mark.parametrize(
  ("items", "axes"),
  [
    ((), ("learning_rate", "seed")),
    (("conditions=none,one", "study=swap"), ("condition", "warmup", "learning_rate", "seed")),
    (("study=swap",), ("condition", "warmup", "learning_rate", "seed")),  # each at its default
    (("layers=dense:4,leaky_relu,dense:2",), ("learning_rate", "leaky_slope", "seed")),
    (
      ("variants=a:;b:layers=dense:4,leaky_relu,dense:2",),
      ("learning_rate", "leaky_slope", "seed"),
    ),
    (("augment_flip=1",), ("learning_rate", "augment_flip", "seed")),  # set, not the default
    (("group_by=dropout_rate",), ("learning_rate", "dropout_rate", "seed")),
    (("train_fraction=0.5,1",), ("learning_rate", "train_fraction", "seed")),
    (("task=regression", "target_noise=0"), ("learning_rate", "seed")),  # at its default
  ],
)
def test_row_axes_are_what_says_something_of_the_runs(items, axes):
  assert R.row_axes(config(*items)) == axes
