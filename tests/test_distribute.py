"""Distributed training: strategy selection, mirrored on two logical CPU devices, two local workers.

TensorFlow fixes its devices and collective ops when it starts, so everything
that needs two logical CPUs or a cluster runs in fresh processes.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest
from helpers import ROOT, check_run_folder, fresh_python, nnkit_subprocess

from nnkit import distribute
from nnkit.errors import NnkitError

TINY = ["--set", "train.epochs=2", "--quiet"]


def nnkit_two_cpus(*args, timeout: int = 600):
    """``python -m nnkit.cli ARGS`` with the CPU split into two logical devices."""
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), distribute.CPU_DEVICES_ENV: "2"}
    result = subprocess.run([sys.executable, "-m", "nnkit.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


# -- selection, no TensorFlow start-up needed ------------------------------------------------

def test_default_strategy_is_tensorflows_default():
    import tensorflow as tf

    strategy = distribute.strategy_from_config({"strategy": "default"})
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_unknown_strategy_and_missing_cluster_are_user_errors(monkeypatch):
    with pytest.raises(NnkitError, match="unknown train.strategy"):
        distribute.strategy_from_config({"strategy": "ring"})
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(distribute, "_STRATEGIES", {})
    with pytest.raises(NnkitError, match="TF_CONFIG"):
        distribute.strategy_from_config({"strategy": "multi_worker"})


def test_cpu_devices_env_is_checked(monkeypatch):
    monkeypatch.setenv(distribute.CPU_DEVICES_ENV, "two")
    with pytest.raises(NnkitError, match="whole number"):
        distribute.configure_cpu_devices()


def test_chief_is_worker_zero_or_the_chief_task(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    ports = distribute.free_ports(2)
    assert len(set(ports)) == 2
    monkeypatch.setenv("TF_CONFIG", distribute.tf_config(ports, 0))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", distribute.tf_config(ports, 1))
    assert not distribute.is_chief()
    config = json.loads(distribute.tf_config(ports, 1))
    assert config["cluster"]["worker"] == [f"localhost:{p}" for p in ports]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief()


def test_workers_without_local_or_with_another_strategy_is_a_usage_error(cli_run, tmp_path):
    result = cli_run("run", "digits", "--workers", "2", "--out", tmp_path / "r", expect=2)
    assert "--local" in result.output
    result = cli_run("run", "digits", "--strategy", "mirrored", "--workers", "2", "--local",
                     "--out", tmp_path / "r", expect=2)
    assert "multi_worker" in result.output
    assert not (tmp_path / "r").exists()


# -- two local worker processes, nnkit's own step engine (the fast check) ---------------------

WORKER = """
import json, os, sys
from nnkit import distribute
from nnkit.errors import PortTaken
try:
    distribute.prepare({"strategy": "multi_worker"})
    strategy = distribute.strategy_from_config({"strategy": "multi_worker"})
except PortTaken:
    sys.exit(PortTaken.exit_code)  # another program took the port after it was chosen: the test starts again
import keras, numpy as np, tensorflow as tf
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5, 0.0], "float32") > 0).astype("int32")
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32 * strategy.num_replicas_in_sync)
with strategy.scope():
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="h")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="out")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
history = distribute.fit_multi_worker(strategy, model, ds, ds.take(2), {"epochs": 4, "verbose": False}, [])
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "chief": distribute.is_chief(),
                  "kind": type(model.weights[0].value).__name__, "history": history.history,
                  "kernel": np.asarray(model.weights[0].numpy()).tolist()}))
