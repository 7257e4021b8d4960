"""The frozen study config: one dataclass of typed fields, `--set` overrides, validation and the
run product. Pure Python (no JAX), so that flags, reports and checks load it cheaply.

Where to look:
  errors.py      ConfigError, the one error every module here raises.
  text.py        the stored text of swap schedules, row fields and variants (experiment
                 files write them as mappings).
  fields.py      `Config` (field order and defaults), the allowed values, study kinds, the
                 JSON form (`to_json`, `from_json`).
  values.py      one `--set key=text`: the field it names, the typed value.
  runs.py        run axes, variants, one config per compiled program, the run table, groups.
  validation.py  `validate`: one-line ConfigErrors, checked in a fixed order.
  overrides.py   `apply_overrides`: `--set` strings applied, then validated.

The sections users see (`--show_config`, `--set optim.learning_rate=...`) are swapjax.sections.
"""

# The submodules in dependency order: each imports only those above it.
# isort: off
from swapjax.config.errors import ConfigError
from swapjax.config.text import parse_schedules
from swapjax.config.fields import (
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
  SOURCES,
  STUDIES,
  STUDY_ALIASES,
  STUDY_KINDS,
  TASKS,
  Config,
  StudyKind,
  field_types,
  from_json,
)
from swapjax.config.values import field_of, mapping_text, parse_value
from swapjax.config.runs import (
  RUN_AXES,
  STATIC_AXES,
  STUDY_KEYS,
  TRACED_AXES,
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
  "Config",
  "ConfigError",
  "StudyKind",
  "apply_overrides",
  "field_of",
  "field_types",
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
