"""`python -m swapjax.report WORKDIR [WORKDIR ...]`: one study's report, or several compared."""

import json
import subprocess
import sys

import numpy as np
import pytest
import report_tables as rt

from swapjax import report, workdir

SINGLE = ("train/epoch_acc", "train/acc", "val/acc", "val/loss", "test/acc")
SWAP = tuple(
  f"{member}/{split}_acc"
  for split in ("test", "test_unseen", "holdout")
  for member in ("AtoB", "BtoA")
)
GROUPS = ("dropout_rate=0.0", "dropout_rate=0.5")
SEEDS, EPOCHS = 3, 4
TEST_EPOCHS = (1, 3)  # the last epoch has no test: each run's last test is epoch 3


def _write_study(path, config, rows, **meta):
  path.mkdir(parents=True)
  payload = {"experiment": "hand_made", "config": config, "swapjax": "0.1.0", **meta}
  (path / "config.json").write_text(json.dumps(payload))
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _single_study(path, rng, learning_rate=0.001, groups=GROUPS, names=None, **meta):
  """Writes a single-model study (groups `dropout_rate=x`, named `names` if given); returns
  values_GxSxExK of SINGLE (seeds and epochs differ)."""
  values = rng.uniform(0.05, 0.95, (len(groups), SEEDS, EPOCHS, len(SINGLE)))
  rows = []
  for epoch in range(1, EPOCHS + 1):
    for g, group in enumerate(groups):
      for seed in range(SEEDS):
        row = {"epoch": epoch, "run": g * SEEDS + seed, "group": (names or groups)[g], "seed": seed}
        row |= {"dropout_rate": float(group.split("=")[1]), "learning_rate": learning_rate}
        row |= {"train_fraction": 0.2, "fit_epoch": None}
        row.update(zip(SINGLE, values[g, seed, epoch - 1].tolist(), strict=True))
        if epoch not in TEST_EPOCHS:
          row["test/acc"] = None
        rows.append(row)
  config = {"study": "memorize", "report": "curves", "learning_rate": [learning_rate]}
  _write_study(path, {**config, "pool_size": 3000, "dropout_rate": [0.0, 0.5]}, rows, **meta)
  return values


def _swap_study(path, rng, rounds=3):
  """Writes a swap study with one group `all`; returns values_SxRxK of SWAP."""
  values = rng.uniform(0.05, 0.95, (SEEDS, rounds, len(SWAP)))
  rows = [
    {"round": rnd + 1, "run": seed, "group": "all", "seed": seed, "condition": "swap"}
    | dict(zip(SWAP, values[seed, rnd].tolist(), strict=True))
    for rnd in range(rounds)
    for seed in range(SEEDS)
  ]
  _write_study(path, {"study": "swap", "rounds": rounds}, rows)
  return values


def test_one_workdir_rebuilds_its_report(tmp_path, capsys, monkeypatch):
  _swap_study(tmp_path / "study", np.random.default_rng(0))
  reads, read = [], workdir.Workdir.read_metrics
  monkeypatch.setattr(workdir.Workdir, "read_metrics", lambda wd: reads.append(1) or read(wd))
  assert report.main([str(tmp_path / "study")]) == 0
  assert len(reads) == 1  # the rows are read once: a study of many runs holds them once
  assert capsys.readouterr().out.strip() == str(tmp_path / "study" / "report.md")
  text = (tmp_path / "study" / "report.md").read_text()
  assert text.startswith("# hand_made") and "## Final accuracies (round 3;" in text
  assert {p.name for p in (tmp_path / "study" / "plots").iterdir()} == {
    "accuracy.png",
    "loss.png",
    "honest_accuracy.png",
  }


