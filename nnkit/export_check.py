"""Reload an exported artifact in this (fresh) process and compare it with saved outputs.

``python -m nnkit.export_check FORMAT ARTIFACT CHECK.npz`` exits 0 when every
endpoint reproduces the outputs the in-memory model gave, 1 otherwise.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(fmt: str, artifact: str, check_file: str) -> None:
    from nnkit.export import compare, load_check, to_numpy

    cases = load_check(check_file)
    if fmt == "saved_model":
        import tensorflow as tf

        try:  # registers tensorflow-text's ops (subword tokenizers), which a SavedModel may use
            import tensorflow_text  # noqa: F401
        except ImportError:
            pass
        loaded = tf.saved_model.load(artifact)
        for endpoint, (inputs, expected) in cases.items():
            fn = getattr(loaded, endpoint)
            compare(expected, to_numpy(fn(**{k: tf.constant(v) for k, v in inputs.items()})), endpoint)
            signature = loaded.signatures[endpoint]  # the same endpoint as TF Serving sees it
            compare(expected, to_numpy(signature(**{k: tf.constant(v) for k, v in inputs.items()})),
                    f"signature {endpoint}")
    elif fmt == "keras":
        import keras

        from nnkit import layers  # noqa: F401  nnkit's registered layers

        model = keras.saving.load_model(artifact, safe_mode=True)
        inputs, expected = cases["model"]
        xs = [inputs[f"x{i}"] for i in range(len(inputs))]
        compare(expected, to_numpy(model.predict(xs if len(xs) > 1 else xs[0], verbose=0)), "keras")
    elif fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
        inputs, expected = cases["model"]
        feeds = {i.name: inputs[f"x{n}"] for n, i in enumerate(session.get_inputs())}
        outputs = session.run(None, feeds)
        compare(expected, {"output": outputs[0]} if len(outputs) == 1 else
                {k: v for k, v in zip(expected, outputs)}, "onnx", rtol=1e-3, atol=1e-4)
    elif fmt == "tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=artifact)
        inputs, expected = cases["model"]
        runner = interpreter.get_signature_runner()
        names = list(runner.get_input_details())
        got = runner(**{name: inputs[f"x{i}"] for i, name in enumerate(names)})
        values = list(got.values())
        compare(expected, {"output": values[0]} if len(values) == 1 else dict(zip(expected, values)),
                "tflite", rtol=1e-3, atol=1e-4)
    else:
        raise SystemExit(f"unknown format {fmt}")


if __name__ == "__main__":
    try:
        main(*sys.argv[1:4])
    except AssertionError as exc:
        print(f"mismatch: {exc}", file=sys.stderr)
        sys.exit(1)
