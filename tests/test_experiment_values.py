"""Experiment files write Python values (layer values, mappings of variants, schedule tables and
row fields), and the config stores them as the compact text config.json has always held.

`tests/golden/experiment_configs.json` holds every registered experiment's config.json (less its
`description`, the docstring's first line) as the fields that differ from the defaults, and the
defaults themselves. Old workdirs resume only while these stay the same (Workdir.check_config
compares them), so updating the file is legitimate only in a change that means to change what an
experiment runs, and says so; a field added to Config needs no update (new fields are allowed),
nor does a variant that `groups` leaves out (Workdir.check_config ignores those too).
"""

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swapjax import config as C
from swapjax import layers as L
from swapjax import registry
from swapjax.workdir import selected_variants

REPO = Path(__file__).resolve().parents[1]
EXPECTED = json.loads((REPO / "tests" / "golden" / "experiment_configs.json").read_text())


# ------------------------------------------------------------------ layer values
RATES = st.floats(0.0, 0.99, allow_nan=False) | st.sampled_from([0.0, 0.25, 0.3, 0.5, 1e-5])
LAYER_VALUES = st.one_of(
  st.builds(L.Conv, st.integers(1, 4096), st.sampled_from([None, "same", "valid"])),
  st.builds(L.Dense, st.integers(1, 4096)),
  st.builds(L.RNN, st.integers(1, 512), st.sampled_from([None, *L.ACTIVATION_NAMES]), RATES, RATES),
  st.builds(L.Dropout, st.none() | RATES),
  st.builds(L.LeakyReLU, st.none() | st.floats(0.0, 10.0)),
  st.sampled_from([L.relu, L.tanh, L.sigmoid, L.maxpool, L.flatten, L.gap]),
)


@settings(max_examples=300, deadline=None)
@given(LAYER_VALUES)
def test_layer_values_read_back_from_their_text(layer):
  """Guards: a value whose text parse_layer refuses, or reads back as another layer (a rate
  through a lossy format, a dropped activation before a rate, a padding lost)."""
  text = str(layer)
  L.parse_layer(text)
  assert L.layer_value(text) == layer
  assert L.layer_text(layer) == text


def _stored_layer_texts():
  texts = {t for spec in L.MODEL_SPECS.values() for t in spec}
  for name in registry.names():
    for cfg in C.variant_configs(registry.get_config(name)):
      texts.update(cfg.layers)
  return sorted(texts)


@pytest.mark.parametrize(
  "text",
  [
    *_stored_layer_texts(),
    "conv:8",
    "rnn:4",
    "rnn:16:tanh:0.5",
    "rnn:16:relu:0:0.3",
    "leaky_relu",
    "leaky_relu:0.2",
    "dropout",
  ],
)
def test_layer_texts_read_as_values_and_back(text):
  """Guards: a text of today's configs (experiments, named models) that the values cannot
  write back exactly, which would change config.json and refuse old workdirs."""
  assert str(L.layer_value(text)) == text


def test_layer_values_read_well():
  assert str(L.Conv(32, padding="same")) == "conv:32:same"
  assert str(L.Conv(64)) == "conv:64"  # Keras' default padding, valid
  assert str(L.RNN(16, "relu", recurrent_dropout=0.3)) == "rnn:16:relu:0:0.3"
  assert str(L.RNN(16, dropout=0.5)) == "rnn:16:tanh:0.5"
  assert str(L.Dropout()) == "dropout" and str(L.Dropout(0.4)) == "dropout:0.4"
  assert str(L.LeakyReLU()) == "leaky_relu"
  assert L.layers_text("rnn:16:relu, dense:3") == ("rnn:16:relu", "dense:3")


@pytest.mark.parametrize(
  "make, needle",
  [
    (lambda: L.Dense(0), "expected dense:UNITS"),
    (lambda: L.Conv(8, "full"), "expected conv:FILTERS"),
    (lambda: L.RNN(8, "relu", 1.5), "rates in [0, 1)"),
    (lambda: L.Dropout(1.0), "rate in [0, 1)"),
    (lambda: L.Plain("dense"), "plain layers are"),
    (lambda: L.layer_value("lstm:4"), "unknown layer"),
  ],
)
def test_bad_layer_values_are_one_line_errors(make, needle):
  with pytest.raises(ValueError, match=re.escape(needle)) as e:
    make()
  assert len(str(e.value).splitlines()) == 1


