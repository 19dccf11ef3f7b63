"""The perceptron recipe and the binary-classification task on bundled and user tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import check_run_folder

TINY = ["--quiet", "--set", "train.epochs=2"]


def test_perceptron_end_to_end_and_predict(cli_run, tmp_path):
    out = tmp_path / "run"
    cli_run("run", "perceptron", "--out", out, *TINY)
    metrics = check_run_folder(out, "perceptron", "binary_classification")
    assert set(metrics["baselines"]) == {"majority", "logistic"}
    assert "logistic regression" in metrics["verdict"]
    state = json.loads((out / "state.json").read_text())
    table = tmp_path / "rows.csv"
    # raw (unscaled) feature values: standardisation happens inside the SavedModel
    rows = np.array(state["mean"])[None, :] + np.array(state["std"])[None, :] * np.array([[-2.0], [2.0]])
    table.write_text(",".join(state["features"]) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    result = cli_run("predict", out, table)
    lines = result.output.strip().splitlines()
    assert lines[0] == "row,class,probability" and len(lines) == 3
    assert {line.split(",")[1] for line in lines[1:]} <= set(state["class_names"])
    assert {float(line.split(",")[2]) for line in lines[1:]} <= {0.0, 1.0}  # a step neuron says 0 or 1


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _table(path, rows=40, label="label", bad=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    lines = ["a,b,c," + label] + [f"{r[0]:.3f},{r[1]:.3f},{r[2]:.3f},{t}" for r, t in zip(x, y)]
    if bad:
        lines[bad[0]] = bad[1]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_user_csv_with_label_column(cli_run, tmp_path):
    out = tmp_path / "run"
    cli_run("run", "perceptron", "--data", _table(tmp_path / "t.csv"), "--out", out, *TINY,
            "--set", "model.arch=mlp", "--set", "model.activation=rrelu")
    assert json.loads((out / "state.json").read_text())["class_names"] == ["no", "yes"]


@pytest.mark.parametrize("make, words", [
    (lambda p: _table(p / "t.csv", label="target"), ["no label column 'label'", "data.label_column"]),
    (lambda p: _table(p / "t.csv", bad=(5, "1.0,abc,2.0,yes")), ["t.csv, line 6, column 'b'", "'abc'"]),
    (lambda p: _table(p / "t.csv", bad=(3, "1.0,,2.0,yes")), ["line 4, column 'b'", "not a finite number"]),
    (lambda p: _write(p / "e.csv", b""), ["empty CSV file"]),
    (lambda p: _write(p / "h.csv", b"a,b,label\n"), ["header only"]),
    (lambda p: _write(p / "l.csv", b"a,label\n1,\xff\n"), ["line 2", "not valid UTF-8"]),
    (lambda p: _write(p / "m.csv", b"a,label\n" + b"1,x\n2,y\n3,z\n" * 5), ["has 3 classes"]),
])
def test_bad_tables(cli_run, tmp_path, make, words):
    result = cli_run("run", "perceptron", "--data", make(tmp_path), "--out", tmp_path / "run", *TINY, expect=2)
    message = result.output + getattr(result, "stderr", "")
    for word in words:
        assert word in message
    assert not (tmp_path / "run").exists()


# slow (17 s idle): the default run keeps image classification end to end in test_image_classification
@pytest.mark.slow
def test_mnist_tiny_end_to_end(cli_run, tmp_path):
    out = tmp_path / "run"
    cli_run("run", "mnist", "--out", out, "--quiet", "--set", "train.epochs=1", "--set", "model.filters=[4]",
            "--set", "model.dense_units=8", "--set", 'eval.baselines=["majority"]')
    metrics = check_run_folder(out, "mnist", "image_classification")
    assert metrics["details"]["class_names"] == [str(d) for d in range(10)]
    state = json.loads((out / "state.json").read_text())
    assert (state["height"], state["width"], state["channels"]) == (28, 28, 1)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data"]["test"] == 1000 and meta["data"]["smallest class"] >= 400  # shuffled, stratified


def test_wheel_ships_every_recipe(tmp_path):
    """A plain (non-editable) build carries recipes/ inside the package."""
    import subprocess
    import sys
    import zipfile

    from helpers import ROOT

    pytest.importorskip("hatchling")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("nnkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("/")[-1] for n in names if n.startswith("nnkit/recipes/")}
    assert shipped == {p.name for p in (ROOT / "recipes").glob("*.toml")}