def test_compare_single_model_studies_every_cell_against_numpy(tmp_path, capsys):
  """Guards: a cell that is not the mean ± std over the group's seeds of each run's last value
  (test: its last test epoch, not the final row's missing one), a group missing from one study
  in the table, columns named alike, config or device differences left out."""
  rng = np.random.default_rng(3)
  a, b = tmp_path / "cpu" / "study", tmp_path / "gpu" / "study"  # same folder name
  values_a = _single_study(a, rng, device="cpu")
  values_b = _single_study(b, rng, 0.01, (*GROUPS, "dropout_rate=0.9"), device="H200")
  out = tmp_path / "out"
  assert report.main([str(a), str(b), f"--out={out}"]) == 0
  text = capsys.readouterr().out
  table = rt.table(text, "group | metric")
  assert list(table[0]) == ["group", "metric", "study", "study_2"]
  assert [(r["group"], r["metric"]) for r in table] == [
    (f"`{group}`", metric) for group in GROUPS for metric in ("seeds", *SINGLE)
  ]
  for row in table:
    g = GROUPS.index(row["group"].strip("`"))
    if row["metric"] == "seeds":
      assert row["study"] == row["study_2"] == str(SEEDS)
      continue
    k = SINGLE.index(row["metric"])
    epoch = TEST_EPOCHS[-1] if row["metric"] == "test/acc" else EPOCHS
    for column, values in (("study", values_a), ("study_2", values_b)):
      rt.assert_stat(row[column], values[g, :, epoch - 1, k])
  assert "Groups not in every study: `dropout_rate=0.9` (study_2)" in text
  assert rt.table(text, "key | study") == [
    {"key": "`learning_rate`", "study": "[0.001]", "study_2": "[0.01]"}
  ]
  ran = {row["run"]: row for row in rt.table(text, "run")}
  assert ran["device"] == {"run": "device", "study": "cpu", "study_2": "H200"}
  assert "experiment" not in ran  # the same in both
  assert (out / "compare.md").read_text() == text + "\n![final values per group](compare.png)\n"
  assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_groups_named_differently_are_matched_by_their_values(tmp_path, capsys):
  """fashion_dropout grouped by `train_fraction,dropout_rate` in one study and by `dropout_rate`
  in another: the same runs' conditions, so the same groups."""
  rng = np.random.default_rng(4)
  values_a = _single_study(tmp_path / "a", rng)
  names = [f"train_fraction=0.2,{group}" for group in GROUPS]
  values_b = _single_study(tmp_path / "b", rng, names=names)
  assert report.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
  text = capsys.readouterr().out
  assert "The studies name their groups differently: matched by `dropout_rate`, " in text
  table = rt.table(text, "group | metric")
  assert [r["group"] for r in table if r["metric"] == "seeds"] == [f"`{g}`" for g in GROUPS]
  for row in table[1:]:
    if row["metric"] in SINGLE:
      g, k = GROUPS.index(row["group"].strip("`")), SINGLE.index(row["metric"])
      epoch = TEST_EPOCHS[-1] if row["metric"] == "test/acc" else EPOCHS
      rt.assert_stat(row["a"], values_a[g, :, epoch - 1, k])
      rt.assert_stat(row["b"], values_b[g, :, epoch - 1, k])


def test_compare_swap_studies(tmp_path, capsys):
  rng = np.random.default_rng(5)
  values = [_swap_study(tmp_path / name, rng, rounds) for name, rounds in (("a", 3), ("b", 2))]
  assert report.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
  text = capsys.readouterr().out
  table = rt.table(text, "group | metric")
  assert [r["metric"] for r in table] == ["seeds", *SWAP]
  for row in table[1:]:
    k = SWAP.index(row["metric"])
    rt.assert_stat(row["a"], values[0][:, -1, k])
    rt.assert_stat(row["b"], values[1][:, -1, k])
  assert {"study": "a", "last round": "round 3"}.items() <= rt.table(text, "study")[0].items()
  assert rt.table(text, "key | a") == [{"key": "`rounds`", "a": "3", "b": "2"}]


def _run_cli(*args):
  return subprocess.run(
    [sys.executable, "-m", "swapjax.report", *map(str, args)],
    capture_output=True,
    text=True,
    timeout=120,
  )


