"""The notebook API: `swapjax.run(name, **overrides)` and `swapjax.load(workdir)`.

    import swapjax
    study = swapjax.run("tiny", workdir="runs/tiny", rounds=2, num_seeds=1)
    study.metrics.tail(); study.plot(); print(study.report)

`run` goes through the CLI's path: the same `--set` parsing and validation of the overrides, the
same runner (workdir contract, resume, `restart`), the same one-line errors (`ConfigError`,
`DataError`, `WorkdirError`, `MeshError`, raised before anything is written).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swapjax import config as configlib
from swapjax import registry, startup


def _set_text(value: Any, key: str = "") -> str:
  """A Python value as the text of `--set key=TEXT`: lists and tuples comma-joined, bools as
  true/false, mappings (variants, swap schedules, row fields) as the text config.json stores,
  str as given (parsed exactly like `--set`)."""
  if isinstance(value, Mapping):
    return configlib.mapping_text(key, value)
  if isinstance(value, (list, tuple)):
    return ",".join(_set_text(v) for v in value)
  if isinstance(value, bool):
    return "true" if value else "false"
  return str(value)


def make_config(experiment: str, **overrides) -> configlib.Config:
  """The experiment's config with `overrides` applied and validated as `--set key=value`."""
  if experiment not in registry.names():
    raise configlib.ConfigError(
      f"--experiment={experiment}: value should be one of {', '.join(registry.names())}"
    )
  items = [f"{key}={_set_text(value, key)}" for key, value in overrides.items()]
  return configlib.apply_overrides(registry.get_config(experiment), items)


def check_checkpoint_cadence(every: int, min_interval: int, prefix: str = "") -> None:
  """A `ConfigError` (one line) for a bad `checkpoint_every` / `checkpoint_min_interval`; its
  keys start with `prefix` ("--" on the command line)."""
  for key, value in (("checkpoint_every", every), ("checkpoint_min_interval", min_interval)):
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
      raise configlib.ConfigError(f"{prefix}{key}={value!r}: must be an integer >= 0")
  if min_interval and every != 0:
    raise configlib.ConfigError(
      f"{prefix}checkpoint_min_interval={min_interval} spaces continuous checkpoints "
      f"({prefix}checkpoint_every=0), not a checkpoint every {every} rounds"
    )


def run(
  experiment: str,
  workdir: str | os.PathLike | None = None,
  data_dir: str | None = None,
  restart: bool = False,
  progress: bool = True,
  tfds_data_dir: str | None = None,
  checkpoint_every: int = 1,
  checkpoint_min_interval: int = 0,
  **overrides,
) -> StudyResult:
  """Runs (or resumes) a study like `python -m swapjax.main`; returns it as a `StudyResult`.

  `overrides` are config keys (`rounds=2`, `learning_rate=[1e-3, 1e-4]`, `early_stop=False`,
  or `--set` text such as `conditions="none,one"`); the default workdir is `runs/<experiment>`.
  `checkpoint_every=N` writes a checkpoint after every N rounds, 0 after each round whose
  previous checkpoint's write has finished (`--checkpoint_every`), and then at least
  `checkpoint_min_interval` seconds apart (`--checkpoint_min_interval`).
  """
  config = make_config(experiment, **overrides)
  check_checkpoint_cadence(checkpoint_every, checkpoint_min_interval)
  startup.start(config)  # takes effect only where JAX has not started yet
  from swapjax import runner  # heavy imports after validation

  options = runner.RunOptions(
    workdir=str(workdir or f"runs/{experiment}"),
    data_dir=data_dir,
    tfds_data_dir=tfds_data_dir,
    restart=restart,
    progress=progress,
    checkpoint_every=checkpoint_every,
    checkpoint_min_interval=checkpoint_min_interval,
  )
  runner.run(config, experiment, options)
  return StudyResult(options.workdir)


def load(workdir: str | os.PathLike) -> StudyResult:
  """Opens a finished or running study (its files are read, training files never written)."""
  from swapjax.workdir import WorkdirError

  path = Path(workdir).expanduser()
  if not (path / "config.json").exists():
    raise WorkdirError(f"{path}: no config.json; not a swapjax study (yet)")
  return StudyResult(path)


