"""Time-series forecasting, one file per role (the task contract is in ``task.py``).

``task``: the ForecastingTask binding the parts; ``data``: numpy preparation
(split, windows, scalers); ``calendar``: calendar channels in numpy and in TF;
``model``: the builder choice and model forecasts; ``baselines``: baselines,
metrics and the Diebold-Mariano test; ``plots``; ``serving``: the exported
module; ``predict``: CSV prediction through the run's endpoint; ``backtest``:
walk-forward evaluation trained through ``nnkit.train.fit``.
"""
