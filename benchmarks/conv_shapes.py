"""Conv formulations per layer shape: `python -m benchmarks.conv_shapes`.

For every distinct 3x3 convolution of an experiment's networks (input H x W x C_in -> C_out,
valid or same), times one training step's convolution work (forward, input and weight
gradients) of one model at the study's batch, inside a `lax.scan` as the scan driver runs it,
for each formulation (`patches`: nine shifted slices and a matmul; `lax`: XLA's convolution;
`hybrid`: `lax` forward, gradients as matmuls; `onednn`: oneDNN's convolutions through jax.ffi,
where they load). Writes `conv_shapes_<experiment>.json` and
`.md` and prints the table with the fastest per shape. Measured side by side in one process.
"""

from __future__ import annotations

import json
import statistics

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks.timing import timed, write_report
from swapjax import backend, memory, registry
from swapjax import config as C
from swapjax.cpu import onednn
from swapjax.layers import parse_layer
from swapjax.models import CONV_FUNCTIONS

KNOWN = (*CONV_FUNCTIONS, "onednn")

EXPERIMENT = flags.DEFINE_string("experiment", "cifar10_arch", "Whose networks.")
BATCH = flags.DEFINE_integer("batch", 32, "Images per step.")
STEPS = flags.DEFINE_integer("steps", 8, "Steps per timed scan.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed scans per case (median).")
OUT = flags.DEFINE_string("out", "benchmarks/results", "Folder for the results.")
IMPLS = flags.DEFINE_list("impls", None, "Formulations to time (default: every one that loads).")


def conv_shapes(experiment: str, input_shape=(32, 32, 3)):
  """{(H, W, C_in, C_out, padding): [groups]} of the experiment's 3x3 convolutions."""
  cfg = registry.get_config(experiment)
  cfg = cfg.replace(pool_size=cfg.pool_size or 1000, groups=())
  shapes = {}
  for variant in C.variant_configs(cfg):
    _, outputs = memory._shapes(variant, input_shape, 1)
    previous = (1, *input_shape)
    for text, shape in outputs:
      kind, args = parse_layer(text)
      if kind == "conv":
        padding = (args[1] if len(args) > 1 else "valid").upper()
        key = (previous[1], previous[2], previous[3], shape[-1], padding)
        shapes.setdefault(key, []).append(variant.variant or experiment)
      previous = shape
  return shapes


def time_case(shape, impl: str, batch: int, steps: int, repeats: int):
  h, w, c_in, c_out, padding = shape
  conv = backend.conv_function(impl)
  x = jax.random.normal(jax.random.key(0), (steps, batch, h, w, c_in))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, c_in, c_out)) * 0.05

  def step(kernel, x):
    loss = lambda k, x: jnp.sum(conv(x, k, padding) ** 2)
    dk, dx = jax.grad(loss, argnums=(0, 1))(kernel, x)
    return kernel - 1e-6 * dk, jnp.sum(dx)

  run = jax.jit(lambda k, x: jax.lax.scan(step, k, x))
  first, times = timed(lambda: jax.block_until_ready(run(kernel, x)), repeats)
  per_step = statistics.median(times) / steps
  h_out, w_out = (h, w) if padding == "SAME" else (h - 2, w - 2)
  flops = 3 * 2 * batch * h_out * w_out * 9 * c_in * c_out  # forward + two gradients
  return {"ms_per_step": 1e3 * per_step, "gflops": flops / per_step / 1e9, "first_s": first}


def main(argv):
  del argv
  impls = IMPLS.value or backend.conv_impls()
  unknown = sorted(set(impls) - set(KNOWN))
  if unknown:
    raise app.UsageError(f"--impls: unknown {', '.join(unknown)}; known: {', '.join(KNOWN)}")
  if "onednn" in impls and not onednn.available():
    raise app.UsageError(f"--impls=onednn: {onednn.unavailable_reason()}")
  shapes = conv_shapes(EXPERIMENT.value)
  rows = []
  for shape, groups in shapes.items():
    row = {"shape": list(shape), "groups": sorted(set(groups))}
    for impl in impls:
      row[impl] = time_case(shape, impl, BATCH.value, STEPS.value, REPEATS.value)
    row["fastest"] = min(impls, key=lambda i: row[i]["ms_per_step"])
    rows.append(row)
    print(json.dumps(row), flush=True)
  report = {
    "experiment": EXPERIMENT.value,
    "batch": BATCH.value,
    "backend": jax.default_backend(),
    "device": jax.devices()[0].device_kind,
    "jax": jax.__version__,
    "impls": impls,
    "rows": rows,
  }
  name = f"conv_shapes_{EXPERIMENT.value}"
  write_report(OUT.value, name, name, report, render)


def render(report) -> str:
  impls = report["impls"]
  lines = [
    f"# 3x3 convolutions of `{report['experiment']}`: one training step's conv work, batch "
    f"{report['batch']}, inside `lax.scan` ({report['device']}, {report['backend']}, jax "
    f"{report['jax']})",
    "",
    "| input HxWxC | out C | padding | "
    + " | ".join(f"{i} ms (GFLOP/s)" for i in impls)
    + " | fastest | groups |",
    "| --- | ---: | --- | " + " | ".join("---:" for _ in impls) + " | --- | --- |",
  ]
  for r in report["rows"]:
    h, w, c_in, c_out, padding = r["shape"]
    cells = [f"{r[i]['ms_per_step']:.2f} ({r[i]['gflops']:.0f})" for i in impls]
    lines.append(
      f"| {h}x{w}x{c_in} | {c_out} | {padding.lower()} | "
      + " | ".join(cells)
      + f" | {r['fastest']} | {', '.join(r['groups'])} |"
    )
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(main)
