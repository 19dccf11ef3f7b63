"""Forecasting task: data checks, no leakage, windows, transforms, serving, backtest, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnkit.datasets import prices as P
from nnkit.errors import DataError
from nnkit.tasks.forecasting import backtest, baselines, calendar, data
from nnkit.tasks.forecasting import task as ftask
from nnkit.tasks.forecasting import model as fmodel

BASE_DATA = {"path": "", "ticker": "", "date_column": "", "target": "", "features": [], "ticker_column": "",
             "fill": "none", "transform": "log_return", "calendar": False, "window": 10, "horizon": 2,
             "val_fraction": 0.15, "test_fraction": 0.15}


def data_cfg(**changes):
    return {**BASE_DATA, **changes}


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"))
    return path


def yahoo_frame(n=300, seed=0, start="2020-01-01", freq="B"):
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n, freq=freq)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.015, n)))
    return pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": close.round(4), "High": close.round(4),
                         "Low": close.round(4), "Close": (close * 1.01).round(4), "Adj Close": close.round(4),
                         "Volume": rng.integers(1_000_000, 2_000_000, n)})


def synthetic_series(n=2922, seed=0, noise=1.0, weekly=6.0, monthly=8.0):
    """Trend + two calendar seasonalities (weekend dip, month-start bump) + Gaussian noise, daily."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2015-01-01", periods=n, freq="D")
    t = np.arange(n)
    y = (100 + 0.02 * t + np.where(dates.day_of_week.to_numpy() >= 5, -weekly, 0.0)
         + np.where(dates.day.to_numpy() <= 3, monthly, 0.0) + rng.normal(0, noise, n))
    return pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": y.round(4)})


@pytest.fixture(scope="module")
def yahoo_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("prices") / "yahoo.csv"
    yahoo_frame().to_csv(path, index=False)
    return path


# -- reading and checking data ----------------------------------------------------------

def test_bundled_tickers_load_adjusted_close():
    series = P.load_bundled()
    assert series.ticker == "AAPL" and series.target_name == "adj_close" and len(series) == 3270
    assert series.freq == "B" and (np.diff(series.dates) > np.timedelta64(0)).all()
    assert P.load_bundled("msft").ticker == "MSFT"
    with pytest.raises(DataError, match="not bundled.*'MSFT'"):
        P.load_bundled("MSFX")


def test_yahoo_csv_works_without_settings(yahoo_csv):
    series = P.read_csv(yahoo_csv)
    assert series.target_name == "Adj Close" and len(series) == 300 and series.freq == "B"
    with_volume = P.read_csv(yahoo_csv, features=["Volume"])
    assert with_volume.features.shape == (300, 1)


def test_long_csv_with_tickers(tmp_path):
    a, b = yahoo_frame(50, 1), yahoo_frame(50, 2)
    a.insert(0, "Ticker", "AAA")
    b.insert(0, "Ticker", "BBB")
    path = tmp_path / "long.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    series = P.read_csv(path, ticker="bbb")
    assert series.ticker == "BBB" and np.allclose(series.target, b["Adj Close"])
    with pytest.raises(DataError, match=r"2 tickers .*data.ticker=AAA"):
        P.read_csv(path)
    with pytest.raises(DataError, match="no rows for ticker 'CCC'"):
        P.read_csv(path, ticker="CCC")


def test_descending_file_is_reversed(tmp_path):
    frame = yahoo_frame(20)
    path = tmp_path / "desc.csv"
    frame.iloc[::-1].to_csv(path, index=False)
    series = P.read_csv(path)
    assert np.allclose(series.target, frame["Adj Close"]) and "reversed" in series.notes[0]


