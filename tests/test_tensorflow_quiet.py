"""The first line on the terminal is nnkit's: exit-2 errors are one line on the real standard error.

In-process tests never see TensorFlow's start-up chatter (C++ logging written
straight to file descriptor 2), so this runs the class-1 cases of the
bad-input table (one per task, each failing after TensorFlow has loaded) in
one fresh Python process, with file descriptor 2 of each command pointed at
its own file. The first command is the one that loads TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

DRIVER = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from bad_input_cases import CASES_13
from nnkit.cli import main

work, results = Path(sys.argv[1]), []
for case in [c for c in CASES_13 if c.klass == 1]:
    folder = work / case.id
    folder.mkdir()
    args = case.setup(folder)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(folder / "stderr.txt", "w") as capture:
        os.dup2(capture.fileno(), 2)
        sys.argv = ["nnkit", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    results.append({"id": case.id, "code": code, "expect": list(case.expect),
                    "stderr": (folder / "stderr.txt").read_text(), "tensorflow": "tensorflow" in sys.modules})
print(json.dumps(results))
"""


def _run_driver(tmp_path: Path, verbose: bool) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NNKIT_VERBOSE")}
    env.update(PYTHONPATH=str(ROOT), **({"NNKIT_VERBOSE": "1"} if verbose else {}))
    result = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path), str(ROOT / "tests")], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", f"written outside any command: {result.stderr!r}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_each_task_errors_in_one_line_on_the_real_stderr_after_tensorflow_loaded(tmp_path):
    results = _run_driver(tmp_path, verbose=False)
    assert len(results) == 8  # one per task
    for item in results:
        lines = item["stderr"].splitlines()
        assert item["code"] == 2 and item["tensorflow"], item
        assert len(lines) == 1 and lines[0].startswith("error: "), item
        assert all(word in lines[0] for word in item["expect"]), item


@pytest.mark.slow  # a second TensorFlow start-up (~10-30 s); shows what the default hides
def test_verbose_shows_tensorflows_start_up_lines(tmp_path):
    first = _run_driver(tmp_path, verbose=True)[0]
    lines = first["stderr"].splitlines()
    if len(lines) == 1:
        pytest.skip("this TensorFlow build prints nothing at start-up")
    assert lines[-1].startswith("error: ") and len(lines) > 1
