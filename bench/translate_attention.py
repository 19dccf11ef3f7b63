"""Attention vs no attention on the translate recipe: exact match on the longest fifth of test inputs.

Runs the bundled ``translate`` recipe twice with the same seed, data and
budget, once with ``model.attention = "additive"`` (the default) and once
with ``"none"`` (the decoder sees the source only through the encoder's
final state), and prints test exact match overall and on the longest fifth
of the test inputs, side by side, with their ratio.

    python bench/translate_attention.py                      # recipe defaults
    python bench/translate_attention.py --set data.tokenize=char --set train.epochs=8

Any ``--set`` applies to both runs. Run folders go to a temporary folder
unless ``--keep DIR`` (a finished run found there is reused).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_one(attention: str, overrides: list[str], folder: Path, quiet: bool) -> tuple[dict, float]:
    from nnkit.pipeline import resolve, start

    done = folder / attention / "metrics.json"
    if done.is_file():  # --keep DIR from an earlier, interrupted bench: reuse the finished run
        return json.loads(done.read_text()), float("nan")
    sets = list(overrides) + [f"model.attention={attention}"]
    if quiet:
        sets.append("train.verbose=false")
    resolved = resolve("translate", overrides=sets)
    began = time.perf_counter()
    run = start(resolved, out=str(folder / attention),
                command=["bench/translate_attention.py", *sum([["--set", s] for s in sets], [])])
    seconds = time.perf_counter() - began
    return json.loads((run.path / "metrics.json").read_text()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", help="keep the two run folders under this folder")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnkit-attn-") as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = {name: run_one(name, args.overrides, folder, args.quiet) for name in ("additive", "none")}
    print()
    print(f"{'attention':<10} {'exact (all)':>12} {'exact (longest 1/5)':>20} {'BLEU':>7} {'chrF':>7} {'seconds':>8}")
    for name, (metrics, seconds) in results.items():
        m = metrics["model"]
        print(f"{name:<10} {m['exact_match']:>12.4f} {m['exact_match_long']:>20.4f} {m['bleu']:>7.2f} "
              f"{m['chrf']:>7.2f} {seconds:>8.0f}")
    with_att, without = results["additive"][0]["model"], results["none"][0]["model"]
    gap = with_att["exact_match_long"] - without["exact_match_long"]
    ratio = with_att["exact_match_long"] / max(without["exact_match_long"], 1e-9)
    print(f"\nlongest fifth: attention {with_att['exact_match_long']:.4f} vs none {without['exact_match_long']:.4f} "
          f"(+{gap:.4f}, ratio {ratio:.2f}); settings: {' '.join(args.overrides) or 'recipe defaults'}")


if __name__ == "__main__":
    main()
