"""Golden metrics: the tiny swap and memorize studies reproduce `tests/golden/*.jsonl` exactly.

Every field of every golden row must come back equal (new fields may be added; `time/round_s`
is ignored because it is wall time). Updating the files (`python tests/golden_studies.py`) is
legitimate only in a commit that says why the arithmetic changed; see golden_studies.py.
"""

import json

import pytest
from golden_studies import GOLDEN, configs, run


@pytest.mark.parametrize("name", sorted(configs()))
def test_golden_metrics_reproduce_exactly(tmp_path, name):
  golden = [json.loads(x) for x in (GOLDEN / f"{name}.jsonl").read_text().splitlines()]
  rows = run(name, tmp_path / name)
  assert len(rows) == len(golden)
  for got, want in zip(rows, golden, strict=True):
    missing = set(want) - set(got)
    assert not missing, f"fields gone: {sorted(missing)}"
    changed = {k: (got[k], v) for k, v in want.items() if got[k] != v}
    assert not changed, f"row {want.get('run')}/{want.get('round', want.get('epoch'))}: {changed}"
