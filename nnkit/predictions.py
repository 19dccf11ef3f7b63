"""Shared prediction plumbing: call the run's exported SavedModel, write rows as CSV/JSON.

Predicting through the exported SavedModel means ``nnkit predict`` runs the
exact graph that TF Serving would: raw inputs in, readable outputs out.
"""

from __future__ import annotations

import json
from pathlib import Path

from nnkit.errors import DataError
from nnkit.tasks.base import RunContext


def endpoint(run, name: str, task=None):
    """The one endpoint loader: the run's exported SavedModel's ``name`` endpoint, loaded once.

    Exports first if the run has no SavedModel yet. The returned function takes
    numpy inputs and returns a dict of numpy outputs; inputs the endpoint does
    not accept are a one-line ``DataError``.
    """
    import tensorflow as tf

    saved = run.export_dir / "saved_model"
    if not saved.is_dir():
        from nnkit.export import export
        from nnkit.pipeline import run_config

        export(run, task or run_config(run).task, "saved_model")
    loaded = load_saved_model(run, saved)
    if not hasattr(loaded, name):
        raise DataError(f"{saved}: this SavedModel has no '{name}' endpoint (a model of another task?)")

    def call(**inputs) -> dict:
        try:  # through ``loaded`` itself: the closure keeps the SavedModel (and its variables) alive
            outputs = getattr(loaded, name)(**{k: tf.constant(v) for k, v in inputs.items()})
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            given = ", ".join(f"{k}: {getattr(v, 'dtype', type(v).__name__)}" for k, v in inputs.items())
            raise DataError(f"{saved}: endpoint '{name}' does not accept these inputs ({given}): {first}") from None
        return {k: v.numpy() for k, v in outputs.items()}

    return call


def call_endpoint(run, name: str, **inputs) -> dict:
    """Call one endpoint of the run's exported SavedModel (exporting first if needed)."""
    return endpoint(run, name)(**inputs)


def context(run, echo=print) -> RunContext:
    """The :class:`~nnkit.tasks.base.RunContext` a task gets for ``run``: config, endpoints, model, fit."""
    from nnkit.pipeline import report, run_config

    resolved = run_config(run)
    task, cfg = resolved.task, resolved.cfg
    loaded = {}

    def load_endpoint(name):
        if name not in loaded:
            loaded[name] = endpoint(run, name, task)
        return loaded[name]

    def load_model():
        from nnkit.train import load_model as load

        return load(run.model_file, task.custom_objects())

    return RunContext(run=run, cfg=cfg, task=task, echo=echo, endpoint=load_endpoint, load_model=load_model,
                      fit=lambda fit_cfg, prepared: fit_scratch(task, fit_cfg, prepared),
                      report=lambda: report(run))


def fit_scratch(task, cfg: dict, prepared):
    """Train through ``nnkit.train.fit`` (strategy, replicas, callbacks) in a throw-away run folder.

    For models that are not the run's own (a backtest fold): same path as
    ``nnkit run``, nothing written into the run.
    """
    import tempfile

    from nnkit import train
    from nnkit.runs import create_run, write_json

    from nnkit.report import read_history

    with tempfile.TemporaryDirectory(prefix="nnkit-fit-") as tmp:
        scratch = create_run("scratch", out=str(Path(tmp) / "run"))
        write_json(scratch.meta_file, {})
        model = train.fit(task, cfg, prepared, scratch)
        return model, len(read_history(scratch))


def load_saved_model(run, saved):
    """Load the run's SavedModel after checking it was exported for this run's task.

    ``export/saved_model/assets.extra/nnkit.json`` (written by nnkit's export)
    names the task; a SavedModel of another task, or an unreadable folder, is
    a one-line error instead of a TensorFlow traceback.
    """
    import tensorflow as tf

    from nnkit.export_formats import IDENTITY, import_op_libraries

    identity_file = saved / IDENTITY
    if identity_file.is_file():
        try:
            identity = json.loads(identity_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            identity = {}
        task = run.meta().get("task")
        if isinstance(identity, dict) and identity.get("task") and task and identity["task"] != task:
            raise DataError(f"{saved}: a SavedModel of task '{identity['task']}' (recipe "
                            f"'{identity.get('recipe')}'), but this run's task is '{task}'; "
                            f"re-export it with: nnkit export {run.path}")
    import_op_libraries()
    try:
        return tf.saved_model.load(str(saved))
    except Exception as exc:  # OSError, ValueError, tf.errors.*: a damaged or foreign folder
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"{saved}: not a loadable SavedModel ({first}); re-export it with: "
                        f"nnkit export {run.path}") from None
