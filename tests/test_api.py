"""The Python API (nnkit.run & co.): the CLI's validation, errors, data readers and run folder.

One tiny real run (stock on a DataFrame, in the notebook progress mode) is
checked against the CLI on the same folder; everything else reads data or
configs only. The docs' notebook and an executed Jupyter notebook are in
tests/test_api_notebook.py (slow).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import check_run_folder, fresh_python

import nnkit
from nnkit import api_data

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def cli_error(cli_run, *args) -> str:
    """The one line the CLI prints after 'error: ' (exit code 2)."""
    result = cli_run(*args, expect=2)
    text = getattr(result, "stderr", "") or result.output
    lines = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, text
    return lines[0].removeprefix("error: ")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Staging folders go here, so a test can see that none is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def prices_frame(n=300, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, n)))
    return pd.DataFrame({"Close": close}, index=pd.bdate_range("2020-01-01", periods=n))


# -- light: import, names, show ------------------------------------------------------------------

def test_import_nnkit_and_the_api_without_tensorflow():
    out = fresh_python("""
        import sys
        import nnkit
        from nnkit.registry import bundled_names
        names = [r["name"] for r in nnkit.list_recipes()]
        cfg = nnkit.show("digits", {"train.epochs": 3})
        print(names == list(bundled_names()), cfg["train"]["epochs"], callable(nnkit.run), nnkit.Run.__name__,
              "tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    assert out.split() == ["True", "3", "True", "Run", "False", "False"]


def test_public_names_never_shadow_a_submodule():
    package = Path(nnkit.__file__).parent
    submodules = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if p.is_dir()}
    assert not set(nnkit._API) & submodules
    assert {"run", "load_run", "list_recipes", "show", "Run"} <= set(dir(nnkit))
    with pytest.raises(AttributeError):
        nnkit.no_such_name  # noqa: B018


def test_show_equals_the_cli_show(cli_run):
    cli = tomllib.loads(cli_run("show", "digits", "--set", "train.epochs=3", "--set", "model.filters=[8,16]",
                                "--set", "data.val_fraction=0.2").output)
    assert nnkit.show("digits", {"train.epochs": 3, "model": {"filters": [8, 16]},
                                 "data.val_fraction": 0.2}) == cli
    assert nnkit.show("digits", ["train.epochs=3", "model.filters=[8,16]", "data.val_fraction=0.2"]) == cli
    assert nnkit.list_recipes()[0] == {"name": "collision", "task": "sequence_classification",
                                       "description": nnkit.show("collision")["recipe"]["description"]}


# -- errors: the CLI's message, raised; nothing left behind -----------------------------------------

CONFIG_CASES = [
    ({"overrides": {"train.epochz": 3}}, ["--set", "train.epochz=3"]),
    ({"overrides": {"train.epochs": 0}}, ["--set", "train.epochs=0"]),
    ({"epochs": 0}, ["--epochs", "0"]),
    ({"overrides": {"train.optimizer": "adagrad"}}, ["--set", "train.optimizer=adagrad"]),
    ({"overrides": {"model": {"dropout": 2}}}, ["--set", "model.dropout=2"]),
    ({"overrides": {"train.epochs": "five"}}, ["--set", "train.epochs=five"]),
    ({"overrides": ["train.epochs"]}, ["--set", "train.epochs"]),
]


@pytest.mark.parametrize("kwargs, flags", CONFIG_CASES)
def test_config_errors_are_the_cli_messages(cli_run, tmp_path, private_tmp, kwargs, flags):
    expected = cli_error(cli_run, "run", "stock", "--out", tmp_path / "cli", *flags)
    with pytest.raises(nnkit.ConfigError) as caught:
        nnkit.run("stock", prices_frame(), out=tmp_path / "api", **kwargs)
    assert str(caught.value) == expected
    assert not (tmp_path / "api").exists() and not list(private_tmp.glob("nnkit-data-*"))


def _bad_prices(tmp):
    frame = prices_frame(60).astype(object)
    frame.iloc[5, 0] = "n/a?"
    return frame, "prices.csv", "DataFrame (as prices.csv)", lambda path: frame.rename_axis("Date").to_csv(path)


def _bad_pairs(tmp):
    pairs = [("one", "un"), ("two", "deux"), ("three", "  "), ("four", "quatre")]
    return pairs, "pairs.tsv", "pairs (as pairs.tsv)", \
        lambda path: path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


