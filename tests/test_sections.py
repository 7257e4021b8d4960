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
    ("lerning_rate=1", "unknown config key 'lerning_rate'; valid keys: optim.adam_eps"),
    ("optim.rounds=1", "'rounds' is in section study (study.rounds)"),
    ("optim.nope=1", "section optim has no key 'nope'"),
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