def test_config_takes_layer_values_or_text():
  """Guards: values stored as objects (config.json and `--set` would differ) or text changed."""
  values = C.Config(study="epochs", layers=(L.RNN(16, "relu"), L.Dense(3)))
  typed = C.apply_overrides(C.Config(study="epochs"), ["layers=rnn:16:relu,dense:3"])
  assert values.layers == typed.layers == ("rnn:16:relu", "dense:3")
  assert values == values.replace() == dataclasses.replace(values)  # normalizing is idempotent
  assert C.Config(layers=["conv:8:same", L.relu]).layers == ("conv:8:same", "relu")
  assert C.from_json(values.to_json()) == values


# ------------------------------------------------------------------ variants
def test_variants_take_typed_values():
  """Guards: a number that the text form cannot hold (`1e+3` split at its '+'), a scalar not
  made the run axis' one value, a float in a tuple through a lossy format."""
  cfg = C.Config(
    study="epochs",
    variants={
      "base": {},
      "big": {"learning_rate": 1e3, "batch_size": 8},
      "pair": {"optim.learning_rate": (1e-3, 1e-4)},
      "exp": {"learning_rate": 1e20},
      "net": {"layers": (L.Dense(12), L.sigmoid, L.Dense(3)), "row_fields": {"net": "s"}},
    },
  )
  got = {v.variant: v for v in C.variant_configs(cfg)}
  assert got["base"].learning_rate == (0.001,)
  assert got["big"].learning_rate == (1000.0,) and got["big"].batch_size == 8
  assert got["pair"].learning_rate == (0.001, 0.0001)
  assert got["exp"].learning_rate == (1e20,)
  assert got["net"].layers == ("dense:12", "sigmoid", "dense:3")
  assert got["net"].row_fields == ("net=s",)
  assert C.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


def test_variants_text_reads_an_exponent_sign():
  """`--set variants=...` keeps the text form; a '+' inside a number is not a separator."""
  assert C.parse_variants("big:learning_rate=1e+3+batch_size=4;small:") == [
    ("big", {"learning_rate": (1000.0,), "batch_size": 4}),
    ("small", {}),
  ]
  cfg = C.apply_overrides(C.Config(study="epochs"), ["variants=a:learning_rate=2.5e+0+momentum=0"])
  assert [(v.learning_rate, v.momentum) for v in C.variant_configs(cfg)] == [((2.5,), 0.0)]


def test_a_mapping_and_its_text_are_one_config():
  text = "base:;sigmoid:layers=dense:12,sigmoid,dense:3;lr0.1:learning_rate=0.1"
  values = {
    "base": {},
    "sigmoid": {"layers": (L.Dense(12), L.sigmoid, L.Dense(3))},
    "lr0.1": {"learning_rate": 0.1},
  }
  assert C.Config(variants=values) == C.Config(variants=text)


@pytest.mark.parametrize(
  "variants, needle",
  [
    ({"a:b": {}}, "'a:b' is not a name"),
    ({"a": 3}, "'a' is not a mapping"),
    ({"a": {"rounds": 3}}, "'a' sets rounds, which is the whole study's"),
    ({"a": {"batch_size": "x"}}, "which is not its type (int)"),
    ({"a": {"learning_rate": "0.1"}}, "which is not its type"),
    ({"a": {"dataset": "x;y"}}, "whose text holds ';' or '+'"),
    ({"a": {"nope": 1}}, "unknown config key 'nope'"),
  ],
)
def test_bad_variant_mappings_are_one_line_config_errors(variants, needle):
  with pytest.raises(C.ConfigError, match=re.escape(needle)) as e:
    C.validate(C.Config(variants=variants))  # the mapping at once, its text by validate
  assert len(str(e.value).splitlines()) == 1


# ------------------------------------------------------------------ schedules, rows, study kinds
def test_schedule_tables_are_stored_as_their_text():
  tables = {"none": ((0, 0),), "one": ((0, 1),), "schedule": ((100, 100), (10, 10), (0, 1))}
  assert C.Config(swap_schedules=tables).swap_schedules == C.DEFAULT_SCHEDULES
  assert C.Config(swap_schedules=tables).schedules() == tables
  for bad, needle in [({"x": ((1, 2.5),)}, "with integers"), ({"x=y": ((0, 0),)}, "not a name")]:
    with pytest.raises(C.ConfigError, match=re.escape(needle)):
      C.Config(swap_schedules=bad)


def test_row_fields_mapping():
  assert C.Config(row_fields={"gate": "xor", "units": 8}).row_fields == ("gate=xor", "units=8")
  with pytest.raises(C.ConfigError, match="holds a ','"):
    C.Config(row_fields={"gate": "a,b"})


