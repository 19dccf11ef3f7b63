"""Shared fixtures: quiet TensorFlow, a private cache, CLI and fresh-process helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

# Property tests: the same examples on every CI run (derandomized, no example database to carry
# failures from one run into the next), fresh random examples locally. HYPOTHESIS_PROFILE picks
# one explicitly (e.g. HYPOTHESIS_PROFILE=ci to replay what CI runs).
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Caches go to a per-session temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("NNKIT_CACHE", str(tmp_path_factory.getbasetemp() / "nnkit-cache"))


@pytest.fixture
def cli_run():
    """Invoke the CLI in-process; returns the Click result (exit_code, output, stderr)."""
    from click.testing import CliRunner

    from nnkit.cli import cli

    def invoke(*args, expect: int | None = 0):
        runner = CliRunner()
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=True)
        if expect is not None and result.exit_code != expect:
            detail = result.output + (result.stderr if hasattr(result, "stderr") else "")
            if result.exception and not isinstance(result.exception, SystemExit):
                import traceback

                detail += "".join(traceback.format_exception(result.exception))
            raise AssertionError(f"nnkit {' '.join(map(str, args))} exited {result.exit_code}, expected "
                                 f"{expect}:\n{detail}")
        return result

    return invoke