def _bad_images(tmp):
    x, y = np.zeros((12, 8, 8), np.uint8), np.arange(11) % 2
    return (x, y), "images.npz", "arrays (as images.npz)", lambda path: np.savez(path, x=x, y=y)


def _short_sessions(tmp):
    frame = pd.DataFrame({"session_id": [1, 1, 2, 3], "item_id": ["a", "b", "", "c"]})
    return frame, "sessions.csv", "sessions DataFrame (as sessions.csv)", lambda path: frame.to_csv(path, index=False)


@pytest.mark.parametrize("recipe, make", [("stock", _bad_prices), ("translate", _bad_pairs),
                                          ("digits", _bad_images), ("products", _short_sessions)],
                         ids=["prices", "pairs", "images", "sessions"])
def test_bad_in_memory_data_fails_with_the_cli_message(cli_run, tmp_path, private_tmp, recipe, make):
    data, name, label, write = make(tmp_path)
    user_file = tmp_path / name
    write(user_file)
    expected = cli_error(cli_run, "run", recipe, "--data", user_file, "--out", tmp_path / "cli")
    assert str(user_file) in expected
    with pytest.raises(nnkit.DataError) as caught:
        nnkit.run(recipe, data, out=tmp_path / "api", quiet=True)
    assert str(caught.value) == expected.replace(str(user_file), label)
    assert not (tmp_path / "api").exists() and not list(private_tmp.glob("nnkit-data-*"))


def test_data_of_the_wrong_kind_and_twice_given(tmp_path, private_tmp):
    with pytest.raises(nnkit.DataError, match=r"^data: expected a path, or a pandas DataFrame of prices"):
        nnkit.run("stock", [1.0, 2.0], out=tmp_path / "a")
    with pytest.raises(nnkit.DataError, match=r"^data: y holds Python objects"):
        nnkit.run("digits", (np.zeros((4, 8, 8)), np.array([1, "a", None, 2], dtype=object)), out=tmp_path / "a")
    with pytest.raises(nnkit.ConfigError, match=r"^data.path is set"):
        nnkit.run("stock", prices_frame(), overrides={"data.path": "x.csv"}, out=tmp_path / "a")
    with pytest.raises(nnkit.ConfigError, match=r"^stages: unknown stage 'fit'"):
        nnkit.run("stock", stages=["train", "fit"])
    assert not (tmp_path / "a").exists() and not list(private_tmp.glob("nnkit-data-*"))


def test_a_bad_path_is_the_cli_message(cli_run, tmp_path):
    expected = cli_error(cli_run, "run", "stock", "--data", tmp_path / "missing.csv", "--out", tmp_path / "cli")
    with pytest.raises(nnkit.DataError) as caught:
        nnkit.run("stock", tmp_path / "missing.csv", out=tmp_path / "api")
    assert str(caught.value) == expected


# -- in-memory data reads back as the same data ---------------------------------------------------------

def _stage(task, data, cfg=None):
    cfg = cfg or {"data": {"label_column": "label", "session_column": "session_id", "item_column": "item_id"}}
    return api_data.stage(task, data, cfg)


def test_prices_round_trip_exactly(private_tmp):
    from nnkit.datasets.prices import read_csv

    frame = prices_frame(50)
    staged = _stage("forecasting", frame)
    series = read_csv(staged.path("path"))
    assert np.array_equal(series.target, frame["Close"].to_numpy())  # floats written at full precision
    assert np.array_equal(series.dates, frame.index.to_numpy())
    staged.cleanup()
    assert not list(private_tmp.glob("nnkit-data-*"))


def test_pairs_with_tabs_and_newlines_read_as_the_reader_cleans_them(private_tmp):
    from nnkit.datasets.pairs import clean_text, read_pairs

    pairs = [("one\ttwo", "un\ndeux"), ("  three\u00a0 ", "trois\r\n"), ("é", "e\u0301")]
    staged = _stage("translation", pairs)
    read, _ = read_pairs(staged.path("path"))
    assert read == [(clean_text(s), clean_text(t)) for s, t in pairs]
    staged.cleanup()


