"""The two tiny studies whose `metrics.jsonl` are kept as golden files in `tests/golden/`.

`python tests/golden_studies.py` rewrites the files. That is legitimate only in a commit that
says why the numbers had to change (a deliberate change of arithmetic, such as a new conv
formulation or float order, with the accuracy change measured over seeds); a refactor of the
engine must reproduce them exactly.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
IGNORED = ("time/round_s",)  # wall time: differs on every run


def configs():
  """{name: (experiment, config)} of the golden studies."""
  from swapjax import registry

  # The pure-JAX formulation, pinned: `auto` picks oneDNN where it is installed, whose float
  # order differs (tests/test_onednn.py compares the two).
  swap = registry.get_config("tiny").replace(rounds=3, num_seeds=2, conv_impl="patches")
  memorize = registry.get_config("memorize_mnist").replace(
    source="synthetic",
    pool_size=64,
    holdout_size=32,
    batch_size=8,
    rounds=3,
    num_seeds=2,
    label_corruption=(0.0, 1.0),
    learning_rate=(0.001,),
    test_every=2,
    early_stop=False,
    eval_batch_size=32,
    conv_impl="patches",
  )
  return {"swap_tiny": ("tiny", swap), "memorize_tiny": ("memorize_mnist", memorize)}


def rows_of(workdir: Path) -> list[dict]:
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in r.items() if k not in IGNORED} for r in rows]


def run(name: str, workdir: Path) -> list[dict]:
  from swapjax import runner

  experiment, config = configs()[name]
  runner.run(config, experiment, runner.RunOptions(workdir=str(workdir), progress=False))
  return rows_of(workdir)


def main() -> None:
  GOLDEN.mkdir(exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    for name in configs():
      rows = run(name, Path(tmp) / name)
      text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
      (GOLDEN / f"{name}.jsonl").write_text(text)
      print(f"wrote {GOLDEN / name}.jsonl ({len(rows)} rows)", file=sys.stderr)


if __name__ == "__main__":
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
  main()
