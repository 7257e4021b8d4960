"""benchmarks/results_table.py: every dated record is read, a record missing a required key
fails, and benchmarks/results/README.md holds the table the records give."""

import pytest

from benchmarks import results_table as rt

RECORD = """date: 2026-12-01
machine: Intel Xeon (AVX-512), 2 cores
command: python3 -m benchmarks.run --preset=tiny
headline: 0.21 s per round, 1.26x the PyTorch loop
---

# A record
"""


def test_every_dated_record_is_read_with_its_keys():
  paths = sorted(rt.HISTORY.glob("*.md"))
  records = rt.read_records()
  assert paths and sorted(r["name"] for r in records) == [p.name for p in paths]
  for r in records:
    assert all(r[k] for k in (*rt.REQUIRED, "title")), r["name"]
    assert r["name"].startswith(r["date"] + "-")


def test_the_readme_table_is_current():
  """Fails after a record is added or edited without `python3 -m benchmarks.results_table`."""
  assert rt.main(["--check"]) == 0


@pytest.mark.parametrize("key", rt.REQUIRED)
def test_a_record_missing_a_required_key_fails(tmp_path, key):
  lines = [line for line in RECORD.splitlines() if not line.startswith(f"{key}:")]
  (tmp_path / "2026-12-01-tiny.md").write_text("\n".join(lines))
  with pytest.raises(rt.RecordError, match=f"2026-12-01-tiny.md: missing required key.*{key}"):
    rt.read_records(tmp_path)
  assert rt.main(["--history", str(tmp_path), "--print"]) == 2


def test_the_table_from_a_record(tmp_path):
  history = tmp_path / "history"
  history.mkdir()
  (history / "2026-12-01-tiny.md").write_text(RECORD)
  readme = tmp_path / "README.md"
  readme.write_text(f"intro\n\n{rt.START}\nold\n{rt.END}\n")
  assert rt.main(["--history", str(history), "--readme", str(readme)]) == 0
  text = readme.read_text()
  assert "old" not in text and text.startswith("intro\n")
  assert (
    "| 2026-12-01 | Intel Xeon (AVX-512), 2 cores | [A record](history/2026-12-01-tiny.md) | "
    "`python3 -m benchmarks.run --preset=tiny` | 0.21 s per round, 1.26x the PyTorch loop |"
  ) in text
  assert rt.main(["--history", str(history), "--readme", str(readme), "--check"]) == 0


@pytest.mark.parametrize(
  ("name", "text", "message"),
  [
    ("2026-12-02-tiny.md", RECORD, "is not the file name's 2026-12-02"),
    ("notes.md", RECORD, "not named YYYY-MM-DD"),
    ("2026-12-01-tiny.md", RECORD.replace("---\n", ""), "no '---' line"),
    ("2026-12-01-tiny.md", "cpu: 2\n" + RECORD, "unknown key 'cpu'"),
    ("2026-12-01-tiny.md", RECORD.replace("# A record", "text"), "no '# ' title"),
  ],
)
def test_malformed_records_fail_naming_the_file(tmp_path, name, text, message):
  (tmp_path / name).write_text(text)
  with pytest.raises(rt.RecordError, match=message):
    rt.read_records(tmp_path)
