"""Write a run's model out as SavedModel / .keras / ONNX / TFLite, each checked by reload.

The task owns its serving function (raw inputs in, readable outputs out);
this module only writes it, then reloads the artifact **in a fresh Python
process** (``python -m nnkit.export_check``) and compares its outputs with
the in-memory ones on the same example inputs. Everything is written to a
temporary folder first and renamed into ``export/`` only after the check
passes, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from nnkit.errors import NnkitError
from nnkit.runs import PARTIAL, sweep_partial

FORMATS = {
    "saved_model": "saved_model",
    "keras": "model.keras",
    "onnx": "model.onnx",
    "tflite": "model.tflite",
}
OPTIONAL_PACKAGES = {"onnx": ["tf2onnx", "onnxruntime"], "tflite": []}


def export(run, task, fmt: str = "saved_model", model=None) -> Path:
    """Export ``run``'s model in ``fmt``; return the final path."""
    if fmt not in FORMATS:
        raise NnkitError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    _check_optional_packages(fmt)
    from nnkit.train import load_model

    if model is None:
        if not run.model_file.is_file():
            raise NnkitError(f"{run.path}: no model.keras yet (train the run first)")
        model = load_model(run.model_file, task.custom_objects())
    target = run.export_dir / FORMATS[fmt]
    run.export_dir.mkdir(parents=True, exist_ok=True)
    sweep_partial(run.export_dir)  # what an export killed half-way left behind
    with tempfile.TemporaryDirectory(prefix=f"{PARTIAL}{fmt}-", dir=run.export_dir) as work:
        work = Path(work)
        artifact = work / FORMATS[fmt]
        examples_file = work / "check.npz"
        writer = {"saved_model": _write_saved_model, "keras": _write_keras,
                  "onnx": _write_onnx, "tflite": _write_tflite}[fmt]
        writer(run, task, model, artifact, examples_file)
        check_in_fresh_process(fmt, artifact, examples_file)
        _replace(artifact, target)
    return target


def _check_optional_packages(fmt: str) -> None:
    import importlib.util

    missing = [p for p in OPTIONAL_PACKAGES.get(fmt, []) if importlib.util.find_spec(p) is None]
    if missing:
        raise NnkitError(f"export format {fmt!r} needs {', '.join(missing)}: "
                         f"pip install {' '.join(missing)}  (or pip install 'nnkit[onnx]')")


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; an existing target is set aside, then removed."""
    old = target.with_name(f"{PARTIAL}{target.name}.old")
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    if target.exists():
        target.rename(old)
    source.rename(target)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


# -- the check data: inputs, and the outputs the in-memory model gives ---------------------

def _save_check(path: Path, cases: dict) -> None:
    """cases: endpoint -> (inputs dict, outputs dict) of numpy arrays. Stored without pickle."""
    flat = {}
    for endpoint, (inputs, outputs) in cases.items():
        for key, value in inputs.items():
            flat[f"{endpoint}/in/{key}"] = np.asarray(value)
        for key, value in outputs.items():
            flat[f"{endpoint}/out/{key}"] = np.asarray(value)
    np.savez(path, **flat)


def load_check(path: Path) -> dict:
    cases: dict = {}
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            endpoint, kind, key = name.split("/", 2)
            cases.setdefault(endpoint, ({}, {}))[0 if kind == "in" else 1][key] = data[name]
    return cases


def to_numpy(outputs) -> dict:
    if not isinstance(outputs, dict):
        outputs = {"output": outputs}
    arrays = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in outputs.items()}
    # tf.string comes back as an object array of bytes; store it as unicode (npz without pickle)
    return {k: _as_str(v) if v.dtype.kind in "OS" else v for k, v in arrays.items()}


def model_examples(model, task, state) -> list:
    """Example inputs for the bare Keras model: the task's, or random ones of the right shape."""
    if hasattr(task, "model_examples"):
        return task.model_examples(state)
    rng = np.random.default_rng(0)
    examples = []
    for spec in model.inputs:
        shape = [2] + [d if d is not None else 5 for d in spec.shape[1:]]
        dtype = str(spec.dtype)
        if "int" in dtype:
            examples.append(rng.integers(0, 2, size=shape).astype(dtype))
        elif "string" in dtype:
            examples.append(np.array(["a"] * shape[0]))
        else:
            examples.append(rng.normal(size=shape).astype("float32"))
    return examples


