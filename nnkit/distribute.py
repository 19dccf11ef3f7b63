"""tf.distribute strategies chosen by ``train.strategy``.

``default``: TensorFlow's default (one device). ``mirrored``: every local GPU,
or every logical CPU device when there is no GPU. ``multi_worker``: the
cluster in ``TF_CONFIG``. ``tpu``: a TPU resolver (wired, untestable here).
"""

from __future__ import annotations

import tensorflow as tf

from nnkit.errors import NnkitError


def strategy_from_config(train_cfg: dict) -> tf.distribute.Strategy:
    name = train_cfg["strategy"]
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as exc:
            raise NnkitError(f"train.strategy = 'tpu': no TPU found ({exc})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise NnkitError(f"unknown train.strategy {name!r}")


def fit_multi_worker(strategy, model, train_ds, val_ds, train_cfg, callbacks):
    raise NnkitError("train.strategy = 'multi_worker' is not available yet")
