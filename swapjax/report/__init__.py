"""`report.md` and `plots/*.png`: a pure function of config.json, metrics.jsonl (and timing.json).

Rebuild one study's report without retraining, or compare several studies side by side:

    python -m swapjax.report WORKDIR [--reference=experiment]
    python -m swapjax.report WORKDIR_A WORKDIR_B [...] [--out=DIR]

Each module imports only those listed before it: the shared helpers `stats`, `grouping`,
`plotting`, `files`, `timing` and `references`; one study kind's sections each in `swap`,
`memorization` and `curves`; `build` (one workdir's report.md), `comparison` (several studies
side by side) and `cli` (the command).
"""

from swapjax.report.build import write
from swapjax.report.cli import main
from swapjax.report.comparison import compare
from swapjax.report.stats import format_stat
from swapjax.report.timing import format_bytes

__all__ = ["compare", "format_bytes", "format_stat", "main", "write"]