def test_sessions_from_lists_and_images_from_arrays(private_tmp):
    from nnkit.datasets.images import load_npz
    from nnkit.datasets.sessions import read_sessions

    staged = _stage("embedding", [["a", "b", "c"], ["b", "c"], ["a"]])
    data = read_sessions(staged.path("path"))
    assert data.n_sessions == 2 and sorted(data.item_ids) == ["a", "b", "c"]  # the 1-item session is dropped
    staged.cleanup()
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8)).astype(np.uint8)
    staged = _stage("image_classification", (x, np.array(["cat", "dog"] * 3, dtype=object)))
    images = load_npz(staged.path("path"))
    assert np.array_equal(images.x[..., 0], x) and images.class_names == ["cat", "dog"]
    staged.cleanup()


# -- one real run: stock on a DataFrame, notebook progress, then the CLI on the same folder ---------------

class FakeDisplay:
    """Records what IPython.display.display would show, and each update of it."""

    def __init__(self):
        self.shown = []

    def __call__(self, view, display_id=False):
        self.shown.append([repr(view)])
        record = self.shown[-1]

        class Handle:
            def update(self, new):
                record.append(repr(new))

        return Handle()


def test_stock_dataframe_run_is_a_cli_run(cli_run, tmp_path, private_tmp, monkeypatch):
    from nnkit import api_progress, pipeline

    display, real = FakeDisplay(), api_progress.NotebookProgress
    monkeypatch.setattr(api_progress, "in_notebook", lambda: True)
    monkeypatch.setattr(api_progress, "NotebookProgress", lambda: real(display=display))
    prices = prices_frame(300)
    run = nnkit.run("stock", prices, out=tmp_path / "run", seed=1,
                    overrides={"train.epochs": 2, "model": {"units": 8}, "data.window": 10})

    # the same folder a CLI run makes, with the data kept in it
    metrics = check_run_folder(run.path, "stock", "forecasting")
    kept = run.path / "data" / "prices.csv"
    assert run.config["data"]["path"] == str(kept.resolve()) and run.config["train"]["verbose"] is False
    assert not list(private_tmp.glob("nnkit-data-*"))
    meta = run.meta
    assert meta["command"][:5] == ["nnkit", "run", "stock", "--data", str(kept.resolve())]
    user_csv = tmp_path / "prices.csv"
    prices.rename_axis("Date").to_csv(user_csv)
    resolved = pipeline.resolve("stock", str(user_csv), None, ["data.window=10"])
    assert meta["data_fingerprint"] == resolved.task.load(resolved.cfg).fingerprint  # as for the file
    assert "pandas.DataFrame 300 x 1" in meta["data"]["in-memory data"]

    # the Run's views of the folder
    assert run.metrics == metrics and run.metrics["primary"] in run.metrics["model"]
    assert list(run.history["epoch"]) == [0, 1] and {"loss", "val_loss"} <= set(run.history.columns)
    assert run.model.output_shape[-1] == 1
    assert run.report_path.is_file() and (run.path / "plots" / "learning_curves.png") in run.plots

    # notebook mode: no Keras log, one display per stage, the train bar updated per epoch
    assert [views[0].split()[0] for views in display.shown] == ["train", "evaluate", "report", "export"]
    assert "epoch 2/2" in display.shown[0][-2] and "done in" in display.shown[0][-1]
    assert all("done in" in views[-1] for views in display.shown)

    # predict = nnkit predict through the SavedModel; evaluate = nnkit evaluate on the kept data
    recent = tmp_path / "recent.csv"
    prices.tail(20).rename_axis("Date").to_csv(recent)
    cli_run("predict", run.path, recent, "--horizon", "2", "--out", tmp_path / "cli.json")
    api = run.predict(prices.tail(20), horizon=2)
    assert api.to_dict("records") == json.loads((tmp_path / "cli.json").read_text())
    assert list(api["step"]) == [1, 2]
    cli_run("evaluate", run.path)
    again = nnkit.load_run(run.path)
    assert again.metrics["model"] == pytest.approx(metrics["model"])
    with pytest.raises(nnkit.NnkitError, match="do not apply to task 'forecasting'"):
        run.predict(prices.tail(20), beam=2)

    # Jupyter: verdict, metric table, learning curves as an embedded PNG
    page = run._repr_html_()
    assert "Verdict." in page and "<table>" in page and "persistence" in page
    import base64
    import re

    png = base64.b64decode(re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page).group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| **model** |" in run._repr_markdown_()

