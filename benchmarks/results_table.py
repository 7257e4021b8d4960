"""The table of dated measurement records: `python3 -m benchmarks.results_table`.

Every measurement worth keeping is a record `benchmarks/results/history/YYYY-MM-DD-<topic>.md`:
a front block of `key: value` lines ended by a line `---`, then the record in markdown under a
`# ` title. Required keys: `date` (the file name's), `machine` (its kind, e.g. `Intel Xeon
(AVX-512), 2 cores`), `command` (the one that produced the headline) and `headline` (the numbers,
one line); optional: `software`, `files`. This script reads every record and writes the table
(date, machine, record, command, headline) between the markers of `benchmarks/results/README.md`;
`--check` exits 1 when that table is not the one the records give, `--print` only prints it.
Standard library only.
"""

import argparse
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HISTORY = RESULTS / "history"
README = RESULTS / "README.md"
REQUIRED = ("date", "machine", "command", "headline")
OPTIONAL = ("software", "files")
NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-[a-z0-9][a-z0-9-]*\.md$")
START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"


class RecordError(ValueError):
  """A record or README that does not follow the format; the message names the file."""


def read_record(path: Path) -> dict[str, str]:
  """One record's front block as a dict, plus `title` (its `# ` heading) and `name`."""
  match = NAME.match(path.name)
  if not match:
    raise RecordError(f"{path}: not named YYYY-MM-DD-<topic>.md (lower case, digits, dashes)")
  lines = path.read_text().splitlines()
  if "---" not in lines:
    raise RecordError(f"{path}: no '---' line ending the front block of 'key: value' lines")
  end = lines.index("---")
  record: dict[str, str] = {}
  for number, line in enumerate(lines[:end], start=1):
    key, sep, value = line.partition(":")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
      raise RecordError(f"{path}:{number}: expected 'key: value', got {line!r}")
    if key not in REQUIRED + OPTIONAL:
      raise RecordError(f"{path}:{number}: unknown key {key!r} (known: {REQUIRED + OPTIONAL})")
    if key in record:
      raise RecordError(f"{path}:{number}: key {key!r} given twice")
    record[key] = value
  missing = [k for k in REQUIRED if k not in record]
  if missing:
    raise RecordError(f"{path}: missing required key(s) {', '.join(missing)}")
  if record["date"] != match.group(1):
    raise RecordError(f"{path}: date {record['date']} is not the file name's {match.group(1)}")
  titles = [line[2:].strip() for line in lines[end + 1 :] if line.startswith("# ")]
  if not titles:
    raise RecordError(f"{path}: no '# ' title after the front block")
  return {**record, "title": titles[0], "name": path.name}


def read_records(folder: Path = HISTORY) -> list[dict[str, str]]:
  """Every `*.md` record in `folder`, oldest first; a file that is not a record is an error."""
  paths = sorted(folder.glob("*.md"))
  if not paths:
    raise RecordError(f"{folder}: no records")
  return sorted((read_record(p) for p in paths), key=lambda r: (r["date"], r["name"]))


def _cell(text: str) -> str:
  return text.replace("|", "\\|")


def table(records: list[dict[str, str]], link_dir: str = "history") -> str:
  """The markdown table of `records`, newest date first (by name within a date), each title
  linked to its file."""
  rows = [
    "| date | machine | record | command | headline |",
    "| --- | --- | --- | --- | --- |",
  ]
  by_name = sorted(records, key=lambda r: r["name"])
  for r in sorted(by_name, key=lambda r: r["date"], reverse=True):  # stable: names stay sorted
    link = f"[{_cell(r['title'])}]({link_dir}/{r['name']})"
    cells = [r["date"], _cell(r["machine"]), link, f"`{_cell(r['command'])}`", _cell(r["headline"])]
    rows.append("| " + " | ".join(cells) + " |")
  return "\n".join(rows)


def with_table(readme: str, markdown_table: str, path: Path = README) -> str:
  """`readme` with the text between its two markers replaced by `markdown_table`."""
  if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
    raise RecordError(f"{path}: needs one {START} line followed by one {END} line")
  head, rest = readme.split(START)
  _, tail = rest.split(END)
  return f"{head}{START}\n{markdown_table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--history", type=Path, default=HISTORY, help="folder of the records")
  parser.add_argument("--readme", type=Path, default=README, help="README holding the table")
  mode = parser.add_mutually_exclusive_group()
  mode.add_argument("--check", action="store_true", help="exit 1 if the README is not current")
  mode.add_argument("--print", action="store_true", help="print the table, write nothing")
  args = parser.parse_args(argv)
  try:
    markdown_table = table(read_records(args.history))
    if args.print:
      print(markdown_table)
      return 0
    current = args.readme.read_text()
    wanted = with_table(current, markdown_table, args.readme)
  except RecordError as e:
    print(e, file=sys.stderr)
    return 2
  if args.check:
    if wanted != current:
      print(f"{args.readme}: out of date; run python3 -m benchmarks.results_table", file=sys.stderr)
      return 1
    return 0
  if wanted != current:
    args.readme.write_text(wanted)
  print(f"{args.readme}: {len(markdown_table.splitlines()) - 2} records")
  return 0


if __name__ == "__main__":
  sys.exit(main())
