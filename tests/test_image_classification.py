"""Image classification end to end: bundled digits, image folders, .npz, predict, export, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import check_run_folder, fresh_python, own_copy
from PIL import Image

TINY = ["--quiet", "--set", "train.epochs=1", "--set", "model.filters=[8]", "--set", "model.dense_units=16"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from click.testing import CliRunner

    from nnkit.cli import cli

    out = tmp_path_factory.mktemp("runs") / "digits"
    result = CliRunner().invoke(cli, ["run", "digits", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)  # the run folder is the last line
    return out


def test_run_folder_and_metrics(digits_run):
    metrics = check_run_folder(digits_run, "digits", "image_classification")
    assert set(metrics["baselines"]) == {"majority", "logistic", "svc"}
    assert 0.0 <= metrics["model"]["accuracy"] <= 1.0
    assert metrics["baselines"]["majority"]["accuracy"] == pytest.approx(0.1, abs=0.01)
    assert len(metrics["details"]["confusion_matrix"]) == 10
    for plot in ("confusion_matrix.png", "learning_curves.png"):
        assert (digits_run / "plots" / plot).is_file()
    report = (digits_run / "report.md").read_text()
    assert "| svc |" in report and "## Config" in report


def test_model_and_saved_model_reload_in_a_fresh_process_with_equal_outputs(digits_run):
    import keras
    import tensorflow as tf

    images = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 1)).astype("uint8")
    np.save(digits_run.parent / "images.npy", images)
    model = keras.saving.load_model(digits_run / "model.keras", safe_mode=True)
    expected = model.predict(images.astype("float32"), verbose=0)
    loaded = tf.saved_model.load(str(digits_run / "export" / "saved_model"))  # keep a reference while called
    served = loaded.classify(images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    out = fresh_python("""
        import sys, json, numpy as np, keras, tensorflow as tf
        run, images = sys.argv[1], np.load(sys.argv[2])
        m = keras.saving.load_model(run + "/model.keras", safe_mode=True)
        s = tf.saved_model.load(run + "/export/saved_model")
        out = s.signatures["serving_default"](images=tf.constant(images))
        print(json.dumps({"keras": m.predict(images.astype("float32"), verbose=0).tolist(),
                          "saved": out["probabilities"].numpy().tolist(),
                          "names": [n.decode() for n in out["class_name"].numpy()]}))
    """, digits_run, digits_run.parent / "images.npy")
    result = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(result["keras"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["saved"], expected, rtol=1e-5, atol=1e-6)
    assert result["names"] == [str(i) for i in expected.argmax(axis=1)]


def test_predict_files_folder_and_npz(cli_run, digits_run, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8)).astype("uint8")).save(folder / f"d{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3)).astype("uint8")).save(tmp_path / "big.png")  # resized
    np.savez(tmp_path / "x.npz", x=rng.integers(0, 256, (2, 8, 8)).astype("uint8"))
    out = tmp_path / "preds.csv"
    cli_run("predict", digits_run, folder, tmp_path / "big.png", tmp_path / "x.npz", "--out", out)
    rows = out.read_text().strip().splitlines()
    assert rows[0] == "input,class,probability" and len(rows) == 1 + 3 + 1 + 2
    assert all(row.split(",")[1] in [str(d) for d in range(10)] for row in rows[1:])
    as_json = tmp_path / "preds.json"
    cli_run("predict", digits_run, folder / "d0.png", "--out", as_json)
    assert json.loads(as_json.read_text())[0]["input"].endswith("d0.png")


def test_predict_refuses_options_of_other_tasks(cli_run, digits_run):
    result = cli_run("predict", digits_run, "x.png", "--horizon", "3", expect=2)
    assert "--horizon" in result.output + getattr(result, "stderr", "")


@pytest.mark.parametrize("fmt, name", [("keras", "model.keras"), ("tflite", "model.tflite")])
def test_export_formats_are_reloaded_and_checked(cli_run, digits_run, fmt, name, tmp_path):
    digits_run = own_copy(digits_run, tmp_path)
    result = cli_run("export", digits_run, "--format", fmt)
    assert (digits_run / "export" / name).exists()
    assert result.output.strip().endswith(name)
    assert not list((digits_run / "export").glob(".*"))  # no temporary leftovers


def test_onnx_export_or_a_clear_message(cli_run, digits_run, tmp_path):
    import importlib.util

    digits_run = own_copy(digits_run, tmp_path)
    result = cli_run("export", digits_run, "--format", "onnx", expect=None)
    if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
        assert result.exit_code == 0, result.output
        assert (digits_run / "export" / "model.onnx").is_file()
    else:
        assert result.exit_code == 2 and "pip install" in result.output + getattr(result, "stderr", "")


def test_evaluate_and_report_rewrite_from_the_run_folder(cli_run, digits_run, tmp_path):
    digits_run = own_copy(digits_run, tmp_path)
    before = json.loads((digits_run / "metrics.json").read_text())
    cli_run("evaluate", digits_run)
    after = json.loads((digits_run / "metrics.json").read_text())
    assert after["model"]["accuracy"] == pytest.approx(before["model"]["accuracy"])
    (digits_run / "report.md").unlink()
    cli_run("report", digits_run)
    assert (digits_run / "report.md").is_file()


# -- user data -----------------------------------------------------------------------------

def _image_folder(root, sizes=((10, 12),), classes=("cat", "dog"), per_class=12, mode="L"):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            base = np.full((h, w) if mode == "L" else (h, w, 3), 60 + 120 * c, dtype="uint8")
            noise = rng.integers(0, 40, base.shape).astype("uint8")
            Image.fromarray(base + noise, mode).save(root / name / f"{i}.png")
    return root


def test_image_folder_rgb_end_to_end(cli_run, tmp_path):
    data = _image_folder(tmp_path / "pets", mode="RGB")
    out = tmp_path / "run"
    cli_run("run", "digits", "--data", data, "--out", out, *TINY, "--set", "eval.baselines=[\"majority\"]")
    state = json.loads((out / "state.json").read_text())
    assert state == {"class_names": ["cat", "dog"], "height": 10, "width": 12, "channels": 3}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["accuracy"] >= 0.0 and "majority" in metrics["baselines"]


def test_npz_end_to_end_with_string_labels(cli_run, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((60, 6, 6)).astype("float32")
    y = np.array(["even", "odd"] * 30)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out = tmp_path / "run"
    cli_run("run", "digits", "--data", tmp_path / "data.npz", "--out", out, *TINY)
    assert json.loads((out / "state.json").read_text())["class_names"] == ["even", "odd"]


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "nothing", ["data not found"]),
    (lambda p: (p / "empty").mkdir() or p / "empty", ["no class subfolders"]),
    (lambda p: _image_folder(p / "mixed", sizes=((8, 8), (9, 9))), ["mixed sizes", "data.image_size"]),
    (lambda p: (_image_folder(p / "txt"), (p / "txt" / "cat" / "notes.txt").write_text("hi"))[0],
     ["notes.txt: not an image file"]),
    (lambda p: (_image_folder(p / "bad"), (p / "bad" / "dog" / "broken.png").write_bytes(b"not a png"))[0],
     ["broken.png: corrupt or unreadable image"]),
    (lambda p: (_image_folder(p / "one", classes=("only",)))[0] if False else _image_folder(p / "one", classes=("only",)),
     ["expected at least 2 class subfolders"]),
    (lambda p: (np.savez(p / "nolabels.npz", x=np.zeros((4, 8, 8))), p / "nolabels.npz")[1],
     ["missing array 'y'"]),
    (lambda p: (np.savez(p / "short.npz", x=np.zeros((4, 8, 8)), y=np.zeros(3)), p / "short.npz")[1],
     ["'y' has shape (3,)"]),
    (lambda p: (np.savez(p / "nan.npz", x=np.full((4, 8, 8), np.nan), y=np.zeros(4, int)), p / "nan.npz")[1],
     ["NaN or infinite"]),
    (lambda p: ((p / "x.csv").write_text("a,b\n1,2\n"), p / "x.csv")[1], ["expected a folder of class subfolders"]),
])
def test_bad_image_data_exits_2_naming_the_problem(cli_run, tmp_path, make, words):
    data = make(tmp_path)
    result = cli_run("run", "digits", "--data", data, "--out", tmp_path / "run", *TINY, expect=2)
    message = result.output + getattr(result, "stderr", "")
    for word in words:
        assert word in message
    assert "Traceback" not in message
    assert not (tmp_path / "run").exists()  # bad data fails before anything is written