class StudyResult:
  """One study's workdir, read on demand (so a running study shows its latest rounds)."""

  def __init__(self, workdir: str | os.PathLike):
    from swapjax.workdir import Workdir

    self._wd = Workdir(str(workdir))
    self.workdir = self._wd.path
    meta = self._wd.read_config() or {}
    self.meta = meta
    self.config: dict[str, Any] = meta.get("config", {})
    self.experiment: str = meta.get("experiment", "")

  def __repr__(self) -> str:
    return f"StudyResult({self.experiment!r}, workdir={str(self.workdir)!r})"

  def rows(self) -> list[dict[str, Any]]:
    """metrics.jsonl as a list of dicts (one per run and round)."""
    return self._wd.read_metrics()

  @property
  def metrics(self):
    """metrics.jsonl as a pandas DataFrame (a list of dicts without pandas)."""
    return _table(self.rows())

  @property
  def report(self) -> str:
    """report.md's markdown; rebuilt (with plots/) when missing or older than metrics.jsonl."""
    path = self.workdir / "report.md"
    metrics = self._wd.metrics_path
    stale = metrics.exists() and path.exists() and path.stat().st_mtime < metrics.stat().st_mtime
    if not path.exists() or stale:
      from swapjax import report

      report.write(self.workdir)
    return path.read_text()

  def plot_paths(self) -> list[Path]:
    """The report's figures (plots/*.png), built first if missing."""
    plots = self.workdir / "plots"
    if not plots.is_dir() or not any(plots.glob("*.png")):
      self.report  # noqa: B018 - builds report.md and plots/
    return sorted(plots.glob("*.png"))

  def plot(self) -> list[Path] | None:
    """Shows the report's figures inline in a notebook; elsewhere returns their paths."""
    paths = self.plot_paths()
    shell = _notebook_shell()
    if shell is None:
      return paths
    from IPython.display import Image, Markdown, display

    for path in paths:
      display(Markdown(f"**{path.name}**"), Image(filename=str(path)))
    return None

  def last_values(self) -> dict[str, dict[str, float]]:
    """{group: {metric: mean over the group's runs of each run's last recorded value}}."""
    from swapjax.tensorboard import scalar, split_row

    last: dict[tuple[str, int], dict[str, float]] = {}
    for row in sorted(self.rows(), key=lambda r: r.get("round", r.get("epoch", 0))):
      values = last.setdefault((row.get("group", "all"), row["run"]), {})
      for key, value in split_row(row)[1].items():
        if scalar(value) is not None:
          values[key] = scalar(value)
    out: dict[str, dict[str, list[float]]] = {}
    for (group, _), values in last.items():
      for key, value in values.items():
        out.setdefault(group, {}).setdefault(key, []).append(value)
    return {g: {k: sum(v) / len(v) for k, v in m.items()} for g, m in out.items()}

  def compare(self, other: StudyResult):
    """Per group, the last-round mean of every numeric metric both studies have, side by
    side: columns `<metric>_<workdir name>` (a DataFrame with pandas, else a list of dicts)."""
    mine, theirs = self.last_values(), other.last_values()
    names = _suffixes(self.workdir, other.workdir)
    shared = [
      m
      for m in _ordered(m for v in mine.values() for m in v)
      if any(m in v for v in theirs.values())
    ]
    table = []
    for group in _ordered([*mine, *theirs]):
      row: dict[str, Any] = {"group": group}
      for metric in shared:
        for name, values in zip(names, (mine, theirs), strict=True):
          row[f"{metric}_{name}"] = values.get(group, {}).get(metric, float("nan"))
      table.append(row)
    frame = _table(table)
    return frame.set_index("group") if hasattr(frame, "set_index") else frame


def _ordered(items) -> list:
  return list(dict.fromkeys(items))


def _suffixes(a: Path, b: Path) -> Sequence[str]:
  """The two workdirs' names; a name shared by both gets a `_2` on the second."""
  return (a.name, b.name) if a.name != b.name else (a.name, f"{b.name}_2")


def _table(rows: list[dict[str, Any]]):
  try:
    import pandas
  except ImportError:
    return rows
  return pandas.DataFrame(rows)


def _notebook_shell():
  """The IPython kernel this runs in, or None (plain Python, terminal IPython)."""
  try:
    from IPython import get_ipython
  except ImportError:
    return None
  shell = get_ipython()
  return shell if shell is not None and "IPKernelApp" in shell.config else None