BAD = {
    "date": ("Date,Close\n2020-01-01,1\n2020-01-02,2\nnot-a-date,3\n", {},
             r"line 4, column 'Date': cannot parse 'not-a-date' as a date"),
    "unsorted": ("Date,Close\n2020-01-01,1\n2020-01-03,2\n2020-01-02,3\n2020-01-04,4\n", {},
                 r"line 4, column 'Date': date 2020-01-02 comes after 2020-01-03"),
    "duplicate": ("Date,Close\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n", {},
                  r"line 4, column 'Date': duplicate date 2020-01-02 \(also on line 3\)"),
    "non_numeric": ("Date,Close\n2020-01-01,1\n2020-01-02,abc\n", {}, r"line 3, column 'Close': 'abc' is not a number"),
    "missing": ("Date,Close\n2020-01-01,1\n2020-01-02,null\n2020-01-03,3\n", {},
                r"line 3, column 'Close': missing value .*data.fill=\"ffill\""),
    "missing_first": ("Date,Close\n2020-01-01,\n2020-01-02,2\n", {"fill": "ffill"}, r"line 2.*first row"),
    "no_column": ("Date,Close\n2020-01-01,1\n", {"target": "Clsoe"}, r"data.target='Clsoe': no such column.*'Close'"),
    "no_target": ("Date,A,B\n2020-01-01,1,2\n", {}, r"which column to forecast"),
    "empty": ("", {}, r"empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_one_clear_error(tmp_path, case):
    text, kwargs, message = BAD[case]
    path = write_csv(tmp_path / f"{case}.csv", text)
    with pytest.raises(DataError, match=message) as info:
        P.read_csv(path, **kwargs)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_values_forward_filled_when_asked(tmp_path):
    path = write_csv(tmp_path / "gap.csv", "Date,Close\n2020-01-01,1\n2020-01-02,null\n2020-01-03,3\n")
    series = P.read_csv(path, fill="ffill")
    assert series.target.tolist() == [1.0, 1.0, 3.0]


def test_too_short_and_non_positive(tmp_path):
    task = ftask.ForecastingTask()
    short = tmp_path / "short.csv"
    yahoo_frame(40).to_csv(short, index=False)
    cfg = {"data": data_cfg(path=str(short), window=30), "eval": {"season": 0, "ridge_alpha": 1.0, "interval": 0.9}}
    with pytest.raises(DataError, match=r"40 rows, too short for window 30 \+ horizon 2.*needs at least \d+ rows"):
        task.load(cfg)
    frame = yahoo_frame(300)
    frame.loc[100, "Adj Close"] = 0.0
    zero = tmp_path / "zero.csv"
    frame.to_csv(zero, index=False)
    cfg["data"] = data_cfg(path=str(zero))
    with pytest.raises(DataError, match=r"line 102, column 'Adj Close': value 0 is not positive.*diff"):
        task.load(cfg)
    cfg["data"] = data_cfg(path=str(zero), transform="diff")
    assert task.load(cfg).state["transform"] == "diff"


# -- preparation: splits, no leakage, windows, transforms ---------------------------------------

def prepared_from(frame, tmp_path, **changes):
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    cfg = {"data": data_cfg(path=str(path), **changes), "eval": {"season": 0, "ridge_alpha": 1.0, "interval": 0.9}}
    return ftask.ForecastingTask().load(cfg), cfg


def test_scaler_uses_training_part_only(tmp_path):
    prepared, _ = prepared_from(yahoo_frame(400), tmp_path, features=["Volume"])
    n_train = prepared.extra["bounds"][0]
    prices = prepared.extra["prices"]
    returns = np.diff(np.log(prices[:n_train]))
    assert np.isclose(prepared.state["mean"][0], returns.mean()) and np.isclose(prepared.state["std"][0], returns.std())
    volume = np.diff(np.arcsinh(prepared.extra["features"][:n_train, 0]))
    assert np.isclose(prepared.state["mean"][1], volume.mean())
    # every training window's targets lie inside the training part
    origins = prepared.train["origins"]
    assert origins.max() + prepared.state["horizon"] <= n_train - 1


def test_test_period_change_does_not_alter_training_inputs(tmp_path):
    frame = yahoo_frame(400)
    (tmp_path / "a").mkdir()
    before, _ = prepared_from(frame, tmp_path / "a")
    changed = frame.copy()
    n_train = before.extra["bounds"][0]
    rest = changed.index >= n_train
    changed.loc[rest, "Adj Close"] = changed.loc[rest, "Adj Close"] * 3.0  # a crash-and-boom future
    (tmp_path / "b").mkdir()
    after, _ = prepared_from(changed, tmp_path / "b")
    origins = before.train["origins"]
    assert np.array_equal(origins, after.train["origins"])
    assert before.state["mean"] == after.state["mean"] and before.state["std"] == after.state["std"]
    assert np.array_equal(data.windows_at(before, origins), data.windows_at(after, origins))
    assert np.array_equal(data.targets_at(before, origins), data.targets_at(after, origins))


@pytest.mark.parametrize("transform", ["log_return", "diff", "none"])
def test_windows_shapes_and_tf_pipeline(tmp_path, transform):
    prepared, _ = prepared_from(yahoo_frame(300), tmp_path, transform=transform, features=["Volume"], horizon=3)
    state = prepared.state
    L = 10 - 1 if transform != "none" else 10
    assert state["input_length"] == L and state["channels"] == ["target", "feature:Volume"]
    origins = prepared.val["origins"]
    x, y = data.windows_at(prepared, origins), data.targets_at(prepared, origins)
    assert x.shape == (len(origins), L, 2) and y.shape == (len(origins), 3)
    batches = list(data.window_dataset(prepared, "val", batch_size=1000))
    assert len(batches) == 1
    assert np.allclose(batches[0][0].numpy(), x) and np.allclose(batches[0][1].numpy(), y)
    # parts: validation targets inside the validation rows, test after them
    n_train, n_val, n = prepared.extra["bounds"]
    assert origins.min() + 1 >= n_train and origins.max() + 3 <= n_train + n_val - 1
    assert prepared.test["origins"].min() + 1 >= n_train + n_val and prepared.test["origins"].max() + 3 == n - 1
    train = data.window_dataset(prepared, "train", 64, shuffle=True, seed=1)
    assert sum(int(b[0].shape[0]) for b in train) == len(prepared.train["origins"])


@pytest.mark.parametrize("transform", ["log_return", "diff", "none"])
def test_inverse_transform_round_trip(tmp_path, transform):
    prepared, _ = prepared_from(yahoo_frame(300), tmp_path, transform=transform, horizon=4)
    origins = prepared.test["origins"]
    prices = prepared.extra["prices"]
    recovered = data.invert(prices[origins], data.targets_at(prepared, origins), prepared.state)
    assert np.allclose(recovered, data.actual_at(prepared, origins), rtol=1e-5)


@pytest.mark.parametrize("freq", ["D", "B"])
def test_calendar_features_numpy_equals_graph(freq):
    import tensorflow as tf

    dates = pd.date_range("1999-12-20", periods=900, freq=freq).to_numpy()
    expected = calendar.calendar_features(dates, freq)
    strings = np.array([np.datetime_as_string(dates, unit="D")])
    got = calendar.tf_calendar_features(tf.constant(strings), freq).numpy()[0]
    assert np.allclose(got, expected, atol=1e-5)
    # each row carries the calendar of the next step: Friday -> Monday for business days
    friday = np.datetime64("2013-03-01")
    assert calendar.next_day(np.array([friday]), freq)[0] == (np.datetime64("2013-03-04") if freq == "B"
                                                        else np.datetime64("2013-03-02"))


# -- baselines and statistics ----------------------------------------------------------------------

def test_baselines_on_a_known_series(tmp_path):
    frame = yahoo_frame(300)
    prepared, _ = prepared_from(frame, tmp_path, horizon=2)
    origins = prepared.test["origins"]
    forecasts = baselines.baseline_forecasts(prepared, origins)
    prices = prepared.extra["prices"]
    assert np.allclose(forecasts["persistence"], prices[origins][:, None])
    assert np.allclose(forecasts["seasonal_naive"][:, 0], prices[origins - 4])  # 5 business days
    assert set(forecasts) == set(baselines.BASELINES) and all(v.shape == (len(origins), 2) for v in forecasts.values())


def test_diebold_mariano():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 1))
    better = base * 0.5
    stat, p = baselines.diebold_mariano(better, base, 1)
    assert stat < 0 and p < 1e-6
    stat, p = baselines.diebold_mariano(base + rng.normal(0, 1e-3, base.shape), base, 1)
    assert p > 0.05
    assert baselines.diebold_mariano(base[:, :1].repeat(3, 1), base[:, :1].repeat(3, 1) * 2, 3)[0] < 0


