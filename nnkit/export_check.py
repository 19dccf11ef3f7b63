"""Reload an exported artifact in this (fresh) process and compare it with saved outputs.

``python -m nnkit.export_check FORMAT ARTIFACT CHECK.npz`` exits 0 when every
endpoint reproduces the outputs the in-memory model gave, 1 otherwise.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(fmt: str, artifact: str, check_file: str) -> None:
    from nnkit.export_formats import get_format, load_check

    get_format(fmt).check(artifact, load_check(check_file))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:4])
    except AssertionError as exc:
        print(f"mismatch: {exc}", file=sys.stderr)
        sys.exit(1)
