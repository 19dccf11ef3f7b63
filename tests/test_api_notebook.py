"""docs/python.md, run as written: as a script (terminal progress) and as an executed Jupyter notebook.

Both are slow (four and one tiny trainings, each with its SavedModel export
checked in a fresh process), so they are outside the default test run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import check_run_folder

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python.md"


def doc_cells() -> list[str]:
    """The ```python blocks of docs/python.md, in order: the notebook's cells."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _env(tmp_path) -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
            "NNKIT_CACHE": str(tmp_path / "cache")}


def test_the_doc_has_the_four_runs_and_the_cli():
    text = "\n".join(doc_cells())
    for call in ('nnkit.run("stock", prices', 'nnkit.run("digits", (x, bunch.target)', 'nnkit.run("translate", pairs',
                 'nnkit.run("products", sessions', '"evaluate", str(stock.path)', '"predict", str(translate.path)'):
        assert call in text


@pytest.mark.slow  # four tiny trainings and exports: ~2 min CPU (6 min wall on the shared 2 cores)
def test_the_doc_runs_as_a_script(tmp_path):
    script = tmp_path / "python_md.py"
    script.write_text("\n".join(doc_cells()), encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=1500, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "forty-two," in out  # nnkit predict on the translate run
    assert re.search(r"^c3-item7,1,c\d+-item\d+,", out, re.M)  # nnkit predict --similar on the products run
    assert re.search(r"^True \['nnkit', 'run', 'stock', '--data', '.*/data/prices.csv'", out, re.M)
    assert "DataFrame (as prices.csv), line " in out and "did you mean 'train.epochs'?" in out
    folders = {p.parent.parent.name: p.parent for p in (tmp_path / "runs").glob("*/*/meta.json")}
    tasks = {"stock": "forecasting", "digits": "image_classification", "translate": "translation",
             "products": "embedding"}
    assert set(folders) == set(tasks)
    for recipe, task in tasks.items():
        check_run_folder(folders[recipe], recipe, task)
        assert any((folders[recipe] / "data").iterdir())


@pytest.mark.slow  # a Jupyter kernel and one tiny stock run: ~1 min
def test_an_executed_notebook_shows_the_run(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = doc_cells()[:3]  # imports, the stock run, its forecast
    assert 'nnkit.run("stock"' in cells[1] and "stock.predict" in cells[2]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in cells] + [nbformat.v4.new_code_cell("stock")]
    for key, value in _env(tmp_path).items():  # the kernel inherits this process's environment
        monkeypatch.setenv(key, value)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error in any cell
    (tmp_path / "executed.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert "forecast" in notebook.cells[2]["outputs"][0]["data"]["text/html"]  # the forecast DataFrame
    run_cell = notebook.cells[-1]["outputs"]
    page = run_cell[0]["data"]["text/html"]
    assert "Verdict." in page and "<table>" in page and "data:image/png;base64," in page
    assert "text/markdown" in run_cell[0]["data"]
    # progress: one display per stage, HTML bars; no Keras line per epoch or batch
    train_cell = notebook.cells[1]["outputs"]
    bars = [o for o in train_cell if o["output_type"] == "display_data"]
    assert [re.search(r"<b>(\w+)</b>", o["data"]["text/html"]).group(1) for o in bars] == \
        ["train", "evaluate", "report", "export"]
    streams = "".join(o.get("text", "") for o in train_cell if o["output_type"] == "stream")
    assert "Epoch 1/" not in streams and "step" not in streams