# -- builders --------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", fmodel.ARCHS)
def test_every_arch_builds(arch):
    from nnkit.config import defaults

    model_cfg = {**defaults(ftask.ForecastingTask.schema["model"]), "arch": arch}
    model = fmodel.build_forecaster(model_cfg, (9, 2), 3)
    assert model.output_shape == (None, 3)
    assert all(layer.name.startswith("forecaster") for layer in model.layers)


def test_conv1d_builder_is_causal_and_checks_arguments():
    from nnkit.builders import build_conv1d

    model = build_conv1d((16, 1), 2, filters=[8, 8], pooling="avg", name="tcn")
    assert model.name == "tcn" and model.output_shape == (None, 2)
    features = __import__("keras").Model(model.input, model.get_layer("tcn_block2_add").output)
    x = np.random.default_rng(0).normal(size=(1, 16, 1)).astype("float32")
    y = x.copy()
    y[0, 10:] += 5.0  # change the future
    assert np.allclose(features(x).numpy()[0, :10], features(y).numpy()[0, :10], atol=1e-6)
    with pytest.raises(ValueError, match="Received: pooling='max'"):
        build_conv1d((16, 1), 2, pooling="max")
    with pytest.raises(ValueError, match="Received: filters=\\[\\]"):
        build_conv1d((16, 1), 2, filters=[])


