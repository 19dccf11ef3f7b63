"""Write a run's model out as SavedModel / .keras / ONNX / TFLite, each checked by reload.

The formats (file name, packages, writer, reload check) are registered in
``nnkit.export_formats``. The task owns its serving function (raw inputs in, readable outputs out);
this module only writes it, then reloads the artifact **in a fresh Python
process** (``python -m nnkit.export_check``) and compares its outputs with
the in-memory ones on the same example inputs. Everything is written to a
temporary folder first and renamed into ``export/`` only after the check
passes, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nnkit.errors import NnkitError
from nnkit.export_formats import get_format, missing_packages
from nnkit.runs import PARTIAL, check_replaceable, sweep_partial


def export(run, task, fmt: str = "saved_model", model=None) -> Path:
    """Export ``run``'s model in ``fmt``; return the final path."""
    spec = get_format(fmt)
    _check_optional_packages(spec)
    from nnkit.train import load_model

    if model is None:
        if not run.model_file.is_file():
            raise NnkitError(f"{run.path}: no model.keras yet (train the run first)")
        model = load_model(run.model_file, task.custom_objects())
    target = run.export_dir / spec.filename
    if target.is_symlink() or not target.is_dir():  # a FIFO, a device or a socket there is never replaced
        check_replaceable(target)
    run.export_dir.mkdir(parents=True, exist_ok=True)
    sweep_partial(run.export_dir)  # what an export killed half-way left behind
    with tempfile.TemporaryDirectory(prefix=f"{PARTIAL}{fmt}-", dir=run.export_dir) as work:
        work = Path(work)
        artifact = work / spec.filename
        examples_file = work / "check.npz"
        spec.write(run, task, model, artifact, examples_file)
        check_in_fresh_process(fmt, artifact, examples_file)
        _replace(artifact, target)
    return target


def _check_optional_packages(spec) -> None:
    missing = missing_packages(spec)
    if missing:
        raise NnkitError(f"export format {spec.name!r} needs {', '.join(missing)}: "
                         f"pip install {' '.join(missing)}  (or pip install 'nnkit[{spec.extra}]')")


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; an existing target is set aside, then removed."""
    old = target.with_name(f"{PARTIAL}{target.name}.old")
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    if target.exists():
        target.rename(old)
    source.rename(target)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


# -- the fresh-process check -------------------------------------------------------------

def check_in_fresh_process(fmt: str, artifact: Path, examples_file: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "nnkit.export_check", fmt, str(artifact),
                             str(examples_file)], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise NnkitError(f"export check failed: the reloaded {fmt} artifact does not reproduce the "
                         f"in-memory outputs ({detail}); nothing was written to export/")
