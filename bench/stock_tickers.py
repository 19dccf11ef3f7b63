"""Forecasting benchmark: the stock recipe on every bundled ticker, against persistence.

    python bench/stock_tickers.py                    # the recipe's defaults, every ticker
    python bench/stock_tickers.py --set model.arch=conv1d --tickers AAPL,MSFT

For each ticker it trains the ``stock`` recipe (in memory, no run folder)
and prints the test RMSE of the model and of every baseline in price units,
the model/persistence RMSE ratio (the reference, measured in the same
script on the same test windows), the Diebold-Mariano p-value and the
wall time. A ratio below 1 means the model beats "tomorrow = today".
A ticker too short for the settings is reported and skipped (FB has only
196 rows; it fits the default window of 30).
Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_ticker(ticker: str, overrides: list[str]) -> dict:
    import keras

    from nnkit import train as train_mod
    from nnkit.pipeline import resolve

    resolved = resolve("stock", None, None, [f"data.ticker={ticker}", *overrides])
    task, cfg = resolved.task, resolved.cfg
    started = time.perf_counter()
    prepared = task.load(cfg)
    train_cfg = cfg["train"]
    train_mod.apply_seed(train_cfg)
    train_ds, val_ds = task.datasets(cfg, prepared, train_cfg["batch_size"])
    model = task.build_model(cfg, prepared)
    model.compile(optimizer=train_mod.make_optimizer(train_cfg, int(train_ds.cardinality())),
                  **task.compile_kwargs(cfg, prepared))
    callbacks = [keras.callbacks.EarlyStopping(patience=train_cfg["patience"], restore_best_weights=True)]
    history = model.fit(train_ds, validation_data=val_ds, epochs=train_cfg["epochs"], verbose=0,
                        callbacks=callbacks if train_cfg["early_stopping"] else [])
    evaluation = task.evaluate(model, prepared, cfg)
    keras.backend.clear_session()
    return {"ticker": ticker, "rows": len(prepared.extra["prices"]), "epochs": len(history.history["loss"]),
            "model": evaluation.model["rmse"],
            **{name: metrics["rmse"] for name, metrics in evaluation.baselines.items()},
            "ratio": evaluation.model["rmse_vs_persistence"],
            "dm_p": evaluation.model["dm_p_vs_persistence"], "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    from nnkit.datasets.prices import BUNDLED_TICKERS
    from nnkit.errors import NnkitError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", default=",".join(BUNDLED_TICKERS))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    rows = []
    header = (f"{'ticker':<6} {'rows':>5} {'epochs':>6} {'model':>9} {'persist':>9} {'drift':>9} {'snaive':>9} "
              f"{'ridge':>9} {'model/persist':>13} {'DM p':>7} {'time':>6}")
    print(header)
    print("-" * len(header))
    for ticker in args.tickers.split(","):
        try:
            r = run_ticker(ticker.strip().upper(), args.overrides)
        except NnkitError as exc:
            print(f"{ticker:<6} skipped: {exc}")
            continue
        rows.append(r)
        print(f"{r['ticker']:<6} {r['rows']:>5} {r['epochs']:>6} {r['model']:>9.4f} {r['persistence']:>9.4f} "
              f"{r['drift']:>9.4f} {r['seasonal_naive']:>9.4f} {r['ridge']:>9.4f} {r['ratio']:>13.4f} "
              f"{r['dm_p']:>7.3f} {r['seconds']:>5.0f}s", flush=True)
    if rows:
        import numpy as np

        ratios = [r["ratio"] for r in rows]
        print(f"\nmodel/persistence RMSE ratio: mean {np.mean(ratios):.4f}, worst {max(ratios):.4f}; "
              f"{sum(x < 1 for x in ratios)}/{len(rows)} tickers below 1, "
              f"{sum(r['dm_p'] < 0.05 and r['ratio'] < 1 for r in rows)} significantly (DM p < 0.05)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
