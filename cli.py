"""Checkout entry point: ``python cli.py ...`` is the same as ``nnkit ...``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nnkit.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
