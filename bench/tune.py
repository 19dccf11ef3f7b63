"""Does `nnkit tune` beat the recipe's defaults by more than seed noise? One recipe per call.

    python bench/tune.py RECIPE [--seeds 0 1 2] [--trials 8] [--budget MIN] [--algorithm bayesian]
                         [--data PATH] [--set KEY=VALUE ...] [--out DIR] [--name NAME]

1. The default recipe, trained and evaluated on its test part once per seed
   (``train`` + ``evaluate`` stages, no export): the seed-to-seed spread.
2. ``nnkit tune`` with seed 0 (the first seed): the tuned run's test score,
   beside the default's (which the search trains as its first trial).
Prints a summary and writes it to bench/results/tune-NAME.json (the runs
stay in OUT, a temporary folder by default). All runs in this process, one
after another, so they share whatever load the machine has.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--budget", type=float, default=None, help="minutes")
    parser.add_argument("--algorithm", default="bayesian")
    parser.add_argument("--data")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default=None)
    parser.add_argument("--name", default=None, help="results file bench/results/tune-NAME.json (default RECIPE)")
    args = parser.parse_args()

    from nnkit import pipeline
    from nnkit.runs import read_json
    from nnkit.tuning import flow

    import tempfile

    out = Path(args.out or tempfile.mkdtemp(prefix=f"nnkit-bench-tune-{args.recipe}-"))
    out.mkdir(parents=True, exist_ok=True)
    quiet = {"train.verbose": False}
    defaults = {}
    for seed in args.seeds:
        resolved = pipeline.resolve(args.recipe, args.data, None, args.overrides, {**quiet, "train.seed": seed})
        t0 = time.monotonic()
        run = pipeline.start(resolved, stages=("train", "evaluate"), out=str(out / f"default-seed{seed}"))
        metrics = read_json(run.metrics_file)
        defaults[seed] = float(metrics["model"][metrics["primary"]])
        print(f"default seed {seed}: test {metrics['primary']} {defaults[seed]:.4f} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    resolved = pipeline.resolve(args.recipe, args.data, None, args.overrides, {**quiet, "train.seed": args.seeds[0]})
    t0 = time.monotonic()
    run = flow.tune(resolved, algorithm=args.algorithm, trials=args.trials, budget_minutes=args.budget,
                    out=str(out / "tuned"), echo=lambda line: print(line, flush=True))
    seconds = time.monotonic() - t0
    summary = read_json(run.path / "tune" / "summary.json")
    scores = list(defaults.values())
    spread = max(scores) - min(scores)
    higher = summary["higher_is_better"]
    gain = (summary["test"]["tuned"] - summary["test"]["default"]) * (1 if higher else -1)
    gain_vs_mean = (summary["test"]["tuned"] - sum(scores) / len(scores)) * (1 if higher else -1)
    result = {"recipe": args.recipe, "data": args.data, "overrides": args.overrides, "metric": summary["metric"],
              "higher_is_better": higher, "default_by_seed": defaults, "seed_spread": spread,
              "tuned": summary["test"]["tuned"], "default_seed0_in_search": summary["test"]["default"],
              "gain_vs_default_seed0": gain, "gain_vs_default_mean": gain_vs_mean,
              "trials": summary["trials"], "completed": summary["completed"], "algorithm": args.algorithm,
              "budget_minutes": args.budget, "search_minutes": summary["used_minutes"],
              "tune_wall_minutes": round(seconds / 60, 2), "best_values": summary["best_values"],
              "load_average": os.getloadavg()}
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    results_file = ROOT / "bench" / "results" / f"tune-{args.name or args.recipe}.json"
    results_file.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\n{args.recipe}: test {summary['metric']} tuned {summary['test']['tuned']:.4f} vs default "
          f"{', '.join(f'{s:.4f}' for s in scores)} (seeds {args.seeds}; spread {spread:.4f}); "
          f"gain over the mean {gain_vs_mean:+.4f} = {gain_vs_mean / spread if spread else float('inf'):.1f}x the spread; "
          f"{summary['trials']} trials in {summary['used_minutes']:.1f} min (budget {args.budget} min)")


if __name__ == "__main__":
    main()
