"""Plain-Keras reference for the digits recipe: the pipeline a careful user writes by hand.

The model is the recipe's (``build_cnn`` via the task, so both sides train the
same layers); the data are the task's train/validation arrays (uint8 images).
"""

TARGET = ("val_accuracy", 0.95, True)  # (log key, value, higher is better): the time-to-quality mark
OVERRIDES = ["train.epochs=10", "train.patience=100"]  # a fixed number of epochs on both sides


def pipeline(prepared, cfg, batch_size):
    import tensorflow as tf

    def make(arrays, shuffle):
        x, y = arrays
        ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if shuffle:
            ds = ds.shuffle(len(x), seed=cfg["train"]["seed"], reshuffle_each_iteration=True)
        cast = tf.autograph.experimental.do_not_convert(lambda a, b: (tf.cast(a, tf.float32), b))
        ds = ds.batch(batch_size).map(cast, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    return make(prepared.train, True), make(prepared.val, False)