def test_conditions_and_warmup_follow_the_study_kind():
  """The epochs study has no swaps: its configs need not repeat `conditions=("none",)` and
  `warmup=(0,)`; given values stay as given."""
  assert (C.Config().conditions, C.Config().warmup) == (("none", "one", "schedule"), (0, 10))
  epochs = C.Config(study="epochs")
  assert (epochs.conditions, epochs.warmup) == (("none",), (0,))
  assert C.Config(study="memorize").conditions == ("none",)
  assert C.Config(study="swap", conditions=("one",), warmup=(3,)).warmup == (3,)
  C.validate(epochs.replace(pool_size=100, holdout_size=10))


# ------------------------------------------------------------------ the experiments
@pytest.mark.parametrize("name", registry.names())
def test_experiment_configs_are_the_stored_ones(name):
  """Guards: an experiment whose config.json changed (its old workdirs would be refused)."""
  got = selected_variants(registry.get_config(name).to_json())
  del got["description"]
  want = selected_variants({**EXPECTED["defaults"], **EXPECTED["experiments"][name]})
  changed = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
  assert not changed, changed
  assert C.from_json(json.loads(json.dumps(registry.get_config(name).to_json()))) == (
    registry.get_config(name)
  )


def test_every_experiment_is_in_the_expected_file():
  assert sorted(EXPECTED["experiments"]) == registry.names()


# The string languages: a layer's `kind:arg`, a variant's `name:key=value+key=value;...`, a
# schedule's `threshold:k`, and the row fields' `key=value,key=value`.
TEXT_FORMS = {
  "layer": re.compile(r"\b(conv|dense|rnn|dropout|leaky_relu):|^(maxpool|flatten|gap)$"),
  "variant": re.compile(r"^\s*[\w.]+:\s*$|:\s*[\w.]+=|\+\s*[\w.]+=|;.*[:=]"),
  "schedule": re.compile(r"\d\s*:\s*\d"),
  "row field": re.compile(r"\w=[^,]*,\s*\w+=|\brow_fields="),
}
VALUE_FIELDS = ("layers", "variants", "swap_schedules", "row_fields")


def _group_name(text: str) -> bool:
  """A group name the reports look numbers up by (`train_fraction=0.2,dropout_rate=0.0`): the
  engine's name of a group of run-axis values, not a language an experiment writes."""
  pairs = [p.partition("=") for p in text.split(",")]
  return all(sep and key in C.RUN_AXES and value for key, sep, value in pairs)


def _text_forms(source: str) -> list[str]:
  """The string languages in a module's source: string constants (docstrings aside) of any of
  the forms, and the value fields given text (a string or a `"...".join(...)`)."""
  tree = ast.parse(source)
  docs = {
    id(node.body[0].value)
    for node in ast.walk(tree)
    if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
    and node.body
    and isinstance(node.body[0], ast.Expr)
  }
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
      found += [
        f"line {node.lineno}: {form} text {node.value!r}"
        for form, pattern in TEXT_FORMS.items()
        if pattern.search(node.value) and not _group_name(node.value)
      ]
    if isinstance(node, ast.keyword) and node.arg in VALUE_FIELDS:
      value = node.value
      joined = isinstance(value, ast.Call) and getattr(value.func, "attr", "") == "join"
      if isinstance(value, (ast.Constant, ast.JoinedStr)) or joined:
        found.append(f"line {node.lineno}: {node.arg}= given as text")
  return found


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.py")), ids=lambda p: p.name)
def test_experiment_files_write_values_not_text(path):
  """Guards: a hand-written layer, variant, schedule or row-field string back in an experiment
  file (Python values say the same, and the config stores the text)."""
  assert not _text_forms(path.read_text())


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.py")), ids=lambda p: p.name)
def test_epochs_studies_leave_conditions_and_warmup_to_their_kind(path):
  """Guards: the swap study's `conditions` / `warmup` repeated in a study without swaps."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Call) and any(
      k.arg == "study" and getattr(k.value, "value", None) == "epochs" for k in node.keywords
    ):
      assert not {k.arg for k in node.keywords} & {"conditions", "warmup"}, path.name


@pytest.mark.parametrize(
  "source",
  [
    'c = Config(layers=("rnn:16:relu", "dense:1"))',
    'x = ["conv:32:same", "maxpool"]',
    'c = Config(variants="base:;lr0.1:learning_rate=0.1")',
    'VARIANTS = ";".join(f"{n}:dataset={n}" for n in NAMES)',
    'c = Config(variants=VARIANTS + ";x:")',
    'c = Config(swap_schedules="none=0:0;one=0:1")',
    'c = Config(layers=",".join(LAYERS))',
    'v = "gate=or,network=x"',
  ],
)
def test_the_scan_finds_each_text_form(source):
  """The scan above can fail: each language is found."""
  assert _text_forms(source), source


def test_the_scan_leaves_group_names_and_activations():
  assert not _text_forms('R = {"train_fraction=0.2,dropout_rate=0.0": 1}\nx = RNN(16, "relu")')
