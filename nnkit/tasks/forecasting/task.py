"""Time-series forecasting: a window of past prices in, the next ``horizon`` prices out.

Honest by construction:

* the split is chronological (train | validation | test) and every window is
  assigned to the part its *targets* fall in; windows whose targets straddle
  a boundary are dropped;
* scalers are fit on the training part alone;
* the model works on log-returns by default (``data.transform``) and every
  number it reports is back in price units;
* the baselines (persistence, drift, seasonal naive, ridge on the same lagged
  window) are scored on exactly the test windows the model is scored on, and
  a Diebold-Mariano test says whether the model differs from persistence.

The exported SavedModel takes a window of raw prices (plus raw features and
ISO dates when the run uses them) and returns the next ``horizon`` prices with
an interval from the validation residual quantiles; the transform, the
scaling and the inversion all live in the graph.

Index conventions (``p`` = prices, ``n`` rows): a window's *origin* ``T`` is
its last observed row; it sees ``p[T-W+1 .. T]`` (``W = data.window``) and
predicts ``p[T+1 .. T+H]``. With a returns transform the model input is the
``W-1`` returns inside the window.
"""

from __future__ import annotations

from dataclasses import replace

from nnkit.builders.mlp import MLP_OPTIONS
from nnkit.builders.rnn import RNN_OPTIONS
from nnkit.builders.temporal import CONV1D_OPTIONS
from nnkit.config import Field, declared
from nnkit.tasks.base import Evaluation, Option, Prepared, Task
from nnkit.tasks.forecasting.baselines import score
from nnkit.tasks.forecasting.data import TRANSFORMS, check_length, prepare, season_of, window_dataset
from nnkit.tasks.forecasting.model import ARCHS, build_forecaster, interval_from_residuals, model_forecast


