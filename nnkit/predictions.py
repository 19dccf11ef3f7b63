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
    loaded = tf.saved_model.load(str(saved))
    if not hasattr(loaded, endpoint):
        raise DataError(f"{saved}: this SavedModel has no '{endpoint}' endpoint (a model of another task?)")
    outputs = getattr(loaded, endpoint)(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


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
