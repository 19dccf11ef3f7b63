"""The export formats, registered: name, file, what it needs installed, writer, reload check.

Adding a format is one entry here (and, if it needs packages, an extra in
pyproject.toml): ``nnkit export --format`` takes its choices and help from
:data:`FORMATS`, ``nnkit.export`` writes through ``write``, and
``nnkit.export_check`` reloads through ``check`` in a fresh process. The
shape follows OpenNMT-tf's exporter registry (``register_exporter``,
``list_exporters``). Importing this module loads no TensorFlow.

A writer ``write(run, task, model, artifact, examples_file)`` writes the
artifact and saves, in ``examples_file``, example inputs with the outputs the
in-memory model gives; a check ``check(artifact, cases)`` reloads the
artifact and raises AssertionError when its outputs differ.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from nnkit.errors import NnkitError


@dataclass(frozen=True)
class ExportFormat:
    name: str
    filename: str  # under the run's export/
    help: str  # one line for `nnkit export --help`
    write: Callable  # write(run, task, model, artifact, examples_file)
    check: Callable  # check(artifact, cases): reload here, compare, AssertionError on a mismatch
    packages: tuple = ()  # importable names it needs beyond nnkit's own dependencies
    extra: str = ""  # the pip extra that installs them: pip install 'nnkit[extra]'


FORMATS: dict[str, ExportFormat] = {}


def register_format(fmt: ExportFormat) -> ExportFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def list_formats() -> list[str]:
    return list(FORMATS)


def get_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise NnkitError(f"unknown export format {name!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def missing_packages(fmt: ExportFormat) -> list[str]:
    import importlib.util

    return [p for p in fmt.packages if importlib.util.find_spec(p) is None]


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


def model_examples(model) -> list:
    """Example inputs for the bare Keras model: random ones of the right shape and dtype."""
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
    inputs = model_examples(model)
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    _save_check(examples_file, {"model": ({f"x{i}": x for i, x in enumerate(inputs)}, to_numpy(outputs))})


def _write_onnx(run, task, model, artifact: Path, examples_file: Path) -> None:
    inputs = model_examples(model)
    try:
        model.export(str(artifact), format="onnx", verbose=False)
    except Exception as exc:  # converter limits are the user's to know, not a crash
        raise NnkitError(f"ONNX export of this model failed in the converter: {exc}") from None
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    _save_check(examples_file, {"model": ({f"x{i}": x for i, x in enumerate(inputs)}, to_numpy(outputs))})


def _write_tflite(run, task, model, artifact: Path, examples_file: Path) -> None:
    import tensorflow as tf

    inputs = model_examples(model)
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


# -- reload checks (run by ``python -m nnkit.export_check`` in a fresh process) ------------

def import_op_libraries() -> None:
    """Register the custom ops a SavedModel may use (tensorflow-text's, for subword tokens) before loading it."""
    try:
        import tensorflow_text  # noqa: F401
    except ImportError:  # not installed: SavedModels without its ops still load
        pass


def _check_saved_model(artifact: str, cases: dict) -> None:
    import tensorflow as tf

    import_op_libraries()
    loaded = tf.saved_model.load(artifact)
    for endpoint, (inputs, expected) in cases.items():
        fn = getattr(loaded, endpoint)
        compare(expected, to_numpy(fn(**{k: tf.constant(v) for k, v in inputs.items()})), endpoint)
        signature = loaded.signatures[endpoint]  # the same endpoint as TF Serving sees it
        compare(expected, to_numpy(signature(**{k: tf.constant(v) for k, v in inputs.items()})),
                f"signature {endpoint}")


def _check_keras(artifact: str, cases: dict) -> None:
    import keras

    import nnkit.layers  # noqa: F401  registers nnkit's layers with Keras

    model = keras.saving.load_model(artifact, safe_mode=True)
    inputs, expected = cases["model"]
    xs = [inputs[f"x{i}"] for i in range(len(inputs))]
    compare(expected, to_numpy(model.predict(xs if len(xs) > 1 else xs[0], verbose=0)), "keras")


def _check_onnx(artifact: str, cases: dict) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
    inputs, expected = cases["model"]
    feeds = {i.name: inputs[f"x{n}"] for n, i in enumerate(session.get_inputs())}
    outputs = session.run(None, feeds)
    compare(expected, {"output": outputs[0]} if len(outputs) == 1 else
            {k: v for k, v in zip(expected, outputs)}, "onnx", rtol=1e-3, atol=1e-4)


def _check_tflite(artifact: str, cases: dict) -> None:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=artifact)
    inputs, expected = cases["model"]
    runner = interpreter.get_signature_runner()
    names = list(runner.get_input_details())
    got = runner(**{name: inputs[f"x{i}"] for i, name in enumerate(names)})
    values = list(got.values())
    compare(expected, {"output": values[0]} if len(values) == 1 else dict(zip(expected, values)),
            "tflite", rtol=1e-3, atol=1e-4)


# -- the registry ---------------------------------------------------------------------------

register_format(ExportFormat(
    "saved_model", "saved_model", "TF Serving SavedModel: the task's endpoints, raw inputs in, readable "
    "outputs out", _write_saved_model, _check_saved_model))
register_format(ExportFormat(
    "keras", "model.keras", "the bare Keras model (.keras), model inputs in, model outputs out",
    _write_keras, _check_keras))
register_format(ExportFormat(
    "onnx", "model.onnx", "the bare model as ONNX (needs nnkit[onnx])", _write_onnx, _check_onnx,
    packages=("tf2onnx", "onnxruntime"), extra="onnx"))
register_format(ExportFormat(
    "tflite", "model.tflite", "the bare model as TensorFlow Lite (with select TF ops)", _write_tflite,
    _check_tflite))