class ForecastingTask(Task):
    name = "forecasting"
    schema = {
        "data": {
            "ticker": Field("", "bundled: AAPL, GOOG, IBM, MSFT or FB (empty = AAPL); CSV: value of the "
                                "ticker column to use"),
            "date_column": Field("", "CSV date column (empty = a column named Date/date/timestamp, "
                                     "else the first)"),
            "target": Field("", "column to forecast (empty = Adj Close, else Close, else the only numeric "
                                "column; bundled: adj_close)"),
            "features": Field([], "extra input columns (e.g. [\"Volume\"]); model inputs only", item_type=str),
            "ticker_column": Field("", "CSV column naming the ticker in a long file (empty = ticker/symbol)"),
            "fill": Field("none", "missing values: fail, or carry the last value forward",
                          choices=("none", "ffill")),
            "date_format": Field("", "strftime format of the date column, e.g. '%d/%m/%Y' (empty: ISO and written-out "
                                     "dates, or numeric dates whose day/month order the file proves)"),
            "transform": Field("log_return", "what the model predicts", choices=TRANSFORMS),
            "calendar": Field(False, "add sin/cos of day of week/month/year of each row's next date (daily data)"),
            "window": Field(30, "past values the model sees (prices in the serving input)", min=3),
            "horizon": Field(1, "future steps predicted at once (direct multi-step)", min=1),
            "val_fraction": Field(0.15, "validation share (chronological, before the test part)",
                                  min=0.05, max=0.5),
            "test_fraction": Field(0.15, "test share (the most recent rows)", min=0.05, max=0.5),
        },
        "model": {
            "arch": Field("rnn", "model family", choices=ARCHS),
            # the three builders' declared options; keys they share mean the same in each
            **declared(RNN_OPTIONS, ("cell",), help_prefix="rnn: ", cell="gru"),
            **declared(RNN_OPTIONS, ("units",), help_prefix="rnn: ", units=32),
            "depth": replace(RNN_OPTIONS["depth"], help="rnn: stacked recurrent layers; mlp: hidden layers"),
            **declared(RNN_OPTIONS, ("bidirectional",), help_prefix="rnn: "),
            **declared(RNN_OPTIONS, ("norm", "dropout"), norm={"help": "normalisation after each layer"},
                       dropout={"default": 0.2, "help": "dropout after each layer"}),
            **declared(RNN_OPTIONS, ("recurrent_dropout",), help_prefix="rnn: "),
            **declared(CONV1D_OPTIONS, ("filters", "kernel_size"), help_prefix="conv1d: ", filters=[32, 32, 32, 32]),
            **declared(MLP_OPTIONS, ("width",), help_prefix="mlp: "),
            **declared(MLP_OPTIONS, ("activation",), help_prefix="conv1d/mlp: "),
            **declared(RNN_OPTIONS, ("dense_units",), help_prefix="rnn/conv1d: "),
            "loss": Field("mse", "training loss on the scaled transformed target", choices=("mse", "huber", "mae")),
        },
        "eval": {
            "season": Field(0, "seasonal-naive period in rows (0 = by frequency: 5 business days, 7 days, "
                                      "a day of intraday rows, 52 weeks, 12 months)",
                            min=0),
            "ridge_alpha": Field(1.0, "ridge baseline L2 strength (on the scaled window)", min=0.0),
            "interval": Field(0.9, "prediction interval coverage (validation residual quantiles)",
                              min=0.5, max=0.99),
        },
    }
    train_defaults = {"epochs": 40, "batch_size": 64, "patience": 6}
    predict_options = (Option("horizon", int, "Forecast steps (forecasting).", min=1),)
    evaluate_options = (Option("backtest", int, "Walk-forward evaluation over K folds (forecasting).", min=2),)

    # -- data ----------------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        from nnkit.datasets.prices import load_series
        from nnkit.runs import fingerprint

        series = load_series(cfg["data"])
        n = len(series)
        d = cfg["data"]
        n_test = int(round(n * d["test_fraction"]))
        n_val = int(round(n * d["val_fraction"]))
        check_length(series, d, n - n_val - n_test, n_val, n_test)
        prepared = prepare(series, d, n_train=n - n_val - n_test, n_val=n_val, end=n)
        prepared.state["season"] = season_of(cfg, series.freq)
        prepared.state["ridge_alpha"] = cfg["eval"]["ridge_alpha"]
        prepared.fingerprint = fingerprint(series.dates, series.target, series.features)
        return prepared

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        seed = cfg["train"]["seed"]
        train = window_dataset(prepared, "train", batch_size, shuffle=True, seed=seed)
        val = window_dataset(prepared, "val", batch_size) if len(prepared.val["origins"]) else None
        return train, val

    # -- model ---------------------------------------------------------------------------
    def build_model(self, cfg: dict, prepared: Prepared):
        state = prepared.state
        return build_forecaster(cfg["model"], (state["input_length"], len(state["channels"])), state["horizon"])

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        import keras

        loss = {"mse": "mse", "mae": "mae", "huber": keras.losses.Huber(delta=1.0)}[cfg["model"]["loss"]]
        return {"loss": loss, "metrics": ["mae"]}

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        state = prepared.state
        val_origins = prepared.val["origins"]
        if len(val_origins):
            val_pred = model_forecast(model, prepared, val_origins)
            state["interval"] = interval_from_residuals(prepared, val_origins, val_pred, cfg["eval"]["interval"])
        return score(model, prepared, cfg)

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        from nnkit.runs import read_json, write_json
        from nnkit.tasks.forecasting.backtest import attach_backtest
        from nnkit.tasks.forecasting.plots import plot_evaluation

        # the validation interval is known only after training: keep it with the rest of the state
        write_json(run.state_file, prepared.state)
        if (run.path / "backtest.json").is_file():  # a re-evaluation keeps the backtest in the report
            attach_backtest(run, read_json(run.path / "backtest.json"))
        return plot_evaluation(evaluation, run.plot_dir)

    # -- serving -------------------------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.forecasting.serving import ForecastServing, serving_example

        module = ForecastServing(model, state)
        return module, {"forecast": serving_example(state)}

    def predict(self, ctx, inputs: list, options: dict) -> None:
        from nnkit.tasks.forecasting.predict import predict_csv

        predict_csv(ctx, inputs, options)

    # -- walk-forward backtest -------------------------------------------------------------
    def backtest(self, ctx, k: int) -> dict:
        from nnkit.tasks.forecasting.backtest import run_backtest

        return run_backtest(self, ctx, k)
