"""The tf.distribute strategies nnkit knows, registered: name, help, how to make one.

``train.strategy`` (nnkit.config) and ``--strategy`` (nnkit.cli) take their
choices and help from :data:`STRATEGIES`; ``nnkit.distribute`` makes the
strategy through ``make`` (once per process). Adding a strategy is one entry
here. Importing this module loads no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from nnkit.errors import NnkitError


@dataclass(frozen=True)
class Strategy:
    name: str
    help: str
    make: Callable  # make() -> tf.distribute.Strategy (TensorFlow imported inside)


def _default():
    import tensorflow as tf

    return tf.distribute.get_strategy()


def _mirrored():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def _multi_worker():
    import tensorflow as tf

    if not os.environ.get("TF_CONFIG"):
        raise NnkitError("train.strategy = 'multi_worker' needs the cluster in TF_CONFIG "
                         "(or try it locally: nnkit run RECIPE --strategy multi_worker --workers 2 --local)")
    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster, communication_options=options)
    except tf.errors.UnknownError as exc:
        if "Could not start gRPC server" not in str(exc):
            raise
        from nnkit.errors import PortTaken

        address = cluster.cluster_spec().task_address(cluster.task_type, cluster.task_id)
        raise PortTaken(f"{address}: this worker cannot listen there (the port is taken); choose another "
                        "port in TF_CONFIG (the --local launcher does so by itself)") from None


def _tpu():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError) as exc:
        raise NnkitError(f"train.strategy = 'tpu': no TPU found ({exc})") from None
    return tf.distribute.TPUStrategy(resolver)


STRATEGIES = {s.name: s for s in (
    Strategy("default", "one device (no distribution)", _default),
    Strategy("mirrored", "synchronous data parallelism over this machine's GPUs (or split CPUs)", _mirrored),
    Strategy("multi_worker", "synchronous data parallelism over the workers in TF_CONFIG (or --workers N "
                             "--local)", _multi_worker),
    Strategy("tpu", "a TPU found by TPUClusterResolver", _tpu),
)}
