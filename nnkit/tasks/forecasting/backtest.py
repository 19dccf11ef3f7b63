"""Walk-forward backtest: refit per fold through the same ``train.fit`` as ``nnkit run`` (``ctx.fit``)."""

from __future__ import annotations

import numpy as np

from nnkit.errors import DataError
from nnkit.tasks.forecasting.baselines import score_forecasts
from nnkit.tasks.forecasting.data import MIN_TRAIN_WINDOWS, prepare, season_of
from nnkit.tasks.forecasting.model import model_forecast


def fold_bounds(n: int, k: int, d: dict) -> list[tuple[int, int, int, int]]:
    """K consecutive test blocks ending at the last row: [(n_train, n_val, test_start, test_end)].

    Each block has the size of the run's test part (shrunk if the series is too
    short); fold i trains on everything before its block, the last
    ``val_fraction`` share of that as validation for early stopping.
    """
    block = int(round(n * d["test_fraction"]))
    need = d["window"] + d["horizon"] + MIN_TRAIN_WINDOWS
    share = d["val_fraction"] / (1 - d["test_fraction"])
    smallest = d["horizon"] + 9  # at least 10 test windows per fold
    while block > smallest and (n - k * block) * (1 - share) < need:
        block -= 1
    if block < smallest or (n - k * block) * (1 - share) < need:
        raise DataError(f"--backtest {k}: the series has {n} rows, too short for {k} folds with window "
                        f"{d['window']} and horizon {d['horizon']}")
    folds = []
    for i in range(k):
        test_start = n - (k - i) * block
        n_val = int(round(test_start * share))
        folds.append((test_start - n_val, n_val, test_start, test_start + block))
    return folds


def run_backtest(task, ctx, k: int) -> dict:
    """K folds, each refit on everything before its test block by ``ctx.fit`` (nnkit.train.fit)."""
    import keras

    from nnkit.datasets.prices import load_series
    from nnkit.report import save_figure
    from nnkit.runs import write_json
    from nnkit.tasks.forecasting.plots import backtest_figure

    run, cfg, echo = ctx.run, ctx.cfg, ctx.echo
    fold_cfg = {**cfg, "train": {**cfg["train"], "verbose": False}}  # one line per fold, not a bar per epoch
    series = load_series(cfg["data"])
    d = cfg["data"]
    folds = fold_bounds(len(series), k, d)
    rows = []
    for i, (n_train, n_val, test_start, test_end) in enumerate(folds):
        prepared = prepare(series, d, n_train=n_train, n_val=n_val, end=test_end)
        prepared.state["season"] = season_of(cfg, series.freq)
        prepared.state["ridge_alpha"] = cfg["eval"]["ridge_alpha"]
        model, epochs = ctx.fit(fold_cfg, prepared)  # strategy, replicas, callbacks: as `nnkit run` trains
        origins = prepared.test["origins"]
        result = score_forecasts(prepared, origins, model_forecast(model, prepared, origins))
        dates = prepared.extra["dates"]
        row = {"fold": i + 1, "train_rows": n_train, "val_rows": n_val,
               "train_start": _d(dates[0]), "test_start": _d(dates[test_start]), "test_end": _d(dates[test_end - 1]),
               "test_windows": int(len(origins)), "epochs": epochs,
               "model": result["model"], "baselines": result["baselines"], "dm": result["dm"]}
        rows.append(row)
        b = result["baselines"]
        echo(f"fold {i + 1}/{k}: test {row['test_start']}..{row['test_end']}  model RMSE {result['model']['rmse']:.4g}"
             f"  persistence {b['persistence']['rmse']:.4g}  ridge {b['ridge']['rmse']:.4g}"
             f"  ratio {result['model']['rmse_vs_persistence']:.3f}  DM p {result['dm']['p_value']:.3g}")
        keras.backend.clear_session()
    ratios = [r["model"]["rmse_vs_persistence"] for r in rows]
    summary = {"folds": k, "mean_rmse_vs_persistence": float(np.mean(ratios)),
               "folds_beating_persistence": int(sum(r < 1 for r in ratios)),
               "folds_significantly_better": int(sum(r["dm"]["p_value"] < 0.05 and r["dm"]["statistic"] < 0
                                                     for r in rows))}
    document = {"method": "walk-forward (rolling origin): refit per fold on all rows before the fold's test block",
                "summary": summary, "folds": rows}
    write_json(run.path / "backtest.json", document)
    run.plot_dir.mkdir(parents=True, exist_ok=True)
    save_figure(backtest_figure(series, folds, rows), run.plot_dir / "backtest.png")
    if attach_backtest(run, document):
        ctx.report()
    echo(backtest_table(rows))
    echo(f"mean model/persistence RMSE ratio {summary['mean_rmse_vs_persistence']:.3f}; "
         f"{summary['folds_beating_persistence']}/{k} folds lower, "
         f"{summary['folds_significantly_better']}/{k} significantly (DM p < 0.05)")
    echo(str(run.path / "backtest.json"))
    return document


def _d(value) -> str:
    return str(np.datetime_as_string(value, unit="D"))


def attach_backtest(run, document: dict) -> bool:
    """Put the backtest table and summary into metrics.json (so report.md shows them)."""
    from nnkit.runs import read_json, write_json

    if not run.metrics_file.is_file():
        return False
    metrics_doc = read_json(run.metrics_file)
    title = f"Walk-forward backtest ({document['summary']['folds']} folds, refit per fold; see backtest.json)"
    metrics_doc["tables"] = [t for t in metrics_doc.get("tables", []) if not t[0].startswith("Walk-forward")]
    metrics_doc["tables"].append([title, backtest_table(document["folds"])])
    metrics_doc.setdefault("details", {})["backtest"] = document["summary"]
    write_json(run.metrics_file, metrics_doc)
    return True


def backtest_table(rows: list) -> str:
    lines = ["| fold | test dates | windows | model RMSE | persistence | drift | seasonal naive | ridge | "
             "model/persistence | DM p |", "|---" * 10 + "|"]
    for r in rows:
        b = r["baselines"]
        lines.append(f"| {r['fold']} | {r['test_start']} .. {r['test_end']} | {r['test_windows']} | "
                     f"{r['model']['rmse']:.4g} | {b['persistence']['rmse']:.4g} | {b['drift']['rmse']:.4g} | "
                     f"{b['seasonal_naive']['rmse']:.4g} | {b['ridge']['rmse']:.4g} | "
                     f"{r['model']['rmse_vs_persistence']:.3f} | {r['dm']['p_value']:.3g} |")
    return "\n".join(lines)
