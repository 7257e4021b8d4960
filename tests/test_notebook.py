"""examples/quickstart.ipynb runs end to end in a fresh kernel (so the example cannot rot)."""

import json
import os
import shutil
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
  shutil.copy(NOTEBOOK, tmp_path)
  # The kernel inherits this environment: CPU, the tests' compilation cache, this checkout.
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv(
    "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
  )
  notebook = nbformat.read(tmp_path / NOTEBOOK.name, as_version=4)
  client = nbclient.NotebookClient(
    notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
  )
  kernel = client.setup_kernel()
  try:
    kernel.__enter__()
  except (kernelspec.NoSuchKernel, RuntimeError, TimeoutError) as e:
    pytest.skip(f"no Jupyter kernel could start here ({type(e).__name__}: {e})")
  try:
    for index, cell in enumerate(notebook.cells):
      client.execute_cell(cell, index)  # raises CellExecutionError with the cell's traceback
  finally:
    kernel.__exit__(None, None, None)

  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  kinds = [set(o.get("data", {})) for o in outputs if o.output_type != "stream"]
  assert not [o for o in outputs if o.output_type == "error"]
  assert any("text/html" in k for k in kinds)  # metrics.tail() as a table
  assert any("text/markdown" in k for k in kinds)  # the report
  assert sum("image/png" in k for k in kinds) == 3  # plots/*.png, inline
  rows = (tmp_path / "runs" / "quickstart" / "metrics.jsonl").read_text().splitlines()
  assert len(rows) == 4 and {json.loads(r)["round"] for r in rows} == {1, 2}
