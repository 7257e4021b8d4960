"""XLA:CPU flags side by side: a `benchmarks.run` preset in one fresh process per variant of
XLA_FLAGS (flags are read once per process), the variants alternating over the trials.

    python3 -m benchmarks.xla_flags --preset=memorize_mnist --strategies=onednn/scan,patches/scan

By default the variants are swapjax's own CPU flags (`swapjax.mesh.CPU_XLA_FLAGS`, which the
engine sets unless XLA_FLAGS names them) against their opposite; `--variants` names others
(repeatable, each a whole XLA_FLAGS value). Each row is a strategy's median s/round in one
process (and, for a groups preset, the study's steady seconds); the report gives, per variant,
the median over the trials. Output: `benchmarks/results/xla_flags_PRESET.json` and `.md`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from benchmarks.run import OUT, PRESET, REPEATS, SCALING, STRATEGIES
from benchmarks.timing import write_report
from swapjax.cpu.process import CPU_XLA_FLAGS

# --preset, --strategies, --scaling, --repeats and --out are benchmarks.run's own, passed on.
TRIALS = flags.DEFINE_integer("trials", 2, "Processes per variant, alternating.")
VARIANTS = flags.DEFINE_multi_string("variants", None, "XLA_FLAGS values to compare.")


def opposite(flag: str) -> str:
  """`--name=false` for `--name=true` and back."""
  name, value = flag.split("=", 1)
  return f"{name}={'true' if value == 'false' else 'false'}"


def default_variants() -> list[str]:
  return [" ".join(opposite(f) for f in CPU_XLA_FLAGS), " ".join(CPU_XLA_FLAGS)]


def one_process(xla_flags: str, folder: str) -> dict[str, float]:
  """One `benchmarks.run` with XLA_FLAGS = `xla_flags`: {strategy or group: s/round}."""
  args = [sys.executable, "-m", "benchmarks.run", f"--preset={PRESET.value}", f"--out={folder}"]
  args += [f"--strategies={','.join(STRATEGIES.value)}"] if STRATEGIES.value else []
  args += [f"--scaling={','.join(SCALING.value)}"] if SCALING.value else []
  args += [f"--repeats={REPEATS.value}"] if REPEATS.value else []
  args += ["--full_study=false"]
  env = {**os.environ, "XLA_FLAGS": xla_flags}
  done = subprocess.run(args, env=env, capture_output=True, text=True)
  if done.returncode:
    raise SystemExit(f"benchmarks.run failed ({done.returncode}): {done.stderr[-2000:]}")
  report = json.loads((Path(folder) / f"timing_{PRESET.value}.json").read_text())
  out = {r["strategy"]: r["round_s_median"] for r in report["strategies"]}
  out.update({f"group {r['group']}": r["round_s_median"] for r in report.get("groups", [])})
  if "groups_study" in report:
    out["groups: study steady s"] = report["groups_study"]["steady_s"]
  return out


def render(result) -> str:
  variants = result["variants"]
  lines = [
    f"# XLA:CPU flags side by side: `{result['preset']}`",
    "",
    f"{result['trials']} process(es) per variant, alternating; each cell the median over them "
    "of a strategy's median s/round (groups: s/epoch; the study's steady s).",
    "",
    "| case | " + " | ".join(f"`{v or '(none)'}`" for v in variants) + " | ratio |",
    "| --- | " + " | ".join("---:" for _ in variants) + " | ---: |",
  ]
  for case, values in result["cases"].items():
    medians = [statistics.median(values[v]) for v in variants]
    lines.append(
      f"| {case} | "
      + " | ".join(f"{m:.3f}" for m in medians)
      + f" | {medians[0] / medians[-1]:.2f}x |"
    )
  lines += ["", "ratio: the first variant's time / the last's (above 1: the last is faster)."]
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  variants = VARIANTS.value or default_variants()
  cases: dict[str, dict[str, list[float]]] = {}
  with tempfile.TemporaryDirectory() as folder:
    for trial in range(TRIALS.value):
      for v in variants:
        for case, seconds in one_process(v, folder).items():
          cases.setdefault(case, {u: [] for u in variants})[v].append(seconds)
        print(f"trial {trial + 1}, XLA_FLAGS={v!r}: done", flush=True)
  result = {"preset": PRESET.value, "trials": TRIALS.value, "variants": variants, "cases": cases}
  name = f"xla_flags_{PRESET.value}"
  write_report(OUT.value, name, name, result, render)


if __name__ == "__main__":
  app.run(main)
