"""A run folder seen from Python: ``nnkit.run(...)`` and ``nnkit.load_run(path)`` return a :class:`Run`.

Every attribute reads the folder when asked (so ``nnkit evaluate`` from a
shell shows up in an open notebook), and every action goes through the
command line's own machinery: ``predict`` is the task's ``nnkit predict``
(through the exported SavedModel's endpoint), ``evaluate`` is
``nnkit evaluate``, ``export`` is ``nnkit export``. In Jupyter a run shows
its verdict, its metric table and its learning curves.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from pathlib import Path

from nnkit.errors import NnkitError

class Run:
    """A finished (or interrupted, or train-only) run folder."""

    def __init__(self, path: str | os.PathLike):
        from nnkit.runs import open_run

        self._folder = open_run(path)  # refuses anything that is not a run folder, one line
        self._model = None

    def __repr__(self):
        return f"nnkit.Run({str(self.path)!r})"

    # -- what the folder holds ---------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._folder.path

    @property
    def config(self) -> dict:
        return self._folder.config()

    @property
    def meta(self) -> dict:
        return self._folder.meta()

    @property
    def status(self) -> str:
        return self.meta.get("status", "?")

    @property
    def metrics(self) -> dict:
        """metrics.json: ``{"primary", "model": {...}, "baselines": {...}, "verdict", ...}``."""
        from nnkit.runs import read_json

        if not self._folder.metrics_file.is_file():
            raise NnkitError(f"{self.path}: no metrics.json yet (run `nnkit evaluate {self.path}` first, "
                             "or .evaluate())")
        return read_json(self._folder.metrics_file)

    @property
    def history(self):
        """history.csv as a pandas DataFrame, one row per epoch (a resumed run's last row per epoch)."""
        import pandas as pd

        from nnkit.report import read_history

        rows = read_history(self._folder)
        if not rows:
            raise NnkitError(f"{self.path}: no history.csv (the run has not finished an epoch)")
        return pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")

    @property
    def report_path(self) -> Path:
        return self._folder.report_file

    @property
    def plots(self) -> list[Path]:
        folder = self._folder.plot_dir
        return sorted(folder.glob("*.png")) if folder.is_dir() else []

    @property
    def model(self):
        """The trained Keras model (model.keras), loaded in safe mode: no code from the file runs."""
        if self._model is None:
            from nnkit import pipeline, train

            task = pipeline.run_config(self._folder).task
            self._model = train.load_model(self._folder.model_file, task.custom_objects(), unsafe=False)
        return self._model

    # -- actions (the CLI's commands) ------------------------------------------------------------
    def evaluate(self) -> dict:
        """``nnkit evaluate RUN``: evaluate the model and its baselines again; rewrite metrics and report."""
        from nnkit import pipeline

        pipeline.evaluate_run(self._folder)
        return self.metrics

    def export(self, format: str = "saved_model") -> Path:
        """``nnkit export RUN --format F``; the artifact is reloaded in a fresh process and checked."""
        from nnkit import pipeline
        from nnkit.export import export

        return export(self._folder, pipeline.run_config(self._folder).task, format)

    def predict(self, inputs=None, **options):
        """``nnkit predict RUN INPUTS`` through the exported SavedModel; a DataFrame of its rows.

        ``inputs``: what the task predicts from, as a path or in memory: a DataFrame of recent
        prices (forecasting) or features (tables), image arrays ``[N, H, W(, C)]``, sequence arrays,
        strings to translate, item ids. ``options``: the task's ``nnkit predict`` options as keywords
        (``horizon=5``, ``beam=3``, ``similar=...``, ``k=10``, ``start=...``, ``top_k=...``). A text
        language model returns the generated text (a str), a melody the CLI's lines (tokens, files).
        """
        import pandas as pd

        from nnkit import api_data
        from nnkit.predictions import context

        lines: list[str] = []
        ctx = context(self._folder, lines.append)  # the CLI's context: config, task, endpoint loader
        task = ctx.task
        task.check_options(options)  # options the task does not take: the CLI's message
        given = {option.name: None for option in task.predict_options}
        given.update(_checked(options, task.predict_options))
        with tempfile.TemporaryDirectory(prefix="nnkit-predict-") as tmp:
            tmp = Path(tmp)
            items, labels = api_data.predict_inputs(task.name, inputs, tmp, self._folder.state())
            text_model = task.name == "language_model"
            melody = text_model and self._folder.state().get("mode") == "melody"
            out = None if melody else tmp / ("generated.txt" if text_model else "predictions.json")
            try:
                task.predict(ctx, items, {**given, "out": None if out is None else str(out)})
            except NnkitError as exc:
                message = str(exc)
                for path, label in labels.items():
                    message = message.replace(path, label)
                raise type(exc)(message) from None
            if melody:
                return lines
            if text_model:
                return out.read_text(encoding="utf-8").rstrip("\n")
            rows = json.loads(out.read_text(encoding="utf-8"))
        return pd.DataFrame(rows)

    # -- Jupyter ---------------------------------------------------------------------------------
    def _document(self):
        try:
            return self.metrics
        except NnkitError:
            return None

    def _repr_markdown_(self) -> str:
        from nnkit.report import metrics_table

        meta, document = self.meta, self._document()
        parts = [f"**{meta.get('recipe', '?')}** ({meta.get('task', '?').replace('_', ' ')}) · "
                 f"`{self.path}` · {meta.get('status', '?')}", ""]
        if document is None:
            parts.append("No metrics yet (train-only run, or not finished).")
        else:
            if document.get("verdict"):
                parts += [f"**Verdict.** {document['verdict']}", ""]
            parts += [metrics_table(document), ""]
        curves = self._folder.plot_dir / "learning_curves.png"
        if curves.is_file():
            parts.append(f"Learning curves: `{curves}`")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        meta, document = self.meta, self._document()
        esc = html.escape
        parts = [f"<div class='nnkit-run'><p><b>{esc(meta.get('recipe', '?'))}</b> "
                 f"({esc(meta.get('task', '?').replace('_', ' '))}) · <code>{esc(str(self.path))}</code> · "
                 f"{esc(meta.get('status', '?'))}</p>"]
        if document is None:
            parts.append("<p>No metrics yet (train-only run, or not finished).</p>")
        else:
            if document.get("verdict"):
                parts.append(f"<p><b>Verdict.</b> {esc(document['verdict'])}</p>")
            parts.append(_metrics_html(document))
        curves = self._folder.plot_dir / "learning_curves.png"
        if curves.is_file():
            data = base64.b64encode(curves.read_bytes()).decode("ascii")
            parts.append(f"<img alt='learning curves' style='max-width:100%' src='data:image/png;base64,{data}'/>")
        parts.append("</div>")
        return "".join(parts)


def _metrics_html(document: dict) -> str:
    """The report's metric table (model first, then the baselines) as HTML; the primary metric in bold."""
    from nnkit.report import _fmt

    rows = [("model", document["model"])] + list(document["baselines"].items())
    columns = []
    for _, metrics in rows:
        columns += [k for k, v in metrics.items() if not isinstance(v, (dict, list)) and k not in columns]
    primary = document.get("primary")
    head = "".join(f"<th>{'<b>' + html.escape(c) + '</b>' if c == primary else html.escape(c)}</th>"
                   for c in columns)
    body = "".join(
        "<tr><td>" + ("<b>model</b>" if i == 0 else html.escape(name)) + "</td>"
        + "".join(f"<td>{html.escape(_fmt(metrics.get(c)))}</td>" for c in columns) + "</tr>"
        for i, (name, metrics) in enumerate(rows))
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _checked(options: dict, declared) -> dict:
    """The task's declared options (``nnkit.tasks.base.Option``), checked as the CLI's Click types check them."""
    for option in declared:
        value = options.get(option.name)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if option.type is int and not (number and float(value).is_integer()):
            raise NnkitError(f"predict: {option.name}={value!r}; expected an integer")
        if option.type is float and not number:
            raise NnkitError(f"predict: {option.name}={value!r}; expected a number")
        if option.type is str and not isinstance(value, str):
            raise NnkitError(f"predict: {option.name}={value!r}; expected a string")
        if option.min is not None and (value <= option.min if option.min_open else value < option.min):
            raise NnkitError(f"predict: {option.name}={value!r}; expected a number "
                             f"{'>' if option.min_open else '>='} {option.min}")
    types = {option.name: option.type for option in declared}
    return {name: int(value) if types.get(name) is int else value
            for name, value in options.items() if value is not None}
