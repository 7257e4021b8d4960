"""The frozen study config: seven sections (swapjax.config.sections) and the flat keys that name
their fields in config.json, `--set` and variants.

`config.data.pool_size` is the field, and the engine reads it so (a reader sees which section
a value comes from); `config.pool_size` reads the same value (every field whose key is not a
section's name), the short form for users' notebooks, experiments and tests. Two fields take
another name in their section: the study kind (`study` in config.json and `--set`,
`config.study.kind`) and the named network (`model`, `config.model.name`). Changes go through
`config.replace(pool_size=..., ...)`, which keeps every other field of every section.

One config serves every experiment so that the keys users reach for (`rounds`, `num_seeds`,
`conditions`, `warmup`, `pool_size`, `batch_size`, `learning_rate`, `shared_model`,
`validation_split`) mean the same everywhere. config.json stores the flat keys (what users'
workdirs hold, compared field by field on resume); `--show_config` prints the sections.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from swapjax.config.choices import STUDY_KINDS, StudyKind
from swapjax.config.keys import FLAT, field_of, field_types
from swapjax.config.sections import (
  SECTION_TYPES,
  Backend,
  Data,
  Engine,
  Model,
  Optim,
  Runs,
  Study,
)
from swapjax.config.text import parse_schedules, variants_text


@dataclasses.dataclass(frozen=True, init=False)
class Config:
  """Everything a study needs; read when building, never inside jitted code.

  Built from flat keys (`Config(dataset="mnist", rounds=3)`, Python values: layer values and
  mappings become the text the config stores) or from sections (`Config(data=Data(...))`).
  """

  study: Study
  data: Data
  model: Model
  optim: Optim
  runs: Runs
  engine: Engine
  backend: Backend
  variant: str = ""  # set by `program_configs`: the variant a program belongs to

  def __init__(self, variant: str = "", **values):
    sections = _take_sections(values)
    if sections and any(name in values for name in SECTION_TYPES):
      # dataclasses.replace(config, study="epochs") would drop the rest of the study section.
      raise TypeError("change a config's flat keys with config.replace(...)")
    self._assign(sections, values, variant)

  def _assign(self, sections: dict[str, Any], flat: dict[str, Any], variant: str) -> None:
    unknown = sorted(set(flat) - set(FLAT))
    if unknown:
      raise TypeError(f"Config has no field {', '.join(unknown)}")
    if isinstance(flat.get("variants"), Mapping):
      flat = {**flat, "variants": variants_text(flat["variants"], field_types(), field_of)}
    for name, cls in SECTION_TYPES.items():
      changes = {FLAT[key][1]: value for key, value in flat.items() if FLAT[key][0] == name}
      if name in sections:
        section = dataclasses.replace(sections[name], **changes) if changes else sections[name]
      else:
        section = cls(**changes)
      object.__setattr__(self, name, section)
    object.__setattr__(self, "variant", variant)

  def replace(self, **changes) -> Config:
    """A copy with `changes`: flat keys (`pool_size=2000`, `study="epochs"`), whole sections
    (`data=Data(...)`) or `variant`; every other field as it is."""
    sections = {name: getattr(self, name) for name in SECTION_TYPES} | _take_sections(changes)
    variant = changes.pop("variant", self.variant)
    new = object.__new__(Config)
    new._assign(sections, changes, variant)
    return new

  # ---------------------------------------------------------------- derived
  @property
  def kind(self) -> StudyKind:
    """The facts of the study's kind (halves, members, what a round is called...)."""
    return STUDY_KINDS[self.study.kind]

  @property
  def members(self) -> int:
    """Networks per run: 2 (A and B), 1 for a shared model or a single-model study."""
    return 1 if self.shared_model else self.kind.members

  @property
  def train_pool(self) -> int:
    """Pool samples a program uses: the first round(train_fraction x pool_size) of the pool
    (a study of several fractions is several programs, see `program_configs`)."""
    fraction = self.train_fraction[0] if len(self.train_fraction) == 1 else 1.0
    return max(1, round(self.pool_size * fraction))

  @property
  def half_size(self) -> int:
    return self.train_pool // self.kind.halves

  @property
  def data_size(self) -> int:
    """Training images the study reads: its pool and, if any, the test split after it."""
    return self.pool_size + self.test_from_train

  @property
  def num_train(self) -> int:
    """Samples of a member's half that train each round (Keras `validation_split` rule)."""
    return int(self.half_size * (1.0 - self.validation_split))

  def schedules(self) -> dict[str, tuple[tuple[int, int], ...]]:
    return parse_schedules(self.swap_schedules)

  def flat(self) -> dict[str, Any]:
    """{flat key: value} of every field, `variant` last."""
    values = {key: getattr(getattr(self, s), f) for key, (s, f) in FLAT.items()}
    return {**values, "variant": self.variant}

  def to_json(self) -> dict[str, Any]:
    """The flat form config.json stores: `flat()` with tuples as lists."""
    return {key: _jsonable(value) for key, value in self.flat().items()}

  def to_nested(self) -> dict[str, dict[str, Any]]:
    """{section: {field: value}} as `--show_config` prints it (`variant` is the engine's)."""
    return {
      name: {k: _jsonable(v) for k, v in dataclasses.asdict(getattr(self, name)).items()}
      for name in SECTION_TYPES
    }


def _take_sections(values: dict[str, Any]) -> dict[str, Any]:
  """Pops the whole sections out of `values` (a section's name holding its dataclass; a flat
  `study="epochs"` or `model="cnn_004"` stays)."""
  return {
    name: values.pop(name)
    for name, cls in SECTION_TYPES.items()
    if isinstance(values.get(name), cls)
  }


def _flat_property(section: str, name: str) -> property:
  return property(
    lambda self: getattr(getattr(self, section), name), doc=f"config.{section}.{name}"
  )


for _key, (_section, _name) in FLAT.items():
  if _key not in SECTION_TYPES:
    setattr(Config, _key, _flat_property(_section, _name))


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value


def from_json(data: Mapping[str, Any]) -> Config:
  """The Config of a config.json (unknown keys ignored, old study names read as today's)."""
  types = field_types()
  values = {}
  for key, value in data.items():
    if key in types:
      values[key] = tuple(value) if typing.get_origin(types[key]) is tuple else value
  return Config(**values)  # Study reads old study names as today's
