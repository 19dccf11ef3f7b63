"""One measured training run in a fresh process (called by bench/run_all.py; not for direct use).

    python bench/_child.py nnkit RECIPE OUT.json [--set KEY=VALUE ...]
    python bench/_child.py keras RECIPE OUT.json [--set KEY=VALUE ...]
    python bench/_child.py peak  -      OUT.json

``nnkit``: the recipe through nnkit's trainer (``nnkit.train.fit`` with all
its callbacks: early stopping, atomic checkpoints, best model, CSV history,
TensorBoard), then the SavedModel export and its serving latency.
``keras``: the plain-Keras reference in bench/reference/RECIPE.py: the same
model (the recipe's builder) on the same arrays (the task's split), trained by
hand the way a careful user would: a hand-written tf.data pipeline where the
reference gives one, ``compile`` + ``fit`` with EarlyStopping and a best-model
ModelCheckpoint. Data loading is not timed in either.
``peak``: the float32 matmul rate of this machine (the CNN fraction-of-peak).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_module(recipe: str):
    path = ROOT / "bench" / "reference" / f"{recipe}.py"
    sys.path.insert(0, str(path.parent))  # references may share helpers (mnist uses digits' pipeline)
    spec = importlib.util.spec_from_file_location(f"bench_reference_{recipe}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Timer:
    """A Keras callback: wall time of every epoch, steps, and the logs (the same object in both modes)."""

    def __new__(cls, target):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.target, self.epochs, self.steps = target, [], 0

            def on_train_begin(self, logs=None):
                self.start = time.perf_counter()

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_start, self.steps = time.perf_counter(), 0

            def on_train_batch_end(self, batch, logs=None):
                self.steps = batch + 1

            def on_epoch_end(self, epoch, logs=None):
                now = time.perf_counter()
                self.epochs.append({"seconds": now - self.epoch_start, "since_start": now - self.start,
                                    "steps": self.steps,
                                    "logs": {k: float(v) for k, v in (logs or {}).items()}})

        return _Timer()


def summarise(timer, batch_size: int, target, model) -> dict:
    import statistics

    epochs = timer.epochs
    steady = epochs[1:] or epochs  # the first epoch traces and compiles
    seconds = sum(e["seconds"] for e in steady)
    samples = sum(e["steps"] for e in steady) * batch_size
    # the median epoch: one epoch slowed by another tenant of a shared machine does not move it
    typical = statistics.median(e["seconds"] for e in steady)
    per_epoch = statistics.median(e["steps"] for e in steady) * batch_size
    reached = None
    if target:
        key, value, higher = target
        for e in epochs:
            got = e["logs"].get(key)
            if got is not None and (got >= value if higher else got <= value):
                reached = e["since_start"]
                break
    fwd = forward_flops(model)
    sps = per_epoch / typical if typical else None
    return {"epochs": len(epochs), "samples_per_s": sps,
            "samples_per_s_mean": samples / seconds if seconds else None, "time_to_target_s": reached,
            "epoch_seconds": [round(e["seconds"], 4) for e in epochs],
            "train_s": epochs[-1]["since_start"] if epochs else None,
            "final_logs": epochs[-1]["logs"] if epochs else {},
            "forward_flops_per_sample": fwd,
            "train_gflops": (3 * fwd * sps / 1e9) if (fwd and sps) else None}


def add_peak(result: dict, model) -> dict:
    """CNN recipes: the matmul peak measured in this process right after training (same load on a
    shared machine), and the training FLOP rate as a share of it."""
    import keras

    if result.get("train_gflops") and any(isinstance(layer, keras.layers.Conv2D)
                                          for layer in model._flatten_layers(include_self=False)):
        peak = run_peak(n=1024, repeats=30)["gflops_median"]
        result.update(peak_gflops=peak, fraction_of_peak=result["train_gflops"] / peak)
    return result


def forward_flops(model) -> int | None:
    """Multiply-adds x 2 of the convolution and dense layers, per sample (training ~ 3x this)."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        try:
            out_shape = layer.output.shape
            in_shape = layer.input.shape
        except (AttributeError, ValueError):
            continue
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += 2 * out_shape[1] * out_shape[2] * kh * kw * in_shape[-1] * layer.filters // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            positions = 1
            for d in in_shape[1:-1]:
                positions *= d or 1
            total += 2 * positions * in_shape[-1] * layer.units
    return total or None


