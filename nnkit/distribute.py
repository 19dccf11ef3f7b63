"""tf.distribute strategies chosen by ``train.strategy``, and nnkit's multi-worker step engine.

``default``: TensorFlow's default (one device). ``mirrored``: every local GPU,
or every logical CPU device when there is no GPU (``NNKIT_CPU_DEVICES=2``
splits the CPU into two logical devices before TensorFlow starts, so mirrored
training can be tried and tested on a laptop). ``multi_worker``: the cluster
in ``TF_CONFIG``. ``tpu``: a TPU resolver (wired, untestable here).

One trainer, two step engines (``nnkit.train._engine_for``): ``model.fit``
everywhere it works, and :func:`fit_multi_worker` under
``MultiWorkerMirroredStrategy``, where Keras 3's ``fit`` fails
(keras-team/keras#20585: "Attempt to convert a value (PerReplica...)").
The multi-worker engine runs ``strategy.run`` inside a ``tf.function`` on a
distributed dataset with ``tf.nn.compute_average_loss`` and the Keras
optimizer's ``apply_gradients``, and drives the very same Keras callbacks as
``fit`` (progress, validation, early stopping, checkpoints, RunCheckpoint
resume, CSV history), so a user sees the same run either way.

:func:`launch_local` starts an N-worker cluster on localhost ports
(``nnkit run RECIPE --strategy multi_worker --workers 2 --local``): worker 0 is
the chief and writes the run folder; the others train in scratch folders that
are removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnkit.errors import NnkitError, PortTaken
from nnkit.strategies import STRATEGIES

CPU_DEVICES_ENV = "NNKIT_CPU_DEVICES"

_STRATEGIES: dict = {}  # name -> strategy, created once per process


# -- devices and strategies (before TensorFlow initialises) -------------------------------

def progress_verbosity(train_cfg: dict) -> int:
    """Keras ``verbose``: off, a bar on a terminal, one line per epoch in logs and CI."""
    if not train_cfg["verbose"]:
        return 0
    return 1 if sys.stdout.isatty() else 2


def configure_cpu_devices(count: int | None = None) -> int:
    """Split the CPU into ``count`` logical devices (default: ``$NNKIT_CPU_DEVICES``).

    Must run before TensorFlow initialises its runtime; returns the number of
    logical CPU devices in effect (1 when nothing was split). Ignored on a
    machine with GPUs, where ``mirrored`` uses the GPUs.
    """
    import tensorflow as tf

    if count is None:
        raw = os.environ.get(CPU_DEVICES_ENV, "").strip()
        if not raw:
            return 1  # nothing asked; listing logical devices here would start TensorFlow
        try:
            count = int(raw)
        except ValueError:
            raise NnkitError(f"{CPU_DEVICES_ENV}={raw!r}: expected a whole number of logical CPU devices") from None
    if count < 1:
        raise NnkitError(f"{CPU_DEVICES_ENV}={count}: expected at least 1")
    if tf.config.list_physical_devices("GPU"):
        return 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    if count == 1:
        return 1
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return count
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:  # TensorFlow already started in this process
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise NnkitError(f"{CPU_DEVICES_ENV}={count}: TensorFlow had already started with {have} CPU "
                             "device(s); set it in the environment before starting nnkit") from None
    return count


def prepare(train_cfg: dict) -> None:
    """Everything that must happen before the first TensorFlow op (data loading included).

    Splits the CPU when asked, and creates a multi-worker strategy early:
    collective ops must be configured at program start-up.
    """
    name = train_cfg.get("strategy", "default")
    if name == "default" and not os.environ.get(CPU_DEVICES_ENV):
        return
    configure_cpu_devices()
    if name == "multi_worker":
        strategy_from_config(train_cfg)


def strategy_from_config(train_cfg: dict):
    """The configured strategy (nnkit.strategies), made once per process."""
    name = train_cfg["strategy"]
    if name not in STRATEGIES:
        raise NnkitError(f"unknown train.strategy {name!r}")
    if name == "default":
        return STRATEGIES[name].make()
    if name not in _STRATEGIES:
        _STRATEGIES[name] = STRATEGIES[name].make()
    return _STRATEGIES[name]


def is_chief() -> bool:
    """True unless TF_CONFIG names this process as a worker other than worker 0 (or the chief)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    task = json.loads(raw).get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    has_chief = "chief" in json.loads(raw).get("cluster", {})
    return kind == "worker" and index == 0 and not has_chief


# -- the multi-worker step engine -----------------------------------------------------------

