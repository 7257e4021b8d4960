"""Reading the report's markdown tables back in tests, and checking a printed `mean ± spread`
against numpy (shared by the report tests)."""

import numpy as np

SPREAD_DDOF = 0  # the report's spread: numpy's std over seeds, ddof 0


def cells(line: str) -> list[str]:
  return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table(lines, first_header: str) -> list[dict[str, str]]:
  """Rows (header -> cell) of the markdown table whose header starts with `first_header`;
  `lines`: the report's lines or its text."""
  lines = lines.splitlines() if isinstance(lines, str) else lines
  start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
  header = cells(lines[start])
  rows = []
  for line in lines[start + 2 :]:
    if not line.startswith("|"):
      break
    row = cells(line)
    assert len(row) == len(header), line
    rows.append(dict(zip(header, row, strict=True)))
  return rows


def close(printed: str, expected: float, decimals: int) -> bool:
  """The printed number equals `expected` to the `decimals` the report prints."""
  return abs(float(printed) - expected) <= 0.5 * 10**-decimals + 1e-9


def decimals(number: str) -> int:
  return len(number.split(".")[1]) if "." in number else 0


def significant(number: str) -> int:
  return len(number.replace(".", "").lstrip("0"))


def assert_stat(cell: str, values, integral: bool = False) -> None:
  """`cell` is 'mean ± spread' of `values`, computed here with numpy, printed to the precision
  the spread supports: the spread at 2 significant digits and the mean at its decimal place
  (without spread: the mean at 4 significant digits, or whole for counts), each number within
  half a unit of its last printed digit of numpy's."""
  values = np.asarray(values, float)
  mean, spread = np.mean(values), np.std(values, ddof=SPREAD_DDOF)
  printed_mean, printed_spread = (part.strip() for part in cell.split("±"))
  if printed_spread == "0":
    assert spread < 1e-12, (cell, mean, spread)
    assert "." not in printed_mean if integral else significant(printed_mean) == 4, cell
  else:
    assert significant(printed_spread) == 2, cell
    assert decimals(printed_mean) == decimals(printed_spread), cell
  places = decimals(printed_mean)
  assert close(printed_mean, mean, places), (cell, mean, spread)
  assert close(printed_spread, spread, places), (cell, mean, spread)