def latency(saved_model_dir: Path, examples: dict, batches=(1, 64), repeats: int = 200) -> dict:
    """p50/p99 latency and throughput of the SavedModel's default endpoint at each batch size."""
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    name, inputs = next(iter(examples.items()))
    fn = getattr(loaded, name)
    out = {"endpoint": name}
    for batch in batches:
        feed = {k: tf.constant(np.resize(np.asarray(v), (batch, *np.asarray(v).shape[1:]))
                               if np.ndim(v) else np.asarray(v))  # scalars (k, temperature) stay scalars
                for k, v in inputs.items()}
        for _ in range(10):
            fn(**feed)
        times = []
        for _ in range(repeats if batch == 1 else max(20, repeats // 4)):
            t = time.perf_counter()
            result = fn(**feed)
            _ = [np.asarray(v) for v in tf.nest.flatten(result)]
            times.append(time.perf_counter() - t)
        times = np.asarray(times) * 1000
        out[f"batch{batch}"] = {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                                "samples_per_s": float(batch / np.median(times) * 1000)}
    return out


def setup(recipe: str, overrides: list[str]):
    from nnkit.pipeline import _quiet_tensorflow, resolve

    _quiet_tensorflow()
    ref = reference_module(recipe)
    # both sides quiet (no progress bar), a fixed number of epochs from the reference, then the user's --set
    base = ["train.verbose=false"] + list(getattr(ref, "OVERRIDES", []))
    resolved = resolve(recipe, overrides=base + overrides)
    return ref, resolved


def run_nnkit(recipe: str, overrides: list[str]) -> dict:
    from nnkit import config as config_mod
    from nnkit import train
    from nnkit.export import export
    from nnkit.runs import base_meta, create_run, write_json, write_text

    ref, resolved = setup(recipe, overrides)
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    work = Path(tempfile.mkdtemp(prefix="nnkit-bench-"))
    run = create_run(recipe, out=work / "run")
    write_text(run.config_file, config_mod.to_toml(cfg))
    write_json(run.meta_file, base_meta(recipe, task.name, cfg, ["bench"]))
    write_json(run.state_file, prepared.state)
    timer = Timer(getattr(ref, "TARGET", None))
    model = train.fit(task, cfg, prepared, run, extra_callbacks=[timer])
    result = summarise(timer, cfg["train"]["batch_size"], getattr(ref, "TARGET", None), model)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    add_peak(result, model)
    target = export(run, task, "saved_model", model)
    _, examples = task.serving(model, run.state(), run.config())
    result["inference"] = latency(target, examples)
    return result


def run_keras(recipe: str, overrides: list[str]) -> dict:
    import keras

    from nnkit import train

    ref, resolved = setup(recipe, overrides)
    task, cfg = resolved.task, resolved.cfg
    t = cfg["train"]
    prepared = task.load(cfg)
    keras.utils.set_random_seed(int(t["seed"]))
    train.apply_precision(t)  # the same dtype policy a user would set by hand
    batch = int(t["batch_size"])
    if hasattr(ref, "pipeline"):
        train_ds, val_ds = ref.pipeline(prepared, cfg, batch)
    else:  # the task's own tf.data pipeline: the reference then measures the trainer around it
        train_ds, val_ds = task.datasets(cfg, prepared, batch)
    steps = int(train_ds.cardinality().numpy()) if train_ds.cardinality() > 0 else 100
    model = task.build_model(cfg, prepared)
    jit = t["jit_compile"]
    model.compile(optimizer=train.make_optimizer(t, steps), jit_compile=jit if isinstance(jit, bool) else "auto",
                  steps_per_execution=t["steps_per_execution"], **task.compile_kwargs(cfg, prepared))
    work = Path(tempfile.mkdtemp(prefix="keras-bench-"))
    monitor = "val_loss" if val_ds is not None else "loss"
    timer = Timer(getattr(ref, "TARGET", None))
    callbacks = [keras.callbacks.ModelCheckpoint(str(work / "best.keras"), monitor=monitor, save_best_only=True),
                 timer]
    if t["early_stopping"]:
        callbacks.insert(0, keras.callbacks.EarlyStopping(monitor=monitor, patience=t["patience"],
                                                          restore_best_weights=True))
    if t["ema"]:  # first: validate, stop early and checkpoint on the averaged weights, as nnkit does
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    model.fit(train_ds, validation_data=val_ds, epochs=t["epochs"], callbacks=callbacks, verbose=0, shuffle=False)
    result = summarise(timer, batch, getattr(ref, "TARGET", None), model)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return add_peak(result, model)


def run_peak(n: int = 2048, repeats: int = 10) -> dict:
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    for _ in range(3):
        matmul(a, b).numpy()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        matmul(a, b).numpy()
        rates.append(2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    rates.sort()
    return {"matmul_n": n, "gflops_median": rates[len(rates) // 2], "gflops_best": rates[-1],
            "devices": [d.name for d in tf.config.list_logical_devices()]}


def main(argv):
    mode, recipe, out = argv[:3]
    overrides = []
    rest = argv[3:]
    while rest:
        flag, value, *rest = rest
        if flag != "--set":
            raise SystemExit(f"unknown argument {flag}")
        overrides.append(value)
    result = {"peak": run_peak, "nnkit": lambda: run_nnkit(recipe, overrides),
              "keras": lambda: run_keras(recipe, overrides)}[mode]()
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