def _per_example_loss(model, y, y_pred, sample_weight):
    """Per-example losses for ``tf.nn.compute_average_loss``, or None when the compiled
    loss is not a plain single mean-reduced loss (then Keras's own loss is used)."""
    import keras
    import tensorflow as tf

    loss = model.loss
    if sample_weight is not None or isinstance(y, (dict, list, tuple)) or isinstance(y_pred, (dict, list, tuple)):
        return None
    if getattr(y_pred, "_keras_mask", None) is not None:
        return None
    if isinstance(loss, str):
        fn = keras.losses.get(loss)
        if isinstance(fn, keras.losses.Loss):
            return None
    elif isinstance(loss, keras.losses.LossFunctionWrapper) and loss.reduction == "sum_over_batch_size":
        fn = loss.call
    else:
        return None
    values = fn(y, tf.cast(y_pred, "float32"))
    values = tf.cast(values, "float32")
    if values.shape.rank is None or values.shape.rank == 0:
        return None
    if values.shape.rank > 1:
        values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
    return values


def _batch_size(x):
    import tensorflow as tf

    first = tf.nest.flatten(x)[0]
    return tf.shape(first)[0]


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def fit_multi_worker(strategy, model, train_ds, val_ds, train_cfg, callbacks):
    """Train ``model`` (built and compiled in ``strategy.scope()``) with nnkit's own distributed step.

    Same callbacks and logs as ``model.fit``; returns the model's History.
    """
    import keras
    import tensorflow as tf
    from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight


    optimizer = model.optimizer
    replicas = strategy.num_replicas_in_sync
    per_execution = int(train_cfg.get("steps_per_execution", 1) or 1)
    with strategy.scope():
        # build the loss and metric state from one batch, as fit does (fit draws that batch from a
        # first iterator too, so the shuffle order of every epoch stays the one model.fit sees)
        model._symbolic_build(data_batch=next(iter(train_ds)))
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    loss_tracker = model._loss_tracker
    compile_metrics = model._compile_metrics

    def replica_train(data):
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            per_example = _per_example_loss(model, y, y_pred, sample_weight)
            if per_example is not None:
                loss = tf.nn.compute_average_loss(per_example)  # sum / global batch
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n([tf.cast(v, "float32") for v in model.losses]))
            else:  # Keras's own loss; already divided by the replicas (keras.losses.Loss.__call__)
                loss = model.compute_loss(x, y, y_pred, sample_weight, training=True)
            loss_tracker.update_state(loss * replicas, sample_weight=_batch_size(x))
            scaled = optimizer.scale_loss(loss)
        weights = model.trainable_weights
        gradients = tape.gradient(scaled, weights)
        optimizer.apply_gradients(zip(gradients, weights))
        if compile_metrics is not None:
            compile_metrics.update_state(y, y_pred, sample_weight)

    def replica_test(data):
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        y_pred = model(x, training=False)
        loss = model.compute_loss(x, y, y_pred, sample_weight, training=False)
        loss_tracker.update_state(loss * replicas, sample_weight=_batch_size(x))
        if compile_metrics is not None:
            compile_metrics.update_state(y, y_pred, sample_weight)

    def looped(replica_fn):
        @tf.function
        def run(iterator):
            done = tf.constant(0)
            for _ in tf.range(per_execution):
                optional = iterator.get_next_as_optional()
                if not optional.has_value():
                    break
                strategy.run(replica_fn, args=(optional.get_value(),))
                done += 1
            return done
        return run

    train_step, test_step = looped(replica_train), looped(replica_test)
    dist_train = strategy.experimental_distribute_dataset(train_ds)
    dist_val = strategy.experimental_distribute_dataset(val_ds) if val_ds is not None else None
    cardinality = int(train_ds.cardinality().numpy())
    verbose = progress_verbosity(train_cfg)
    epochs = int(train_cfg["epochs"])
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose,
        epochs=epochs, steps=cardinality if cardinality > 0 else None)

    def run_epoch(dataset, step_fn, on_begin, on_end):
        iterator, step = iter(dataset), 0
        while True:
            on_begin(step)
            done = int(step_fn(iterator))
            step += done
            if done:
                on_end(step - 1, {})
            if done < per_execution or model.stop_training:
                return

    def results():
        return {k: _to_float(v) for k, v in model.get_metrics_result().items()}

    model.stop_training = False
    model._initial_epoch = None
    callback_list.on_train_begin()
    initial_epoch = model._initial_epoch or 0
    logs = None
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        run_epoch(dist_train, train_step, callback_list.on_train_batch_begin, callback_list.on_train_batch_end)
        epoch_logs = results()
        if dist_val is not None:
            model.reset_metrics()
            callback_list.on_test_begin()
            run_epoch(dist_val, test_step, callback_list.on_test_batch_begin, callback_list.on_test_batch_end)
            val_logs = results()
            callback_list.on_test_end(val_logs)
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        logs = epoch_logs
        if model.stop_training:
            break
    if epochs > 0:
        optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=logs)
    return model.history


