"""Shared prediction plumbing: call the run's exported SavedModel, write rows as CSV/JSON.

Predicting through the exported SavedModel means ``nnkit predict`` runs the
exact graph that TF Serving would: raw inputs in, readable outputs out.
"""

from __future__ import annotations

import json

from nnkit.errors import DataError


def call_endpoint(run, endpoint: str, **inputs) -> dict:
    """Call an endpoint of the run's exported SavedModel (exporting first if needed)."""
    import tensorflow as tf

    saved = run.export_dir / "saved_model"
    if not saved.is_dir():
        from nnkit.export import export
        from nnkit.pipeline import run_config

        export(run, run_config(run).task, "saved_model")
    loaded = load_saved_model(run, saved)
    if not hasattr(loaded, endpoint):
        raise DataError(f"{saved}: this SavedModel has no '{endpoint}' endpoint (a model of another task?)")
    try:
        outputs = getattr(loaded, endpoint)(**{k: tf.constant(v) for k, v in inputs.items()})
    except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        given = ", ".join(f"{k}: {getattr(v, 'dtype', type(v).__name__)}" for k, v in inputs.items())
        raise DataError(f"{saved}: endpoint '{endpoint}' does not accept these inputs ({given}): {first}") from None
    return {k: v.numpy() for k, v in outputs.items()}


def load_saved_model(run, saved):
    """Load the run's SavedModel after checking it was exported for this run's task.

    ``export/saved_model/assets.extra/nnkit.json`` (written by nnkit's export)
    names the task; a SavedModel of another task, or an unreadable folder, is
    a one-line error instead of a TensorFlow traceback.
    """
    import tensorflow as tf

    from nnkit.export import IDENTITY

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
    try:
        return tf.saved_model.load(str(saved))
    except Exception as exc:  # OSError, ValueError, tf.errors.*: a damaged or foreign folder
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(f"{saved}: not a loadable SavedModel ({first}); re-export it with: "
                        f"nnkit export {run.path}") from None


def write_predictions(rows: list[dict], out: str | None, echo) -> None:
    """Rows to CSV or JSON (by the --out extension), or CSV on standard output."""
    import csv
    import io

    if out and out.endswith(".json"):
        from nnkit.runs import write_text

        write_text(out, json.dumps(rows, indent=2) + "\n")
        echo(out)
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    if out:
        from nnkit.runs import write_text

        write_text(out, buffer.getvalue())
        echo(out)
    else:
        echo(buffer.getvalue().rstrip("\n"))