# -- writers ------------------------------------------------------------------------------

def _write_saved_model(run, task, model, artifact: Path, examples_file: Path) -> None:
    import tensorflow as tf

    module, examples = task.serving(model, run.state(), run.config())
    _track_keras_state(module)
    # the endpoints are the module's tf.functions named by ``examples``; the first is the default
    endpoints = {name: getattr(module, name) for name in examples}
    cases = {name: (inputs, to_numpy(endpoints[name](**inputs))) for name, inputs in examples.items()}
    signatures = dict(endpoints)
    signatures["serving_default"] = next(iter(endpoints.values()))
    tf.saved_model.save(module, str(artifact), signatures=signatures)
    write_identity(artifact, run, list(examples))
    _save_check(examples_file, cases)


IDENTITY = "assets.extra/nnkit.json"  # TF Serving ignores assets.extra/; predict reads it


def write_identity(artifact: Path, run, endpoints: list) -> None:
    """Record which task and recipe made this SavedModel, so predict can refuse another task's."""
    import json

    meta = run.meta()
    path = Path(artifact) / IDENTITY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": meta.get("task"), "recipe": meta.get("recipe"),
                                "endpoints": endpoints}) + "\n")


def _track_keras_state(module) -> None:
    """Make every variable of the Keras models a module holds reachable from the module.

    Some state (e.g. the seed generators of augmentation layers) is captured by
    the traced graph but not tracked as a child of the model, and
    ``tf.saved_model.save`` refuses unreachable captures.
    """
    import keras

    variables = []
    for value in list(vars(module).values()):
        if isinstance(value, keras.layers.Layer):
            variables += [getattr(v, "value", v) for v in value.variables]
    module._keras_variables = variables


def _write_keras(run, task, model, artifact: Path, examples_file: Path) -> None:
    model.save(artifact)
    inputs = model_examples(model, task, run.state())
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    _save_check(examples_file, {"model": ({f"x{i}": x for i, x in enumerate(inputs)}, to_numpy(outputs))})


def _write_onnx(run, task, model, artifact: Path, examples_file: Path) -> None:
    inputs = model_examples(model, task, run.state())
    try:
        model.export(str(artifact), format="onnx", verbose=False)
    except Exception as exc:  # converter limits are the user's to know, not a crash
        raise NnkitError(f"ONNX export of this model failed in the converter: {exc}") from None
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    _save_check(examples_file, {"model": ({f"x{i}": x for i, x in enumerate(inputs)}, to_numpy(outputs))})


def _write_tflite(run, task, model, artifact: Path, examples_file: Path) -> None:
    import tensorflow as tf

    inputs = model_examples(model, task, run.state())
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        try:
            artifact.write_bytes(converter.convert())
        except Exception as exc:
            raise NnkitError(f"TFLite conversion of this model failed: {exc}") from None
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    _save_check(examples_file, {"model": ({f"x{i}": x for i, x in enumerate(inputs)}, to_numpy(outputs))})


# -- the fresh-process check -------------------------------------------------------------

def check_in_fresh_process(fmt: str, artifact: Path, examples_file: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "nnkit.export_check", fmt, str(artifact),
                             str(examples_file)], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NnkitError(f"export check failed: the reloaded {fmt} artifact does not reproduce the "
                         f"in-memory outputs ({detail}); nothing was written to export/")


def compare(expected: dict, actual: dict, where: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    for key, want in expected.items():
        if key not in actual:
            raise AssertionError(f"{where}: output {key!r} missing from the reloaded artifact")
        got = np.asarray(actual[key])
        if want.dtype.kind in "OSU":
            if not np.array_equal(_as_str(got), _as_str(want)):
                raise AssertionError(f"{where}: output {key!r} differs after reload")
        elif not np.allclose(got, want, rtol=rtol, atol=atol):
            raise AssertionError(f"{where}: output {key!r} differs after reload "
                                 f"(max abs diff {np.max(np.abs(got - want)):.3g})")


def _as_str(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "OS":
        return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v),
                            otypes=[str])(array)
    return array.astype(str)
