"""Forecasting baselines (persistence, drift, seasonal naive, ridge), metrics and the Diebold-Mariano test.

The baselines are scored on exactly the test windows the model is scored on.
"""

from __future__ import annotations

import math

import numpy as np

from nnkit.tasks.base import Evaluation, Prepared
from nnkit.tasks.forecasting.data import actual_at, invert, targets_at, transformed, windows_at
from nnkit.tasks.forecasting.model import model_forecast

BASELINES = ("persistence", "drift", "seasonal_naive", "ridge")


def baseline_forecasts(prepared: Prepared, origins: np.ndarray) -> dict:
    """Every baseline's price forecasts [N, H] for the given origins."""
    from sklearn.linear_model import Ridge

    state = prepared.state
    prices = prepared.extra["prices"]
    H, m = state["horizon"], state["season"]
    last = prices[origins]
    steps = np.arange(1, H + 1)
    n_train = prepared.extra["bounds"][0]
    out = {"persistence": np.repeat(last[:, None], H, axis=1)}
    transform = state["transform"]
    train_z = transformed(prices[:n_train], transform if transform != "none" else "diff")[1:]
    mu = float(np.mean(train_z))
    if transform == "log_return":
        out["drift"] = last[:, None] * np.exp(mu * steps)
    else:
        out["drift"] = last[:, None] + mu * steps
    back = np.asarray(origins)[:, None] - m + 1 + (steps - 1) % m
    out["seasonal_naive"] = prices[np.clip(back, 0, None)]
    train_origins = prepared.train["origins"]
    x_train = windows_at(prepared, train_origins).reshape(len(train_origins), -1)
    ridge = Ridge(alpha=float(state.get("ridge_alpha", 1.0))).fit(x_train, targets_at(prepared, train_origins))
    scaled = ridge.predict(windows_at(prepared, origins).reshape(len(origins), -1)).reshape(len(origins), H)
    out["ridge"] = invert(last, scaled, state)
    return out


def metrics(actual: np.ndarray, predicted: np.ndarray, last: np.ndarray, naive_mae: float) -> dict:
    err = predicted - actual
    moved = np.sign(actual - last[:, None])
    guessed = np.sign(predicted - last[:, None])
    valid = moved != 0
    direction = float(np.mean(guessed[valid] == moved[valid])) if np.any(guessed[valid] != 0) else None
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(err) / np.abs(actual)) * 100)
    mae = float(np.mean(np.abs(err)))
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": mae, "mape": mape,
            "mase": mae / naive_mae if naive_mae > 0 else None, "directional_accuracy": direction}


def diebold_mariano(e_model: np.ndarray, e_base: np.ndarray, horizon: int) -> tuple[float, float]:
    """Diebold-Mariano test (squared loss, Harvey-Leybourne-Newbold correction), two-sided.

    ``e_*``: errors [N, H]; the loss per forecast origin is the mean squared error
    over its H steps, and the long-run variance uses Newey-West weights up to lag H-1.
    Returns (statistic, p-value); a negative statistic favours the model.
    """
    from scipy import stats

    d = np.mean(e_model ** 2, axis=1) - np.mean(e_base ** 2, axis=1)
    n = len(d)
    if n < 3:
        return float("nan"), float("nan")
    mean = d.mean()
    centred = d - mean
    variance = np.dot(centred, centred) / n
    for lag in range(1, horizon):
        weight = 1 - lag / horizon
        variance += 2 * weight * np.dot(centred[lag:], centred[:-lag]) / n
    if variance <= 0:
        return float("nan"), float("nan")
    dm = mean / math.sqrt(variance / n)
    h = horizon
    correction = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    statistic = dm * correction
    p = 2 * stats.t.sf(abs(statistic), df=n - 1)
    return float(statistic), float(p)


def score_forecasts(prepared: Prepared, origins, model_pred: np.ndarray) -> dict:
    """Metrics of the model and of every baseline on the same origins, plus the DM test."""
    actual = actual_at(prepared, origins)
    last = prepared.extra["prices"][origins]
    naive = prepared.extra["train_naive_mae"]
    forecasts = baseline_forecasts(prepared, origins)
    result = {"model": metrics(actual, model_pred, last, naive),
              "baselines": {k: metrics(actual, v, last, naive) for k, v in forecasts.items()}}
    H = prepared.state["horizon"]
    stat, p = diebold_mariano(model_pred - actual, forecasts["persistence"] - actual, H)
    result["dm"] = {"statistic": stat, "p_value": p}
    pers = result["baselines"]["persistence"]["rmse"]
    result["model"]["rmse_vs_persistence"] = result["model"]["rmse"] / pers if pers > 0 else None
    result["model"]["dm_p_vs_persistence"] = p
    per_step = {"model": np.sqrt(np.mean((model_pred - actual) ** 2, axis=0)).tolist()}
    per_step.update({k: np.sqrt(np.mean((v - actual) ** 2, axis=0)).tolist() for k, v in forecasts.items()})
    result["rmse_by_step"] = per_step
    result["arrays"] = {"actual": actual, "model": model_pred, "last": last, **forecasts}
    return result


