"""Word tokens vs subwords, GRU + attention vs Transformer, at equal training compute, on real Tatoeba pairs.

Data: ``../shared/data/fra-eng.tsv`` (manythings.org / Tatoeba English ->
French, CC-BY 2.0; never committed). Every variant gets the project's split
(``translate`` recipe, ``train.seed``; by distinct source), trains for the
same budget, then is decoded with beam search (width 4) and scored on the
same test references: BLEU and chrF (sacrebleu) and the names/numbers copy
rate (``nnkit.datasets.names_numbers``).

The budget is **CPU seconds of this process** (``time.process_time``) by
default: on a machine shared with other jobs, equal wall time gives each
variant whatever the neighbours leave; equal CPU time is what equal wall time
means on an idle machine. ``--clock wall`` uses wall time instead. Training
stops at the first batch past the budget (early stopping may stop it sooner);
the best validation epoch is kept, as in ``nnkit run``.

    python bench/translate_subwords.py [--budget 420] [--only gru_subword,transformer_subword]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COMMON = ["train.epochs=100", "train.patience=2", "eval.beam_width=4", "eval.heatmaps=0", "eval.examples=0"]
# the recipe's own GRU (bidirectional GRU 128, embeddings 64, additive attention, lr 0.003), spelt out because
# the recipe's [with_data] table (the Transformer's widths and learning rate) applies to every --data run
GRU = ["model.arch=rnn", "model.units=128", "model.depth=1", "model.dropout=0.0", "train.learning_rate=0.003"]
TRANSFORMER = ["model.arch=transformer", "model.units=192", "model.depth=2", "model.heads=4", "model.ff_dim=512",
               "model.dropout=0.1", "train.learning_rate=0.001"]
PLACEHOLDERS = TRANSFORMER + ["data.tokenize=subword", "data.placeholders=true"]
VARIANTS = {
    "gru_word": GRU + ["data.tokenize=word"],
    "gru_subword": GRU + ["data.tokenize=subword", "data.placeholders=false"],
    "transformer_subword": TRANSFORMER + ["data.tokenize=subword", "data.placeholders=false"],
    "gru_placeholders": GRU + ["data.tokenize=subword", "data.placeholders=true"],
    "transformer_placeholders": PLACEHOLDERS,
    # the usual levers, each alone on top of the Transformer with placeholders
    "+label_smoothing": PLACEHOLDERS + ["train.label_smoothing=0.1"],
    "+warmup": PLACEHOLDERS + ["train.warmup_steps=200"],
    "+checkpoint_average": PLACEHOLDERS + ["train.average_checkpoints=3"],
}


def budget_callback(seconds: float, clock):
    import keras

    class Budget(keras.callbacks.Callback):
        """Stop training at the first batch past the budget; counts epochs and the clock used."""

        def on_train_begin(self, logs=None):
            self.began, self.epochs, self.used = clock(), 0, 0.0

        def on_train_batch_end(self, batch, logs=None):
            if clock() - self.began >= seconds:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            self.epochs = epoch + 1
            self.used = clock() - self.began
            print(f"    epoch {self.epochs}: {self.used:.0f} s of {seconds:.0f}, val_loss {logs.get('val_loss', 0):.3f}",
                  flush=True)

    return Budget()


def run_variant(name: str, sets: list[str], data: str, budget: float, clock, folder: Path) -> dict:
    from nnkit import train
    from nnkit.config import to_toml
    from nnkit.pipeline import resolve
    from nnkit.runs import base_meta, create_run, write_json, write_text
    from nnkit.tasks.translation.quality import names_numbers

    resolved = resolve("translate", data=data, overrides=COMMON + sets + ["train.verbose=false"])
    task, cfg = resolved.task, resolved.cfg
    wall0, cpu0 = time.perf_counter(), time.process_time()
    prepared = task.load(cfg)
    run = create_run("translate", out=str(folder / name))
    write_text(run.config_file, to_toml(cfg))
    write_json(run.meta_file, base_meta("translate", task.name, cfg, ["bench/translate_subwords.py"]))
    write_json(run.state_file, prepared.state)
    budget_cb = budget_callback(budget, clock)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    model = train.fit(task, cfg, prepared, run, extra_callbacks=[budget_cb])
    wall2, cpu2 = time.perf_counter(), time.process_time()
    evaluation = task.evaluate(model, prepared, cfg)
    wall3, cpu3 = time.perf_counter(), time.process_time()
    sources, refs = [s for s, _ in prepared.test], [t for _, t in prepared.test]
    kept, n_keep, n_sent = names_numbers(prepared.train, sources, refs, {"model": evaluation.artifacts["hyps"]})
    return {"variant": name, "settings": sets, "bleu": evaluation.model["bleu"], "chrf": evaluation.model["chrf"],
            "exact_match": evaluation.model["exact_match"], **kept["model"], "to_keep": n_keep,
            "copy_rate_probe": evaluation.model.get("copy_rate_probe"),
            "probe_tokens": evaluation.details.get("probe_tokens_to_keep"),
            "checkpoint_average": run.meta().get("checkpoint_average"),
            "to_keep_sentences": n_sent, "epochs": budget_cb.epochs, "params": model.count_params(),
            "train_wall_s": wall2 - wall1, "train_cpu_s": cpu2 - cpu1, "prepare_wall_s": wall1 - wall0,
            "prepare_cpu_s": cpu1 - cpu0, "eval_wall_s": wall3 - wall2, "eval_cpu_s": cpu3 - cpu2,
            "unknown_rate": prepared.summary.get("unknown tokens in test sources"),
            "vocab": prepared.summary["source vocabulary"], "test": len(prepared.test), "train": len(prepared.train),
            "examples": list(zip(sources, refs, evaluation.artifacts["hyps"]))[:: max(1, len(sources) // 8)][:8]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fra-eng.tsv"))
    parser.add_argument("--budget", type=float, default=420.0, help="training seconds per variant")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--only", default="", help="comma-separated variant names")
    parser.add_argument("--json", default="", help="also write the rows here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="applied to every variant (e.g. data.limit=2000 for a smoke test)")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        sys.exit(f"{args.data}: not found (the Tatoeba file lives in ../shared/data, never in the repo)")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnkit-subwords-") as tmp:
        for name in names:
            print(f"== {name}: {' '.join(VARIANTS[name])} (budget {args.budget:.0f} {args.clock} s)", flush=True)
            row = run_variant(name, VARIANTS[name] + args.overrides, args.data, args.budget, clock, Path(tmp))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "examples"}), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")
    ref = rows[0]
    print(f"\ntest {ref['test']} pairs (train {ref['train']}), budget {args.budget:.0f} {args.clock}-seconds of "
          f"training each, beam width 4; names/numbers to keep: {ref['to_keep']} tokens in {ref['to_keep_sentences']} "
          "test sentences")
    print(f"{'variant':<24} {'BLEU':>6} {'chrF':>6} {'copy':>6} {'probe':>6} {'UNK':>6} {'epochs':>6} "
          f"{'train cpu':>9} {'train wall':>10} {'BLEU/ref':>8}")
    for r in rows:
        fmt = lambda v: "  –  " if v is None else f"{v:.3f}"  # noqa: E731
        print(f"{r['variant']:<24} {r['bleu']:>6.2f} {r['chrf']:>6.2f} {fmt(r['copy_rate']):>6} "
              f"{fmt(r['copy_rate_probe']):>6} {fmt(r['unknown_rate']):>6} "
              f"{r['epochs']:>6} {r['train_cpu_s']:>9.0f} {r['train_wall_s']:>10.0f} {r['bleu'] / max(ref['bleu'], 1e-9):>8.2f}")
    for r in rows:
        print(f"\n{r['variant']} examples:")
        for s, t, h in r["examples"]:
            print(f"  {s}\n    ref: {t}\n    out: {h}")


if __name__ == "__main__":
    main()