"""


def test_two_local_workers_train_in_step_with_nnkits_engine(tmp_path):
    import subprocess
    import sys

    from nnkit.errors import PortTaken

    for attempt in range(distribute.PORT_ATTEMPTS):  # a port taken between choice and use: new ports
        ports = distribute.free_ports(2)
        procs = []
        for index in range(2):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
                   "TF_CONFIG": distribute.tf_config(ports, index)}
            env.pop(distribute.CPU_DEVICES_ENV, None)
            procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        while all(p.poll() is None for p in procs):  # until one ends (its partner may wait for it forever)
            time.sleep(0.1)
        if any(p.poll() == PortTaken.exit_code for p in procs):
            for p in procs:
                p.kill()
                p.communicate()
            continue
        results = [p.communicate(timeout=300) for p in procs]
        break
    outputs = []
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    chief, worker = outputs
    assert chief["replicas"] == worker["replicas"] == 2
    assert chief["chief"] and not worker["chief"]
    assert "MirroredVariable" in chief["kind"]  # the collective strategy's variables
    assert set(chief["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert chief["history"]["loss"] == pytest.approx(worker["history"]["loss"], rel=1e-5)  # one model, in sync
    import numpy as np

    np.testing.assert_allclose(chief["kernel"], worker["kernel"], rtol=1e-5)
    assert chief["history"]["loss"][-1] < chief["history"]["loss"][0]  # it learns
    assert chief["history"]["accuracy"][-1] > 0.8


# -- mirrored on two logical CPU devices -------------------------------------------------------

def test_mirrored_scope_mirrors_variables_and_scales_the_batch():
    out = fresh_python("""
        import json, os
        os.environ["NNKIT_CPU_DEVICES"] = "2"
        from nnkit import distribute, train
        from nnkit.pipeline import resolve
        cfg = {"strategy": "mirrored"}
        distribute.prepare(cfg)
        strategy = distribute.strategy_from_config(cfg)
        import keras, tensorflow as tf
        resolved = resolve("digits", overrides=["train.strategy='mirrored'"])
        task = resolved.task
        prepared = task.load(resolved.cfg)
        with strategy.scope():
            model = task.build_model(resolved.cfg, prepared)
        kinds = {type(v.value).__name__ for v in model.weights}
        per_device = {len(v.value.values) for v in model.trainable_weights}
        train_ds, _ = task.datasets(resolved.cfg, prepared, 32 * strategy.num_replicas_in_sync)
        x, y = next(iter(train_ds))
        dist = next(iter(strategy.experimental_distribute_dataset(train_ds)))
        local = [int(t.shape[0]) for t in strategy.experimental_local_results(dist[0])]
        print(json.dumps({"cpus": len(tf.config.list_logical_devices("CPU")),
                          "replicas": strategy.num_replicas_in_sync, "kinds": sorted(kinds),
                          "per_device": sorted(per_device), "global": int(x.shape[0]), "local": local}))
    """)
    info = json.loads(out.strip().splitlines()[-1])
    assert info["cpus"] == 2 and info["replicas"] == 2
    assert "MirroredVariable" in info["kinds"]
    assert info["per_device"] == [2]  # one copy of every trainable variable per device
    assert info["global"] == 64 and info["local"] == [32, 32]  # batch_size x replicas, split evenly


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "run"
    nnkit_two_cpus("run", "digits", "--strategy", "mirrored", "--out", out, *TINY, timeout=400)
    return out


@pytest.fixture(scope="module")
def multi_worker_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("multi") / "run"
    result = nnkit_subprocess("run", "digits", "--strategy", "multi_worker", "--workers", "2", "--local",
                              "--out", out, *TINY, timeout=600)
    assert result.stdout.strip().splitlines()[-1] == str(out)  # the run folder, last, as always
    return out


def _history(path: Path) -> list[dict]:
    with open(path / "history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_mirrored_run_on_two_cpu_devices_finishes_and_exports(mirrored_run):
    metrics = check_run_folder(mirrored_run, "digits", "image_classification")
    meta = json.loads((mirrored_run / "meta.json").read_text())
    assert meta["strategy"] == "mirrored" and meta["replicas"] == 2 and meta["global_batch_size"] == 64
    # two epochs of the GAP-head CNN reach 0.36-0.46 (majority class: 0.1); quality within 0.03 of the
    # default strategy after 8 epochs is test_every_strategy_reaches_default_quality
    assert metrics["model"]["accuracy"] > 0.25


@pytest.mark.slow
def test_two_local_workers_finish_and_export(multi_worker_run, tmp_path):
    metrics = check_run_folder(multi_worker_run, "digits", "image_classification")
    meta = json.loads((multi_worker_run / "meta.json").read_text())
    assert meta["strategy"] == "multi_worker" and meta["replicas"] == 2 and meta["global_batch_size"] == 64
    # two epochs of the GAP-head CNN reach 0.36-0.46 (majority class: 0.1); quality within 0.03 of the
    # default strategy after 8 epochs is test_every_strategy_reaches_default_quality
    assert metrics["model"]["accuracy"] > 0.25
    assert [row["epoch"] for row in _history(multi_worker_run)] == [0, 1]
    assert not (multi_worker_run / "workers").exists()  # the other worker wrote elsewhere
    # the export serves in a fresh process, same answers as the Keras model
    out = fresh_python("""
        import sys, json, numpy as np, keras, tensorflow as tf
        run = sys.argv[1]
        images = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 1)).astype("uint8")
        m = keras.saving.load_model(run + "/model.keras", safe_mode=True)
        s = tf.saved_model.load(run + "/export/saved_model")
        out = s.signatures["serving_default"](images=tf.constant(images))
        print(json.dumps({"keras": m.predict(images.astype("float32"), verbose=0).tolist(),
                          "saved": out["probabilities"].numpy().tolist()}))
    """, multi_worker_run)
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["saved"]) == 6
    import numpy as np

    np.testing.assert_allclose(result["saved"], result["keras"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_multi_worker_engine_matches_keras_fit_under_mirrored(mirrored_run, multi_worker_run):
    """Same global batch, same seed: nnkit's distributed step and model.fit trace the same first epoch."""
    mirrored, multi = _history(mirrored_run), _history(multi_worker_run)
    assert set(mirrored[0]) == set(multi[0])  # same logs: loss, metrics, val_ metrics
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert multi[0][key] == pytest.approx(mirrored[0][key], rel=2e-3, abs=2e-3), key