# -- serving: raw prices in, prices out --------------------------------------------------------------

@pytest.mark.parametrize("calendar,features", [(False, []), (True, ["Volume"])])
def test_serving_matches_numpy_pipeline(tmp_path, calendar, features):
    from nnkit.config import defaults

    prepared, cfg = prepared_from(yahoo_frame(300), tmp_path, calendar=calendar, features=features, horizon=3)
    state = prepared.state
    model = fmodel.build_forecaster(defaults(ftask.ForecastingTask.schema["model"]), (state["input_length"],
                               len(state["channels"])), 3)
    origins = prepared.test["origins"][:5]
    expected = fmodel.model_forecast(model, prepared, origins)
    state["interval"] = {"level": 0.9, "kind": "log_ratio", "lower": [-0.1] * 3, "upper": [0.1] * 3,
                         "method": "validation residual quantiles", "n": 10}
    module, examples = ftask.ForecastingTask().serving(model, state, cfg)
    rows = origins[:, None] + np.arange(-9, 1)
    inputs = {"prices": prepared.extra["prices"][rows].astype("float32")}
    if features:
        inputs["features"] = prepared.extra["features"][rows].astype("float32")
    if calendar:
        inputs["dates"] = np.datetime_as_string(prepared.extra["dates"][rows], unit="D")
    assert set(examples["forecast"]) == set(inputs)
    out = module.forecast(**inputs)
    assert np.allclose(out["forecast"].numpy(), expected, rtol=1e-4)
    assert np.allclose(out["upper"].numpy(), expected * np.exp(0.1), rtol=1e-4)


def test_fold_bounds():
    d = data_cfg(window=10, horizon=2)
    folds = backtest.fold_bounds(1000, 4, d)
    assert len(folds) == 4 and folds[-1][3] == 1000
    for (n_train, n_val, start, end), following in zip(folds, folds[1:] + [None]):
        assert n_train + n_val == start and start < end  # train/val strictly before the test block
        if following:
            assert following[2] == end  # consecutive, non-overlapping blocks
    assert folds[0][3] - folds[0][2] == 150
    with pytest.raises(DataError, match="too short for 50 folds"):
        backtest.fold_bounds(300, 50, d)


# -- end to end through the CLI -----------------------------------------------------------------------

