"""The benchmark suite: nnkit against plain Keras, recipe by recipe, in one command.

    python bench/run_all.py                               # every recipe with a reference script
    python bench/run_all.py --recipes digits,mnist --rounds 2
    python bench/run_all.py --recipes mnist,translate --tag gpu \\
        --set train.mixed_precision=true --set train.jit_compile=true

For each recipe in bench/reference/ (one small file per recipe: the quality
target, the fixed epochs, optionally a hand-written tf.data pipeline) it runs
the plain-Keras reference and nnkit alternately (keras, nnkit, keras, nnkit,
...; each run a fresh process, so neither warms the other's caches) and
records, per run: training samples/s (of the median epoch; the first
epoch, which traces and compiles, left out), time to the recipe's quality target, peak resident
memory; for nnkit also the exported SavedModel's latency (p50/p99 at batch 1
and 64) and throughput; for CNN recipes the achieved training GFLOP/s
against a float32 matmul peak measured by the same script. The ratio
nnkit/reference uses the median of the rounds (samples/s: higher is better;
a ratio >= 0.95 means nnkit is not slower).

Writes bench/results/<recipe>[-<tag>].json and the table between the markers
in bench/README.md, with the machine it ran on. Not part of the tests.
Adding a recipe = one file bench/reference/<recipe>.py.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def child(mode: str, recipe: str, overrides: list[str], timeout: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [sys.executable, str(HERE / "_child.py"), mode, recipe, str(out)]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} {recipe} failed:\n{result.stderr[-2500:]}")
    data = json.loads(out.read_text())
    out.unlink()
    return data


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "host": platform.node()}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench_recipe(recipe: str, rounds: int, overrides: list[str], peak: dict | None, timeout: int) -> dict:
    runs = {"keras": [], "nnkit": []}
    for r in range(rounds):
        for mode in ("keras", "nnkit"):
            print(f"  {recipe}: round {r + 1}/{rounds} {mode} ...", flush=True)
            runs[mode].append(child(mode, recipe, overrides, timeout))
    summary = {}
    for mode, items in runs.items():
        summary[mode] = {"samples_per_s": median(i["samples_per_s"] for i in items),
                         "time_to_target_s": median(i["time_to_target_s"] for i in items),
                         "peak_rss_mb": median(i["peak_rss_mb"] for i in items),
                         "train_gflops": median(i["train_gflops"] for i in items)}
    k, n = summary["keras"], summary["nnkit"]
    ratio = (n["samples_per_s"] / k["samples_per_s"]) if k["samples_per_s"] and n["samples_per_s"] else None
    target_ratio = (k["time_to_target_s"] / n["time_to_target_s"]
                    if k["time_to_target_s"] and n["time_to_target_s"] else None)
    inference = runs["nnkit"][-1].get("inference")
    # CNN recipes: each run's FLOP rate over the matmul peak measured in the same process just after
    # training (a shared machine's load changes by the minute); None for the other recipes
    fraction = median(i.get("fraction_of_peak") for i in runs["nnkit"])
    for mode, items in runs.items():
        summary[mode]["fraction_of_peak"] = median(i.get("fraction_of_peak") for i in items)
        summary[mode]["peak_gflops"] = median(i.get("peak_gflops") for i in items)
    return {"recipe": recipe, "rounds": rounds, "overrides": overrides, "summary": summary,
            "ratio_samples_per_s": ratio, "ratio_time_to_target": target_ratio,
            "fraction_of_matmul_peak": fraction, "inference": inference, "runs": runs}


def table(results: list[dict], info: dict, peak: dict | None, note: str) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores" + (f", GPU {info['gpu']}" if info["gpu"] else "")
             + f"; Python {info['python']}; {info['date']}.",
             f"float32 matmul (2048x2048, median of 10) at the start: {peak['gflops_median']:.1f} GFLOP/s; the CNN "
             "column divides by a 1024x1024 matmul measured in each run's process right after training."
             if peak else "",
             note, "",
             "| recipe | settings | keras samples/s | nnkit samples/s | ratio | per-round ratios "
             "| time to target keras / nnkit (s) "
             "| peak RSS keras / nnkit (MB) | CNN train GFLOP/s (share of matmul GFLOP/s) | SavedModel p50 / p99 ms, b=1 "
             "| p50 / p99 ms, b=64 | serving samples/s b=64 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def f(v, spec=".1f"):
        return "–" if v is None else format(v, spec)

    for r in results:
        k, n = r["summary"]["keras"], r["summary"]["nnkit"]
        inf = r.get("inference") or {}
        b1, b64 = inf.get("batch1", {}), inf.get("batch64", {})
        flops = "–" if not (n.get("fraction_of_peak") and n.get("peak_gflops")) else (
            f"{n['train_gflops']:.1f} ({r['fraction_of_matmul_peak']:.0%} of {n['peak_gflops']:.0f})")
        settings = " ".join(o for o in r["overrides"]) or "recipe defaults"
        lines.append(
            f"| {r['recipe']} | {settings} | {f(k['samples_per_s'], '.0f')} | {f(n['samples_per_s'], '.0f')} "
            f"| **{f(r['ratio_samples_per_s'], '.2f')}** | {round_ratios(r)} "
            f"| {f(k['time_to_target_s'])} / {f(n['time_to_target_s'])} "
            f"| {f(k['peak_rss_mb'], '.0f')} / {f(n['peak_rss_mb'], '.0f')} | {flops} "
            f"| {f(b1.get('p50_ms'), '.2f')} / {f(b1.get('p99_ms'), '.2f')} "
            f"| {f(b64.get('p50_ms'), '.2f')} / {f(b64.get('p99_ms'), '.2f')} | {f(b64.get('samples_per_s'), '.0f')} |")
    return "\n".join(line for line in lines if line is not None)


def round_ratios(result: dict) -> str:
    """min-max of nnkit/keras over the rounds (each round: one keras run, then one nnkit run): the spread."""
    pairs = zip(result["runs"]["keras"], result["runs"]["nnkit"])
    ratios = [n["samples_per_s"] / k["samples_per_s"] for k, n in pairs if k["samples_per_s"] and n["samples_per_s"]]
    if not ratios:
        return "–"
    return f"{min(ratios):.2f}" if len(ratios) == 1 else f"{min(ratios):.2f}–{max(ratios):.2f}"


def write_readme(block: str, tag: str) -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    begin, end = (BEGIN, END) if not tag else (f"<!-- results-{tag}:begin -->", f"<!-- results-{tag}:end -->")
    section = f"{begin}\n{block}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    readme.write_text(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    available = sorted(p.stem for p in (HERE / "reference").glob("*.py") if not p.stem.startswith("_"))
    parser.add_argument("--recipes", default=",".join(available), help=f"comma-separated ({', '.join(available)})")
    parser.add_argument("--rounds", type=int, default=2, help="alternating keras/nnkit rounds per recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override for both sides")
    parser.add_argument("--tag", default="", help="suffix for results files and README section (e.g. gpu)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per run")
    parser.add_argument("--note", default="", help="a line printed under the machine in the README table")
    parser.add_argument("--table-only", action="store_true", help="rebuild the README table from bench/results")
    args = parser.parse_args(argv)
    recipes = [] if args.table_only else [r for r in args.recipes.split(",") if r]
    missing = [r for r in recipes if r not in available]
    if missing:
        raise SystemExit(f"no reference script for {missing}; add bench/reference/<recipe>.py")
    RESULTS.mkdir(exist_ok=True)
    info = {**machine(), "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M")}
    print("machine:", info, flush=True)
    peak = child("peak", "-", [], args.timeout) if recipes else None
    if peak:
        print(f"float32 matmul peak: {peak['gflops_median']:.1f} GFLOP/s", flush=True)
    results, failed = [], []
    suffix = f"-{args.tag}" if args.tag else ""
    for recipe in recipes:
        try:
            result = bench_recipe(recipe, args.rounds, args.overrides, peak, args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"  {recipe}: FAILED\n{exc}", flush=True)
            failed.append(recipe)
            continue
        result.update(machine=info, peak=peak)
        (RESULTS / f"{recipe}{suffix}.json").write_text(json.dumps(result, indent=1))
        results.append(result)
        print(f"  {recipe}: ratio nnkit/keras samples/s = {result['ratio_samples_per_s']}", flush=True)
    note = args.note + (f" Failed: {', '.join(failed)}." if failed else "")
    # the table shows every recipe measured with this tag, latest run of each (earlier invocations too)
    done = {r["recipe"] for r in results}
    for path in sorted(RESULTS.glob("*.json")):
        name = path.stem[:-len(suffix)] if suffix and path.stem.endswith(suffix) else path.stem
        if (suffix and not path.stem.endswith(suffix)) or (not suffix and "-" in path.stem) or name in done:
            continue
        earlier = json.loads(path.read_text())
        if earlier["machine"].get("cpu") == info["cpu"] and earlier["machine"].get("gpu") == info["gpu"]:
            results.append(earlier)
            if not args.table_only:
                note += f" {name}: from an earlier run ({earlier['machine']['date']})."
            peak = peak or earlier.get("peak")
    results.sort(key=lambda r: r["recipe"])
    block = table(results, info, peak, note.strip())
    print(block)
    write_readme(block, args.tag)


if __name__ == "__main__":
    main()
