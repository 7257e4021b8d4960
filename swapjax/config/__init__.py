"""The frozen study config: seven typed sections, `--set` overrides, validation and the run
product. Pure Python (no JAX), so that flags, reports and checks load it cheaply.

Where to look:
  errors.py      ConfigError, the one error every module here raises.
  choices.py     the values fields may take, the study kinds' facts, the run axes.
  text.py        the stored text of swap schedules, row fields and variants (experiment
                 files write them as mappings).
  sections.py    the sections (study, data, model, optim, runs, engine, backend): fields,
                 defaults, each section's own checks.
  keys.py        flat and dotted keys (`rounds`, `optim.learning_rate`), field types.
  fields.py      `Config`: the sections together, `replace`, the JSON form (`to_json`,
                 `from_json`).
  values.py      one `--set key=text`: the field it names, the typed value.
  runs.py        run axes, variants, one config per compiled program, the run table, groups.
  validation.py  `validate`: one-line ConfigErrors, checked in a fixed order.
  overrides.py   `apply_overrides`: `--set` strings applied, then validated.
"""

# The submodules in dependency order: each imports only those above it.
# isort: off
from swapjax.config.errors import ConfigError
from swapjax.config.choices import (
  CONV_IMPLS,
  DATASETS,
  DEFAULT_SCHEDULES,
  DRIVERS,
  DTYPES,
  EXCHANGES,
  GENERATED_DATASETS,
  IMAGE_DATASETS,
  INPUT_CORRUPTIONS,
  LOSSES,
  MODELS,
  NORMALIZE,
  ON_NAN,
  RNN_IMPLS,
  RUN_AXES,
  SOURCES,
  STATIC_AXES,
  STUDIES,
  STUDY_ALIASES,
  STUDY_KINDS,
  TASKS,
  TRACED_AXES,
  StudyKind,
)
from swapjax.config.text import parse_schedules
from swapjax.config.sections import Backend, Data, Engine, Model, Optim, Runs, Study
from swapjax.config.keys import field_of, field_types, flat_defaults
from swapjax.config.fields import Config, from_json
from swapjax.config.values import mapping_text, parse_value
from swapjax.config.runs import (
  STUDY_KEYS,
  axis_defaults,
  group_name,
  group_names,
  parse_variants,
  program_configs,
  row_axes,
  run_table,
  variant_configs,
)
from swapjax.config.validation import validate
from swapjax.config.overrides import apply_overrides
# isort: on

__all__ = [
  "CONV_IMPLS",
  "DATASETS",
  "DEFAULT_SCHEDULES",
  "DRIVERS",
  "DTYPES",
  "EXCHANGES",
  "GENERATED_DATASETS",
  "IMAGE_DATASETS",
  "INPUT_CORRUPTIONS",
  "LOSSES",
  "MODELS",
  "NORMALIZE",
  "ON_NAN",
  "RNN_IMPLS",
  "RUN_AXES",
  "SOURCES",
  "STATIC_AXES",
  "STUDIES",
  "STUDY_ALIASES",
  "STUDY_KEYS",
  "STUDY_KINDS",
  "TASKS",
  "TRACED_AXES",
  "axis_defaults",
  "Backend",
  "Config",
  "Data",
  "Engine",
  "Model",
  "Optim",
  "Runs",
  "Study",
  "ConfigError",
  "StudyKind",
  "apply_overrides",
  "field_of",
  "field_types",
  "flat_defaults",
  "from_json",
  "group_name",
  "group_names",
  "parse_schedules",
  "mapping_text",
  "parse_value",
  "parse_variants",
  "program_configs",
  "row_axes",
  "run_table",
  "validate",
  "variant_configs",
]