@pytest.mark.parametrize("case", ["missing", "no_config", "no_metrics", "empty_metrics"])
def test_a_study_not_found_or_without_metrics_is_one_line_and_exit_2(tmp_path, case):
  good = tmp_path / "good"
  _swap_study(good, np.random.default_rng(1))
  bad = tmp_path / "bad"
  if case != "missing":
    bad.mkdir()
  if case in ("no_metrics", "empty_metrics"):
    (bad / "config.json").write_text(json.dumps({"config": {"study": "swap"}}))
  if case == "empty_metrics":
    (bad / "metrics.jsonl").write_text("")
  for args in ((bad,), (good, bad)):
    result = _run_cli(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"swapjax.report: {bad}: "), result.stderr
  assert not (bad / "report.md").exists() and not (bad / "plots").exists()


def test_out_with_one_workdir_is_refused(tmp_path):
  _swap_study(tmp_path / "a", np.random.default_rng(2))
  result = _run_cli(tmp_path / "a", f"--out={tmp_path / 'out'}")
  assert result.returncode == 2 and "--out is for comparing" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


SMALL_HALF = ("train_fraction=0.2,dropout_rate=0.0", "train_fraction=0.2,dropout_rate=0.5")


def _report_epochs(text: str, group: str) -> list[str]:
  return [
    r["report epochs"] for r in rt.table(text, "group | report epochs") if group in r["group"]
  ]


def test_reference_experiment_compares_with_the_experiment_files_numbers(tmp_path, capsys):
  """A workdir recorded the report's 40-epoch numbers only (a long run started before the 400-
  and 4,000-epoch ones were entered): by default its report keeps them; with
  `--reference=experiment` it compares with fashion_dropout's numbers as installed now, and
  says so. Guards: the option ignored, or the recorded numbers overriding it."""
  from experiments import fashion_dropout

  forty = fashion_dropout.REFERENCE[SMALL_HALF[0]][0]
  assert forty["epochs"] == 40
  recorded = {"reported": {SMALL_HALF[0]: forty}, "true_parameters": {}}
  study = tmp_path / "study"
  _single_study(
    study,
    np.random.default_rng(4),
    names=SMALL_HALF,
    experiment="fashion_dropout",
    reference=recorded,
  )
  assert report.main([str(study)]) == 0
  text = (study / "report.md").read_text()
  assert _report_epochs(text, SMALL_HALF[0]) == ["40"]
  assert _report_epochs(text, SMALL_HALF[1]) == []
  assert "The report's numbers: config.json's, recorded when the study started." in text
  assert report.main([str(study), "--reference=experiment"]) == 0
  text = (study / "report.md").read_text()
  assert _report_epochs(text, SMALL_HALF[0]) == ["40", "400", "4000"]
  assert _report_epochs(text, SMALL_HALF[1]) == ["40"]
  assert "4 (report's 4000 not reached)" in text
  assert "(`--reference=experiment`; config.json's recorded numbers not used)" in text
  capsys.readouterr()


def test_reference_experiment_of_an_unknown_experiment_is_one_line(tmp_path):
  _single_study(tmp_path / "a", np.random.default_rng(5), experiment="no_such_experiment")
  _single_study(tmp_path / "b", np.random.default_rng(6))
  result = _run_cli(tmp_path / "a", "--reference=experiment")
  assert result.returncode == 2 and result.stdout == "", result
  assert result.stderr.splitlines() == [
    f"swapjax.report: {tmp_path / 'a'}: experiment 'no_such_experiment' is not registered here, "
    "so only config.json's recorded numbers can be used (leave out --reference)"
  ]
  assert not (tmp_path / "a" / "report.md").exists()
  result = _run_cli(tmp_path / "a", tmp_path / "b", "--reference=experiment")
  assert result.returncode == 2 and "--reference is for one study's report" in result.stderr
  assert "Traceback" not in result.stderr