# -- the local launcher ------------------------------------------------------------------------

def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on localhost (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def launch_local(command: str, recipe: str, args: list[str], workers: int, out: str | None,
                 runs_root: str = "runs", timeout: float | None = None, echo=print) -> tuple[int, str | None]:
    """Run ``nnkit <command> RECIPE ARGS --strategy multi_worker`` as ``workers`` local processes.

    Worker 0 (the chief) runs ``command`` into the run folder (``out`` or a new
    ``runs/<recipe>/<id>``) with its output passed through; workers 1.. run
    ``train`` into scratch folders (removed on success, kept and named on
    failure). If any process fails, the others are stopped. Returns (exit
    code, run folder).
    """
    from nnkit.registry import load_recipe
    from nnkit.runs import create_run

    if workers < 1:
        raise NnkitError(f"--workers {workers}: expected at least 1")
    name = load_recipe(recipe).name
    run_path = str(create_run(name, out=out, root=runs_root).path)
    for attempt in range(PORT_ATTEMPTS):
        # The ports are free when chosen, but another program may take one before a worker listens
        # on it; that worker then exits with PortTaken's code before writing anything, and the
        # cluster starts again on new ports.
        code, failed = _run_cluster(command, recipe, args, workers, run_path, timeout, echo)
        if code != PortTaken.exit_code:
            return code, run_path
        echo(f"multi-worker run: worker {failed}'s port was taken; starting again on new ports")
        shutil.rmtree(run_path, ignore_errors=True)  # empty or new when we began: only this attempt's files
        create_run(name, out=run_path)
    return 1, run_path


PORT_ATTEMPTS = 5


def _run_cluster(command, recipe, args, workers, run_path, timeout, echo) -> tuple[int, int | None]:
    """One start of the local cluster; returns (exit code, the first worker that failed)."""
    scratch = Path(tempfile.mkdtemp(prefix="nnkit-workers-"))
    ports = free_ports(workers)
    base = [sys.executable, "-m", "nnkit.cli"]
    procs, logs = [], []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(ports, index), "PYTHONUNBUFFERED": "1"}
        env.pop(CPU_DEVICES_ENV, None)  # one replica per worker process
        if index == 0:
            cmd = base + [command, recipe, *args, "--strategy", "multi_worker", "--out", run_path]
            log = None
        else:
            cmd = base + ["train", recipe, *args, "--strategy", "multi_worker", "--quiet",
                          "--out", str(scratch / f"worker-{index}")]
            log = open(scratch / f"worker-{index}.log", "w")
            logs.append(log)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE if index == 0 else log,
                                      stderr=None if index == 0 else subprocess.STDOUT, text=True))
    chief_lines = []
    started = time.monotonic()
    failed = None
    try:
        import threading

        def pump():
            for line in procs[0].stdout:
                chief_lines.append(line.rstrip("\n"))
                if line.rstrip("\n") != run_path:
                    echo(line.rstrip("\n"))
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        while any(p.poll() is None for p in procs):
            for index, p in enumerate(procs):
                if p.poll() not in (None, 0):
                    failed = failed if failed is not None else index
            if failed is not None:
                break
            if timeout is not None and time.monotonic() - started > timeout:
                failed = -1
                break
            time.sleep(0.2)
        for index, p in enumerate(procs):
            if p.poll() not in (None, 0) and failed is None:
                failed = index
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
    reader.join(timeout=5)
    if failed is not None and failed >= 0 and procs[failed].returncode == PortTaken.exit_code:
        shutil.rmtree(scratch, ignore_errors=True)
        return PortTaken.exit_code, failed
    if failed is not None:
        who = "timed out" if failed == -1 else f"worker {failed} failed (exit {procs[failed].returncode})"
        echo(f"multi-worker run: {who}; worker logs kept in {scratch}")
        return (procs[0].returncode or 1), failed
    shutil.rmtree(scratch, ignore_errors=True)
    return 0, None
