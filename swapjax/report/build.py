"""One study's report.md and plots/, rebuilt from its workdir alone: the header from config.json,
the study kind's sections from metrics.jsonl, and the timing from timing.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swapjax.config import STUDY_ALIASES
from swapjax.report import curves, files, memorization, references, swap
from swapjax.report.timing import timing_lines
from swapjax.workdir import Workdir, atomic_write_text

# The sections of each study kind in config.STUDY_KINDS.
REPORTS = {"swap": swap.swap_report, "epochs": memorization.memorize_report}


def write(workdir: str | Path, reference: str = "recorded", study=None) -> Path:
  """Writes report.md and plots/ from the workdir's files; returns the report path. The
  report's numbers are config.json's `reference` or, with `reference="experiment"`, the
  experiment file's (`references.experiment_reference`). `study`: the workdir's (config.json,
  rows) where the caller has read them (`files.load_study`)."""
  wd = Workdir(str(workdir))
  meta, rows = study or (wd.read_config() or {}, wd.read_metrics())
  config = meta.get("config", {})
  timing = files.read_timing(wd.path)
  plots = wd.path / "plots"
  plots.mkdir(exist_ok=True)
  lines = _header_lines(meta, config)
  lines += _study_lines(meta, config, rows, plots, reference)
  lines += timing_lines(timing, rows)
  path = wd.path / "report.md"
  atomic_write_text(path, "\n".join(lines) + "\n")
  return path


def _header_lines(meta: dict[str, Any], config: dict[str, Any]) -> list[str]:
  """The experiment's name and description, where its data came from, versions, notes and the
  protocol with its deviations from the source report."""
  lines = [
    f"# {meta.get('experiment', 'study')}",
    "",
    config.get("description", ""),
    "",
    f"- data: {meta.get('data_source')}",
    f"- runs: {meta.get('num_runs')}",
    f"- swapjax {meta.get('swapjax')}, jax {meta.get('jax')}, flax {meta.get('flax')}",
  ]
  lines += [f"- note: {n}" for n in meta.get("notes", [])]
  if meta.get("protocol"):
    lines += ["", "## Protocol and deviations from the report", "", "```", meta["protocol"], "```"]
  return lines + [""]


def _study_lines(
  meta: dict[str, Any], config: dict[str, Any], rows, plots: Path, source: str
) -> list[str]:
  """The study kind's sections (tables, and figures drawn into `plots`)."""
  if not rows:
    return ["No completed rounds yet."]
  if config.get("report") == "curves":
    reference = references.experiment_reference(meta, source)
    extra = {"reference": reference["reported"], "true_parameters": reference["true_parameters"]}
    extra["reference_origin"] = references.reference_origin(meta, source)
    extra["drops_units"] = files.drops_units(config)
    return curves.curves_report({**config, **extra}, rows, plots)
  study = config.get("study", "swap")
  return REPORTS[STUDY_ALIASES.get(study, study)](config, rows, plots)
