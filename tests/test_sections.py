"""The config's sections: every field in one section, dotted and bare `--set` keys, internal
fields refused, `--show_config` nested."""

import dataclasses
import json
import subprocess
import sys

import pytest

from swapjax import config as C
from swapjax import registry
from swapjax.config import keys


def test_every_field_is_in_exactly_one_section_or_internal():
  placed = [name for names in keys.SECTIONS.values() for name in names]
  placed += list(keys.INTERNAL)
  assert sorted(placed) == sorted(C.Config().flat())
  sections = {f.name for f in dataclasses.fields(C.Config)} - set(keys.INTERNAL)
  assert sections == set(keys.SECTIONS)


def test_dotted_and_bare_keys_set_the_same_field():
  base = registry.get_config("iris")
  dotted = C.apply_overrides(base, ["optim.learning_rate=0.1,0.01", "runs.num_seeds=2"])
  bare = C.apply_overrides(base, ["learning_rate=0.1,0.01", "num_seeds=2"])
  assert dotted == bare and dotted.learning_rate == (0.1, 0.01) and dotted.num_seeds == 2
  variant = C.apply_overrides(base, ["variants=fast:optim.learning_rate=0.5"])
  assert C.variant_configs(variant)[0].learning_rate == (0.5,)


@pytest.mark.parametrize(
  "item,needle",
  [
    ("model.learning_rate=1", "'learning_rate' is in section optim (optim.learning_rate)"),
    ("optimiser.learning_rate=1", "unknown section 'optimiser'"),
    (
      "lerning_rate=1",
      "unknown config key 'lerning_rate'; did you mean optim.learning_rate? valid",
    ),
    ("optim.rounds=1", "'rounds' is in section study (study.rounds)"),
    ("optim.nope=1", "section optim has no key 'nope'; valid keys: optim.optimizer, optim."),
    ("variant=x", "set by the engine for each group, not a config key"),
    ("variants=a:variant=x", "set by the engine"),
  ],
)
def test_keys_that_name_no_settable_field_are_one_line_errors(item, needle):
  with pytest.raises(C.ConfigError, match=None) as e:
    C.apply_overrides(registry.get_config("iris"), [item])
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_show_config_prints_the_sections():
  done = subprocess.run(
    [
      sys.executable,
      "-m",
      "swapjax.main",
      "--experiment=tiny",
      "--set",
      "optim.batch_size=4",
      "--show_config",
    ],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert done.returncode == 0, done.stderr
  shown = json.loads(done.stdout)
  assert list(shown) == list(keys.SECTIONS)
  assert shown["optim"]["batch_size"] == 4 and shown["backend"]["conv_impl"] == "auto"
  assert "variant" not in {k for section in shown.values() for k in section}


def test_a_config_is_its_sections_and_reads_flat():
  cfg = registry.get_config("iris")
  assert isinstance(cfg.data, C.Data) and isinstance(cfg.optim, C.Optim)
  assert cfg.pool_size == cfg.data.pool_size and cfg.learning_rate == cfg.optim.learning_rate
  assert cfg.study.kind == "epochs" and cfg.to_json()["study"] == "epochs"
  assert C.Config(model="cnn_004").model.name == "cnn_004"
  assert C.Config(data=C.Data(pool_size=300)).pool_size == 300


def test_replace_keeps_every_other_field():
  cfg = C.Config(rounds=7, conditions=("none",), warmup=(0,), pool_size=500)
  kind = cfg.replace(study="epochs")
  assert (kind.study.kind, kind.rounds, kind.conditions, kind.pool_size) == (
    "epochs",
    7,
    ("none",),
    500,
  )
  assert cfg.replace(data=C.Data(dataset="mnist")).rounds == 7
  assert cfg.replace(variant="v").variant == "v" and cfg.replace() == cfg
  with pytest.raises(TypeError, match="config.replace"):
    dataclasses.replace(cfg, study="epochs")  # would drop the rest of the study section
  with pytest.raises(TypeError, match="no field nope"):
    cfg.replace(nope=1)


def test_full_keys_of_the_renamed_fields():
  base = registry.get_config("tiny")
  assert C.apply_overrides(
    base, ["study.kind=epochs", "conditions=none", "warmup=0"]
  ).study.kind == ("epochs")
  assert C.apply_overrides(base, ["model.name=cifar_cnn"]).model.name == "cifar_cnn"
  assert keys.full("study") == "study.kind" and keys.full("model") == "model.name"


@pytest.mark.parametrize(
  "section,message",
  [
    (C.Data(augment_flip=(3,)), "augment_flip=3: must be 0, 1"),
    (C.Data(dataset="iris", augment_flip=(1,)), "dataset iris has no images to augment"),
    (C.Optim(learning_rate=(0.0,)), "learning_rate=0.0: must be in (0, 10)"),
    (C.Runs(num_seeds=0), "num_seeds=0: must be >= 1"),
    (C.Engine(checkpoint_keep=0), "checkpoint_keep=0: must be >= 1"),
    (C.Backend(rnn_impl="cuda"), "rnn_impl=cuda: allowed values are"),
    (C.Model(layers=("dense:3",), dropout_rate=(0.5,)), "layers has no dropout layer"),
    (C.Study(kind="epochs", conditions=("one",)), "the epochs study has no swaps"),
  ],
)
def test_each_section_checks_itself(section, message):
  with pytest.raises(C.ConfigError) as e:
    section.validate()
  assert message in str(e.value) and "\n" not in str(e.value)
  type(section)().validate()  # the defaults are valid