# -- quality: the same as the default strategy, within noise (slow) ------------------------------

@pytest.mark.slow
def test_every_strategy_reaches_default_quality(tmp_path):
    default = tmp_path / "default"
    nnkit_subprocess("run", "digits", "--out", default, "--set", "train.epochs=8", "--quiet", timeout=600)
    mirrored = tmp_path / "mirrored"
    nnkit_two_cpus("run", "digits", "--strategy", "mirrored", "--out", mirrored, "--set", "train.epochs=8",
                   "--quiet", timeout=600)
    multi = tmp_path / "multi"
    nnkit_subprocess("run", "digits", "--strategy", "multi_worker", "--workers", "2", "--local", "--out", multi,
                     "--set", "train.epochs=8", "--quiet", timeout=900)
    scores = {name: json.loads((path / "metrics.json").read_text())["model"]["accuracy"]
              for name, path in (("default", default), ("mirrored", mirrored), ("multi", multi))}
    for name in ("mirrored", "multi"):
        assert scores[name] >= scores["default"] - 0.03, scores


# -- speed knobs, end to end (slow) ---------------------------------------------------------------

@pytest.mark.slow
def test_jit_mixed_precision_and_steps_per_execution_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    nnkit_subprocess("run", "digits", "--out", out, "--quiet", "--set", "train.epochs=3",
                     "--set", "train.jit_compile=true", "--set", "train.mixed_precision=true",
                     "--set", "train.steps_per_execution=4", timeout=900)
    metrics = check_run_folder(out, "digits", "image_classification")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["precision"] in ("mixed_bfloat16", "mixed_float16")
    assert metrics["model"]["accuracy"] > 0.5