def test_cli_run_predict_backtest_and_fresh_reload(tmp_path, yahoo_csv):
    from click.testing import CliRunner

    from nnkit.cli import cli

    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "stock", "--data", str(yahoo_csv), "--out", str(out), "--quiet",
                                 "--set", "train.epochs=1", "--set", "data.window=10", "--set", "data.horizon=2",
                                 "--set", "model.units=8"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "forecasting" and metrics["primary"] == "rmse" and not metrics["higher_is_better"]
    assert set(metrics["baselines"]) == set(baselines.BASELINES)
    assert {"rmse", "mae", "mape", "mase", "directional_accuracy", "dm_p_vs_persistence"} <= set(metrics["model"])
    assert metrics["verdict"] and (out / "model.keras").is_file()
    assert (out / "export" / "saved_model").is_dir() and (out / "plots" / "forecast_test.png").is_file()
    state = json.loads((out / "state.json").read_text())
    assert state["interval"]["level"] == 0.9

    # fresh process: raw prices in, prices out, equal to the in-memory model + numpy inversion
    frame = pd.read_csv(yahoo_csv)
    window = frame["Adj Close"].to_numpy()[-10:].astype("float32")[None]
    np.save(tmp_path / "window.npy", window)
    code = ("import numpy as np, tensorflow as tf, sys; m = tf.saved_model.load(sys.argv[1]); "
            "out = m.signatures['serving_default'](prices=tf.constant(np.load(sys.argv[2]))); "
            "np.save(sys.argv[3], out['forecast'].numpy())")
    subprocess.run([sys.executable, "-c", code, str(out / "export" / "saved_model"), str(tmp_path / "window.npy"),
                    str(tmp_path / "fresh.npy")], check=True, capture_output=True)
    from nnkit.train import load_model

    model = load_model(out / "model.keras")
    logs = np.log(window.astype(np.float64))
    x = ((np.diff(logs, axis=1) - state["mean"][0]) / state["std"][0])[..., None].astype("float32")
    expected = data.invert(window[:, -1], model.predict(x, verbose=0), state)
    assert np.allclose(np.load(tmp_path / "fresh.npy"), expected, rtol=1e-4)

    # predict: the next business dates, an interval; beyond the trained horizon it goes recursive
    result = runner.invoke(cli, ["predict", str(out), str(yahoo_csv), "--horizon", "3", "--out",
                                 str(tmp_path / "f.csv")])
    assert result.exit_code == 0, result.output
    forecast = pd.read_csv(tmp_path / "f.csv")
    following = pd.bdate_range(pd.Timestamp(frame["Date"].iloc[-1]) + pd.offsets.BDay(1), periods=3)
    assert forecast["date"].tolist() == list(following.strftime("%Y-%m-%d"))
    assert (forecast["lower_90"] < forecast["forecast"]).all() and (forecast["forecast"] < forecast["upper_90"]).all()
    assert np.isclose(forecast["forecast"][0], expected[0, 0], rtol=1e-4)
    bad = runner.invoke(cli, ["predict", str(out), str(yahoo_csv), "--temperature", "1.0"])
    assert bad.exit_code == 2

    # walk-forward backtest, refit per fold
    result = runner.invoke(cli, ["evaluate", str(out), "--backtest", "2"])
    assert result.exit_code == 0, result.output
    folds_doc = json.loads((out / "backtest.json").read_text())
    assert [f["fold"] for f in folds_doc["folds"]] == [1, 2] and (out / "plots" / "backtest.png").is_file()
    assert folds_doc["folds"][0]["test_end"] < folds_doc["folds"][1]["test_start"]
    assert "Walk-forward backtest" in (out / "report.md").read_text()
    result = runner.invoke(cli, ["evaluate", str(out)])  # a plain re-evaluation keeps the backtest table
    assert result.exit_code == 0, result.output
    assert "Walk-forward backtest" in (out / "report.md").read_text()


def test_cli_bad_data_exits_2_and_writes_nothing(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli

    path = write_csv(tmp_path / "bad.csv", "Date,Close\n2020-01-01,1\n2020-01-01,2\n")
    result = CliRunner().invoke(cli, ["run", "stock", "--data", str(path), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 2 and "duplicate date" in result.output
    assert not (tmp_path / "r").exists()


# -- real structure: the model must beat every baseline clearly ------------------------------------------

@pytest.mark.slow
def test_synthetic_structure_model_beats_best_baseline(tmp_path):
    """Trend + weekly and monthly seasonality + noise: RMSE <= 0.8 x the best baseline's."""
    import keras

    from nnkit import train as train_mod
    from nnkit.pipeline import resolve

    path = tmp_path / "synthetic.csv"
    synthetic_series(n=2922).to_csv(path, index=False)  # eight years, daily
    overrides = ["data.calendar=true", "data.transform=diff", "data.window=14", "model.units=64",
                 "model.dropout=0.0", "train.epochs=80", "train.patience=10", "train.learning_rate=0.003"]
    resolved = resolve("stock", str(path), None, overrides)
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    train_mod.apply_seed(cfg["train"])
    train_ds, val_ds = task.datasets(cfg, prepared, cfg["train"]["batch_size"])
    model = task.build_model(cfg, prepared)
    model.compile(optimizer=train_mod.make_optimizer(cfg["train"], int(train_ds.cardinality())),
                  **task.compile_kwargs(cfg, prepared))
    model.fit(train_ds, validation_data=val_ds, epochs=cfg["train"]["epochs"], verbose=0,
              callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)])
    evaluation = task.evaluate(model, prepared, cfg)
    best = min(v["rmse"] for v in evaluation.baselines.values())
    assert evaluation.model["rmse"] <= 0.8 * best, (evaluation.model, evaluation.baselines)