def verdict_sentence(model_rmse: float, baselines: dict, dm_stat: float, p: float) -> str:
    pers = baselines["persistence"]["rmse"]
    if not (math.isfinite(model_rmse) and math.isfinite(pers)):
        return "No verdict: the errors are not finite numbers (did training diverge?)."
    if pers == 0:  # a constant series: repeating the last value is exact
        return (f"Persistence is exact on this test part (the series does not move); the model's RMSE is "
                f"{model_rmse:.4g}. There is nothing to forecast here.")
    ratio = model_rmse / pers
    best_name = min(baselines, key=lambda k: baselines[k]["rmse"])
    pct = abs(ratio - 1) * 100
    side = "lower" if ratio < 1 else "higher"
    significant = (not math.isnan(p)) and p < 0.05
    if ratio < 1 and significant:
        head = (f"The model beats persistence: its RMSE is {pct:.1f}% lower, and the Diebold-Mariano test "
                f"says the difference is significant (p = {p:.3g}).")
    elif ratio >= 1 and significant:
        head = (f"The model does not beat persistence: its RMSE is {pct:.1f}% higher, significantly so "
                f"(Diebold-Mariano p = {p:.3g}); use the naive forecast instead.")
    else:
        head = (f"The model does not beat persistence: its RMSE is {pct:.1f}% {side}, and the Diebold-Mariano "
                f"test finds no significant difference (p = {p:.3g}), so it adds nothing over "
                "'tomorrow = today'.")
    if best_name != "persistence" and baselines[best_name]["rmse"] < model_rmse:
        head += f" The best baseline is {best_name.replace('_', ' ')} (RMSE {baselines[best_name]['rmse']:.4g})."
    return head


def score(model, prepared: Prepared, cfg: dict) -> Evaluation:
    origins = prepared.test["origins"]
    pred = model_forecast(model, prepared, origins)
    result = score_forecasts(prepared, origins, pred)
    H = prepared.state["horizon"]
    dm = result["dm"]
    verdict = verdict_sentence(result["model"]["rmse"], result["baselines"], dm["statistic"], dm["p_value"])
    tables = [("Diebold-Mariano test, model vs persistence (squared error)",
               "| statistic | p-value | test windows | reading |\n|---|---|---|---|\n"
               f"| {dm['statistic']:.3f} | {dm['p_value']:.3g} | {len(origins)} | "
               f"{'negative favours the model' if dm['statistic'] < 0 else 'positive favours persistence'} |")]
    if H > 1:
        names = list(result["rmse_by_step"])
        lines = ["| step | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for h in range(H):
            lines.append(f"| {h + 1} | " + " | ".join(f"{result['rmse_by_step'][k][h]:.4g}" for k in names) + " |")
        tables.append(("RMSE by horizon step (price units)", "\n".join(lines)))
    interval = prepared.state.get("interval")
    details = {"test_windows": int(len(origins)), "horizon": H, "rmse_by_step": result["rmse_by_step"],
               "diebold_mariano": dm, "units": f"price units of {prepared.state['target_name']!r}"}
    if interval:
        lo, hi = interval_bounds(pred, interval)
        actual = result["arrays"]["actual"]
        covered = float(np.mean((actual >= lo) & (actual <= hi)))
        details["interval"] = {**interval, "test_coverage": covered}
        tables.append(("Prediction interval (from validation residual quantiles)",
                       f"| nominal | test coverage | method |\n|---|---|---|\n"
                       f"| {interval['level']:.0%} | {covered:.1%} | {interval['method']} |"))
    test_dates = prepared.extra["dates"][origins + 1]  # the first forecast date of each window
    return Evaluation(primary="rmse", higher_is_better=False, model=result["model"], baselines=result["baselines"],
                      details=details, verdict=verdict, tables=tables,
                      artifacts={**result["arrays"], "dates": test_dates, "horizon": H,
                                 "rmse_by_step": result["rmse_by_step"],
                                 "lower_upper": interval_bounds(pred, interval) if interval else None})


def interval_bounds(pred: np.ndarray, interval: dict):
    lower = np.asarray(interval["lower"])[: pred.shape[1]]
    upper = np.asarray(interval["upper"])[: pred.shape[1]]
    if interval["kind"] == "log_ratio":
        return pred * np.exp(lower), pred * np.exp(upper)
    return pred + lower, pred + upper
