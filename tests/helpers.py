"""Test helpers shared by every test file: fresh processes and run-folder checks.

Import with ``from helpers import fresh_python, nnkit_subprocess, check_run_folder``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str, *args, timeout: int = 300) -> str:
    """Run ``code`` in a new Python process (no state shared with the tests); return stdout."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                            text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise AssertionError(f"fresh process failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def sigint_as_on_a_terminal() -> None:
    """Give SIGINT its default action (as a terminal's Ctrl-C has); a ``preexec_fn`` for Ctrl-C tests.

    A test run started in the background (``cmd &``, nohup, some CI runners) inherits SIGINT
    *ignored* (POSIX), and Python then keeps ignoring it: a Ctrl-C test would see its signal vanish.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def nnkit_subprocess(*args, timeout: int = 600, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m nnkit.cli ...`` as a user would, in a separate process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "nnkit.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, env=env, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"nnkit {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def check_run_folder(path: Path, recipe: str, task: str) -> dict:
    """The layout and metrics.json shape every finished run must have; returns metrics."""
    path = Path(path)
    for name in ("config.toml", "meta.json", "state.json", "model.keras", "history.csv", "metrics.json",
                 "report.md"):
        assert (path / name).is_file(), f"{name} missing from {path}"
    assert (path / "export" / "saved_model" / "saved_model.pb").is_file()
    assert (path / "plots").is_dir() and any((path / "plots").glob("*.png"))
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["recipe"] == recipe and metrics["task"] == task
    assert metrics["primary"] in metrics["model"]
    assert isinstance(metrics["higher_is_better"], bool)
    assert metrics["baselines"], "every report shows baselines beside the model"
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "finished"
    assert meta["stages"] == ["train", "evaluate", "report", "export"]
    return metrics


def own_copy(run: Path, tmp_path: Path) -> Path:
    """A private copy of a module-wide run folder, for a test that rewrites it (export, evaluate,
    report): the shared folder stays as every other test expects it, whatever the order."""
    import shutil

    copy = Path(tmp_path) / Path(run).name
    shutil.copytree(run, copy, symlinks=True)
    (copy / ".lock").unlink(missing_ok=True)
    return copy
