"""Image classification: digits, MNIST, image folders and .npz, with a CNN (or an MLP).

Baselines on the same split: majority class, logistic regression and an RBF
SVC on the flattened pixels. The SavedModel takes uint8 images of the
training size and returns probabilities, the class index and the class name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnkit.builders.cnn import CNN_OPTIONS
from nnkit.builders.mlp import MLP_OPTIONS
from nnkit.builders.options import build_from_config
from nnkit.config import Field, declared
from nnkit.errors import DataError
from nnkit.runs import fingerprint, write_predictions
from nnkit.tasks import classification as clf
from nnkit.tasks.base import Evaluation, Prepared, Task



class ImageClassificationTask(Task):
    name = "image_classification"
    schema = {
        "data": {
            "source": Field("digits", "bundled source (ignored when data.path is set)", choices=("digits", "mnist")),
            "test_fraction": Field(0.2, "held-out test share (stratified)", min=0.05, max=0.5),
            "val_fraction": Field(0.1, "validation share (stratified)", min=0.05, max=0.5),
            "image_size": Field([0, 0], "[height, width] to resize folder images to ([0, 0] = keep)", min=0,
                                min_items=2, max_items=2),
            "color_mode": Field("auto", "folder images", choices=("auto", "grayscale", "rgb")),
        },
        "model": {
            "arch": Field("cnn", "model family", choices=("cnn", "mlp")),
            **declared(CNN_OPTIONS, ("filters", "kernel_size", "convs_per_block", "pooling"), help_prefix="cnn: "),
            **declared(CNN_OPTIONS, ("norm", "activation", "dropout")),  # shared by cnn and mlp
            **declared(CNN_OPTIONS, ("dense_units", "head"), help_prefix="cnn: "),
            **declared(CNN_OPTIONS, ("head_dropout", "augment")),
            **declared(MLP_OPTIONS, ("depth", "width"), help_prefix="mlp: ", width=128),
        },
        "eval": {
            "baselines": Field(["majority", "logistic", "svc"], "classical baselines in the report",
                               item_type=str),
            "baseline_max_train": Field(20000, "subsample the baselines' training part above this size", min=100),
            "misclassified": Field(25, "misclassified test images shown in the grid", min=0),
        },
    }
    train_defaults = {"epochs": 30, "batch_size": 32, "patience": 6}

    # -- data ---------------------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        from nnkit.datasets.images import load_images

        data_cfg = cfg["data"]
        for name in cfg["eval"]["baselines"]:
            if name not in ("majority", "logistic", "svc"):
                raise DataError(f"eval.baselines: unknown baseline {name!r}; expected majority, logistic, svc")
        size = data_cfg["image_size"]
        if len(size) != 2:
            raise DataError(f"data.image_size: expected [height, width], received {size!r}")
        images = load_images(data_cfg["source"], data_cfg["path"], size if all(size) else None,
                             data_cfg["color_mode"])
        counts = np.bincount(images.y, minlength=len(images.class_names))
        if (counts == 0).any():
            raise DataError(f"{images.source}: class {images.class_names[int(np.argmin(counts))]!r} has no images")
        train, val, test = clf.stratified_split(images.y, test_fraction=data_cfg["test_fraction"],
                                                val_fraction=data_cfg["val_fraction"], seed=cfg["train"]["seed"])
        x, y = images.x, images.y
        height, width, channels = x.shape[1:]
        state = {"class_names": images.class_names, "height": int(height), "width": int(width),
                 "channels": int(channels)}
        summary = {"source": images.source, "images": len(x), "size": f"{height}x{width}x{channels}",
                   "classes": len(images.class_names), "train": len(train), "validation": len(val),
                   "test": len(test), "smallest class": int(counts.min()), "largest class": int(counts.max())}
        return Prepared(train=(x[train], y[train]), val=(x[val], y[val]), test=(x[test], y[test]), state=state,
                        summary=summary, fingerprint=fingerprint(x, y, train, val, test))

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        import tensorflow as tf

        def make(arrays, shuffle):
            x, y = arrays
            ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
            if shuffle:
                ds = ds.shuffle(len(x), seed=cfg["train"]["seed"], reshuffle_each_iteration=True)
            return ds.batch(batch_size).map(lambda a, b: (tf.cast(a, "float32"), b),
                                            num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

        return make(prepared.train, True), make(prepared.val, False)

    # -- model --------------------------------------------------------------------------
    def build_model(self, cfg: dict, prepared: Prepared):
        from nnkit.builders import build_cnn, build_mlp

        m, s = cfg["model"], prepared.state
        shape = (s["height"], s["width"], s["channels"])
        classes = len(s["class_names"])
        if m["arch"] == "mlp":
            import keras

            inputs = keras.Input(shape, name="image")
            scaled = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
            mlp = build_from_config(build_mlp, MLP_OPTIONS, m, shape, classes)
            return keras.Model(inputs, mlp(scaled), name="image_mlp")
        return build_from_config(build_cnn, CNN_OPTIONS, m, shape, classes)

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        x_test, y_test = prepared.test
        names = prepared.state["class_names"]
        probabilities = model.predict(x_test.astype("float32"), batch_size=256, verbose=0)
        predicted = probabilities.argmax(axis=1)
        headline, details = clf.classification_metrics(y_test, predicted, names, probabilities)
        x_train, y_train = prepared.train
        baselines = clf.sklearn_baselines(x_train / 255.0, y_train, x_test / 255.0, y_test, names,
                                          which=cfg["eval"]["baselines"],
                                          max_train=cfg["eval"]["baseline_max_train"], seed=cfg["train"]["seed"])
        return Evaluation(primary="accuracy", higher_is_better=True, model=headline, baselines=baselines,
                          details=details, verdict=clf.verdict("accuracy", headline, baselines),
                          tables=[("Per class (test)", clf.per_class_table(details))],
                          artifacts={"predicted": predicted, "probabilities": probabilities})

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        paths = [clf.plot_confusion(evaluation.details, run.plot_dir / "confusion_matrix.png")]
        limit = run.config()["eval"]["misclassified"] if run.config_file.exists() else 25
        paths.append(self._plot_misclassified(prepared, evaluation, run.plot_dir / "misclassified.png", limit))
        return [p for p in paths if p]

    def _plot_misclassified(self, prepared, evaluation, path, limit):
        from nnkit.report import pyplot, save_figure

        plt = pyplot()
        x_test, y_test = prepared.test
        predicted = evaluation.artifacts["predicted"]
        wrong = np.flatnonzero(predicted != y_test)[:limit]
        if not len(wrong):
            return None
        names = prepared.state["class_names"]
        cols = min(5, len(wrong))
        rows = int(np.ceil(len(wrong) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, i in zip(axes.ravel(), wrong):
            image = x_test[i]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray" if image.shape[-1] == 1 else None)
            ax.set_title(f"true {names[y_test[i]]}\npred {names[predicted[i]]}", fontsize=8)
        fig.suptitle("misclassified test images")
        fig.tight_layout()
        return save_figure(fig, path)

    # -- serving and prediction --------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        from nnkit.tasks.classification_serving import ImageClassifierServing

        rng = np.random.default_rng(0)
        example = rng.integers(0, 256, size=(3, state["height"], state["width"], state["channels"]), dtype=np.uint8)
        return ImageClassifierServing(model, state), {"classify": {"images": example}}

    def predict(self, ctx, inputs: list, options: dict) -> None:
        run, echo = ctx.run, ctx.echo
        from nnkit.datasets.images import IMAGE_EXTENSIONS, load_npz, read_image_file

        state = run.state()
        size, channels = (state["height"], state["width"]), state["channels"]
        if not inputs:
            raise DataError("predict: give image files, a folder of images, or an .npz with 'x'")
        names, images = [], []
        for item in inputs:
            path = Path(item)
            if path.is_dir():
                files = sorted(f for f in path.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
                if not files:
                    raise DataError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
                for f in files:
                    names.append(str(f))
                    images.append(read_image_file(f, size, channels))
            elif path.suffix.lower() == ".npz":
                x = _npz_images(path, load_npz)
                if x.shape[1:] != (size[0], size[1], channels):
                    raise DataError(f"{path}: images are {x.shape[1:]}, the model takes "
                                    f"{size[0]}x{size[1]}x{channels}")
                names += [f"{path.name}[{i}]" for i in range(len(x))]
                images += list(x)
            else:
                names.append(str(path))
                images.append(read_image_file(path, size, channels))
        outputs = ctx.call_endpoint("classify", images=np.stack(images).astype("uint8"))
        rows = [{"input": n, "class": c.decode() if isinstance(c, bytes) else str(c), "probability": float(p)}
                for n, c, p in zip(names, outputs["class_name"], outputs["probability"])]
        write_predictions(rows, options.get("out"), echo)


def _npz_images(path: Path, load_npz) -> np.ndarray:
    """Images of an .npz for prediction: 'x' only ('y' is not needed)."""
    with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive.files:
            raise DataError(f"{path}: missing array 'x' (images [N,H,W] or [N,H,W,C])")
        x = archive["x"]
    x = x[..., None] if x.ndim == 3 else x
    if x.dtype.kind == "f":
        x = np.round(x * 255.0 if x.max() <= 1.0 else x)
    return np.clip(x, 0, 255).astype("uint8")
