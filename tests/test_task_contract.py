"""The task contract (nnkit/tasks/base.py), checked the same way for every registered task.

For each task, on a tiny problem made easy on purpose: resolve a recipe ->
``pipeline.start`` (load, ``train.fit``, evaluate with baselines, report, SavedModel
export with nnkit's own fresh-process check) -> the metrics.json shape -> "it
learns": the model beats the task's trivial baseline on the primary metric by a
clear margin -> every serving endpoint called in memory -> ``nnkit predict`` on
raw inputs. Then one fresh Python process loads every task's artifacts with the
libraries' own loaders (tf.saved_model, keras, tf.lite, onnxruntime; not
nnkit's reload check) and compares them with the Keras model's outputs.

A new task registered in ``nnkit.tasks.TASKS`` must add its tiny case here;
``test_every_registered_task_has_a_case`` fails until it does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import fresh_python

TRIVIAL = {  # task -> (recipe, trivial baseline, margin on the primary metric)
    "binary_classification": ("perceptron", "majority", 0.2),
    "image_classification": ("digits", "majority", 0.3),
    "forecasting": ("stock", "persistence", 0.3),  # rmse: at most (1 - 0.3) x persistence
    "sequence_classification": ("collision", "prior", 0.2),  # roc_auc: the class prior scores 0.5
    "sequence_labeling": ("driving", "majority", 0.2),
    "language_model": ("melody", "unigram", 0.3),  # perplexity: at most (1 - 0.3) x unigram
    "translation": ("translate", "copy_source", 0.2),
    "embedding": ("products", "random", 0.2),
}

QUICK = ["train.verbose=false", "train.checkpoint_seconds=60"]


def _sine_prices(path: Path) -> Path:
    """A price series with a strong 8-day cycle: persistence is poor, a window model is not."""
    days = np.arange(np.datetime64("2020-01-01"), np.datetime64("2020-01-01") + 420)
    price = 100 + 10 * np.sin(2 * np.pi * np.arange(len(days)) / 8)
    path.write_text("Date,Close\n" + "\n".join(f"{d},{p:.4f}" for d, p in zip(days, price)) + "\n")
    return path


def _sequences(path: Path, per_step: bool) -> Path:
    """Label = sign of feature 0 (per sequence: its mean; per step: the step's value); feature 1 is noise."""
    rng = np.random.default_rng(0)
    n, t = 300, 12
    x = rng.normal(size=(n, t, 2)).astype("float32")
    lengths = rng.integers(6, t + 1, size=n)
    if per_step:
        y = (x[..., 0] > 0).astype("int64")
    else:
        means = np.array([x[i, :lengths[i], 0].mean() for i in range(n)])
        y = (means > 0).astype("int64")
    np.savez(path, x=x, y=y, lengths=lengths)
    return path


def _text(path: Path) -> Path:
    """A strictly periodic text: after two characters the next one is certain."""
    path.write_text("abcde fghij " * 400, encoding="utf-8")
    return path


def _pairs(path: Path) -> Path:
    """Three-word sentences translated word by word (a fixed dictionary)."""
    en = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    fr = ["un", "deux", "trois", "quatre", "cinq", "six_", "sept", "huit"]
    rng = np.random.default_rng(0)
    seen, lines = set(), []
    while len(lines) < 400:
        idx = tuple(rng.integers(0, len(en), size=3))
        if idx not in seen:
            seen.add(idx)
            lines.append(" ".join(en[i] for i in idx) + "\t" + " ".join(fr[i] for i in idx))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CASES = {  # task -> (data maker or None, --set overrides)
    "binary_classification": (None, ["train.epochs=10"]),
    "image_classification": (None, ["train.epochs=4", "model.filters=[8, 16]", "model.dense_units=32"]),
    "forecasting": (_sine_prices, ["train.epochs=25", "model.arch=mlp", "data.window=16", "model.width=32",
                                   "train.patience=25", "model.dropout=0.0"]),
    "sequence_classification": (lambda p: _sequences(p, False),
                                ["train.epochs=8", "model.units=16", "model.dense_units=8", "train.batch_size=32"]),
    "sequence_labeling": (lambda p: _sequences(p, True),
                          ["train.epochs=8", "model.units=16", "model.dense_units=8", "train.batch_size=32"]),
    "language_model": (_text, ["train.epochs=3", "model.units=32", "model.embedding_dim=8", "data.seq_len=24",
                               "eval.sample_length=20"]),
    # the GRU with word tokens, as before the recipe's [with_data] defaults (a Transformer on subwords, beam 4),
    # which tests/test_subwords.py runs
    "translation": (_pairs, ["train.epochs=30", "model.units=32", "model.embed_dim=16", "train.batch_size=32",
                             "train.patience=30", "train.learning_rate=0.01", "model.arch=rnn", "model.depth=1",
                             "model.dropout=0.0", "data.tokenize=word", "eval.beam_width=1"]),
    "embedding": (None, ["data.products=300", "data.categories=5", "data.sessions=800", "data.noise=0.05",
                         "train.epochs=4", "model.dim=16", "eval.map_items=50"]),
}


def test_every_registered_task_has_a_case():
    from nnkit.tasks import TASKS

    assert set(TASKS) == set(CASES) == set(TRIVIAL)


@pytest.fixture(scope="module")
def contract_runs(tmp_path_factory):
    return {}


def _run(task_name: str, base: Path):
    from nnkit.pipeline import resolve, start

    recipe, _, _ = TRIVIAL[task_name]
    maker, sets = CASES[task_name]
    data = maker(base / ("data" + {"forecasting": ".csv", "language_model": ".txt", "translation": ".tsv"}.get(
        task_name, ".npz"))) if maker else None
    resolved = resolve(recipe, data=str(data) if data else None, overrides=[*QUICK, *sets])
    assert resolved.task.name == task_name
    run = start(resolved, out=str(base / "run"))
    return resolved, run


def _predict_args(task_name: str, run, base: Path) -> list[str]:
    """Raw inputs for `nnkit predict`, as a user would give them."""
    state = run.state()
    if task_name == "binary_classification":
        rows = np.asarray(state["mean"])[None] + np.asarray(state["std"])[None] * np.array([[-1.0], [1.0]])
        path = base / "rows.csv"
        path.write_text(",".join(state["features"]) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
        return [str(path)]
    if task_name == "image_classification":
        path = base / "images.npz"
        np.savez(path, x=np.zeros((2, state["height"], state["width"]), np.uint8))
        return [str(path)]
    if task_name == "forecasting":
        return [str(base / "data.csv")]
    if task_name.startswith("sequence"):
        path = base / "predict.npz"
        np.savez(path, x=np.random.default_rng(1).normal(size=(3, 9, 2)).astype("float32"))
        return [str(path)]
    if task_name == "language_model":
        return ["--start", "ab", "--length", "12"]
    if task_name == "translation":
        return ["one two three"]
    return ["--similar", state["item_ids"][0], "-k", "3"]


# The default run proves the contract on two tasks (~1 min on an idle 2-core machine); every task runs it
# with -m slow (all eight: ~11 min under a load of 9 on 2 cores, measured 2026-12-01).
DEFAULT = ("binary_classification", "language_model")


@pytest.mark.parametrize("task_name", [t if t in DEFAULT else pytest.param(t, marks=pytest.mark.slow) for t in CASES])
def test_task_contract(task_name, tmp_path_factory, contract_runs, cli_run):
    import keras

    from nnkit import train
    from nnkit.export_formats import FORMATS, model_examples, to_numpy

    base = tmp_path_factory.mktemp(task_name)
    resolved, run = _run(task_name, base)
    task, cfg = resolved.task, resolved.cfg

    # metrics.json: one shape for every task, model and baselines side by side
    doc = json.loads(run.metrics_file.read_text())
    assert {"recipe", "task", "split", "primary", "higher_is_better", "model", "baselines"} <= set(doc)
    assert doc["task"] == task_name and doc["split"] == "test"
    primary, higher = doc["primary"], doc["higher_is_better"]
    _, trivial, margin = TRIVIAL[task_name]
    assert trivial in doc["baselines"], sorted(doc["baselines"])
    model_score, base_score = doc["model"][primary], doc["baselines"][trivial][primary]
    assert math.isfinite(model_score) and math.isfinite(base_score)
    # it learns: clearly better than the trivial baseline on the primary metric
    if higher:
        assert model_score >= base_score + margin, (primary, model_score, trivial, base_score)
    else:
        assert model_score <= (1 - margin) * base_score, (primary, model_score, trivial, base_score)
    assert (run.path / "report.md").is_file() and (run.export_dir / "saved_model").is_dir()

    # serving endpoints, called in memory on the task's own examples
    model = train.load_model(run.model_file, task.custom_objects())
    module, examples = task.serving(model, run.state(), cfg)
    assert examples
    for endpoint, inputs in examples.items():
        outputs = getattr(module, endpoint)(**inputs)
        assert isinstance(outputs, dict) and outputs, endpoint

    # the bare model in the other formats, written by the registry's writers; loaded below by the test
    out = base / "formats"
    out.mkdir()
    inputs = model_examples(model)
    np.savez(out / "inputs.npz", *inputs)
    np.savez(out / "keras_outputs.npz", **to_numpy(model.predict(inputs if len(inputs) > 1 else inputs[0],
                                                                 verbose=0)))
    FORMATS["keras"].write(run, task, model, out / "model.keras", out / "keras-check.npz")
    contract_runs[task_name] = {"run": str(run.path), "formats": str(out), "endpoints": {
        name: {k: np.asarray(v).tolist() for k, v in ex.items()} for name, ex in examples.items()}}
    keras.backend.clear_session()

    # predict on raw inputs, through the exported SavedModel
    result = cli_run("predict", str(run.path), *_predict_args(task_name, run, base))
    assert result.output.strip()


def test_artifacts_reload_in_a_fresh_process_with_equal_outputs(contract_runs):
    """Every task's SavedModel endpoints and .keras model, loaded by TF/Keras themselves, give the same outputs."""
    if not contract_runs:
        pytest.skip("runs after the task contract tests of the same session")
    # expected SavedModel outputs: the endpoints called in memory in this process, on the same inputs
    import tensorflow as tf

    from nnkit import train
    from nnkit.export_formats import to_numpy
    from nnkit.runs import open_run
    from nnkit.tasks import get_task

    for name, info in contract_runs.items():
        run = open_run(info["run"])
        task = get_task(name)
        model = train.load_model(run.model_file, task.custom_objects())
        module, examples = task.serving(model, run.state(), run.config())
        expected = {e: to_numpy(getattr(module, e)(**{k: tf.constant(v) for k, v in ex.items()}))
                    for e, ex in examples.items()}
        np.savez(Path(info["formats"]) / "serving.npz", **{f"{e}/{k}": v for e, out in expected.items()
                                                           for k, v in out.items()})
        np.savez(Path(info["formats"]) / "serving_inputs.npz", **{f"{e}/{k}": np.asarray(v) for e, ex in
                                                                  examples.items() for k, v in ex.items()})
    report = fresh_python(RELOAD, json.dumps({k: v["formats"] for k, v in contract_runs.items()}),
                          json.dumps({k: v["run"] for k, v in contract_runs.items()}), timeout=600)
    assert report.strip().splitlines()[-1] == f"reloaded {len(contract_runs)} tasks", report


RELOAD = r"""
import json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
import keras
import nnkit.layers  # registers nnkit's layers with Keras (the .keras files name them)

formats, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])

def same(a, b, where):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":
        dec = lambda x: np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[str])(x)
        assert np.array_equal(dec(a), dec(b)), where
    else:
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5), (where, float(np.max(np.abs(a - b))))

for name, folder in formats.items():
    folder = Path(folder)
    saved = tf.saved_model.load(str(Path(runs[name]) / "export" / "saved_model"))
    with np.load(folder / "serving_inputs.npz") as ins, np.load(folder / "serving.npz") as outs:
        for endpoint in {k.split("/")[0] for k in ins.files}:
            args = {k.split("/", 1)[1]: tf.constant(ins[k]) for k in ins.files if k.startswith(endpoint + "/")}
            for fn in (getattr(saved, endpoint), saved.signatures[endpoint]):
                got = fn(**args)
                for k in [k for k in outs.files if k.startswith(endpoint + "/")]:
                    same(got[k.split("/", 1)[1]].numpy(), outs[k], f"{name} {endpoint} {k}")
    with np.load(folder / "inputs.npz") as ins, np.load(folder / "keras_outputs.npz") as outs:
        xs = [ins[f"arr_{i}"] for i in range(len(ins.files))]
        model = keras.saving.load_model(folder / "model.keras", safe_mode=True)
        got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        got = got if isinstance(got, dict) else {"output": got}
        for k in outs.files:
            same(got[k], outs[k], f"{name} keras {k}")
print(f"reloaded {len(formats)} tasks")
"""


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_bare_model_formats_load_in_their_runtimes(fmt, tmp_path):
    """TFLite and ONNX (where installed) of a small trained model, loaded by their own runtimes."""
    import importlib.util

    from nnkit.export_formats import FORMATS, missing_packages
    from nnkit.pipeline import resolve, start

    spec = FORMATS[fmt]
    if missing_packages(spec):
        pytest.skip(f"{fmt}: {', '.join(missing_packages(spec))} not installed (pip install 'nnkit[{spec.extra}]')")
    resolved = resolve("perceptron", overrides=[*QUICK, "train.epochs=2"])
    run = start(resolved, stages=("train",), out=str(tmp_path / "run"))
    from nnkit import train

    model = train.load_model(run.model_file)
    x = np.random.default_rng(0).normal(size=(4, model.inputs[0].shape[1])).astype("float32")
    want = model.predict(x, verbose=0)
    artifact = tmp_path / spec.filename
    spec.write(run, resolved.task, model, artifact, tmp_path / "check.npz")
    if fmt == "tflite":
        import tensorflow as tf

        runner = tf.lite.Interpreter(model_path=str(artifact)).get_signature_runner()
        got = list(runner(**{list(runner.get_input_details())[0]: x}).values())[0]
    else:
        assert importlib.util.find_spec("onnxruntime")
        import onnxruntime as ort

        session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
