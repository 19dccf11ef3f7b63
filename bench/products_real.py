"""Item embeddings on real sessions: nnkit's item2vec vs gensim's Word2Vec vs PPMI-SVD, one run, same scoring.

Data (research use only: read from ../shared/data, never committed):

* MovieLens latest-small: a session is a user's ratings in time order; a
  film's categories are its genres (several per film, a kNN prediction is a
  hit when it is among them).
* Online Retail sample: a session is an invoice; no categories, so the score
  is next-item retrieval on held-out invoice ends.

Both data sets also get the next-item score: the last item of 20 % + 20 % of
the users (MovieLens), the last 3 items of every invoice (retail: 68
invoices, half validation, half test) are held out before training. Every method is
trained on the same remaining sessions and scored by the same code
(``nnkit.tasks.embedding.baselines`` and ``.next_item``): kNN category accuracy and precision@10 on
held-out films seen at least 5 times, hit rate@10 and MRR@10 on held-out
ends, beside popularity and same-session co-occurrence.

    python bench/products_real.py compare            # nnkit vs gensim vs PPMI-SVD vs random, test part
    python bench/products_real.py compare --init ppmi_svd   # nnkit started from PPMI-SVD (a hybrid)
    python bench/products_real.py sweep              # one setting at a time, validation part

``compare`` uses nnkit's settings for user sessions (``--preset user``: the
full softmax, Adam) or the generated shop's (``--preset shop``);
``--objective negative_sampling`` trains users' sessions as before the
softmax (SGD at 0.5, 12 epochs); ``--window N`` sets every method's window.
``--init ppmi_svd`` starts item2vec (negative sampling) from PPMI-SVD's
factors (``model.init = "ppmi_svd"``, a hybrid, 4 epochs at rate 0.1): the
PPMI-SVD row is its starting point (same window, dim, seed), and a row with
word2vec's random start is added. gensim gets the same window, negatives,
noise exponent and sub-sampling, at least 12 epochs (word2vec's budget when
nnkit's softmax trains 5) and its own learning rate (0.025 decaying
linearly). Wall times are training only, in this process.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MOVIELENS = SHARED / "ml-latest-small.zip"
RETAIL = SHARED / "online-retail-sample.csv"
K = 10


# -- data ----------------------------------------------------------------------------------------

def movielens(zip_path: Path, min_count: int):
    from nnkit.datasets.sessions import read_sessions

    with zipfile.ZipFile(zip_path) as archive:
        ratings = pd.read_csv(archive.open("ml-latest-small/ratings.csv"))
        movies = pd.read_csv(archive.open("ml-latest-small/movies.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        sessions, items = Path(tmp) / "sessions.csv", Path(tmp) / "items.csv"
        ratings.rename(columns={"userId": "session_id", "movieId": "item_id"})[
            ["session_id", "item_id", "timestamp"]].to_csv(sessions, index=False)
        genres = movies["genres"].where(movies["genres"] != "(no genres listed)")
        pd.DataFrame({"item_id": movies["movieId"], "category": genres, "name": movies["title"]}).to_csv(
            items, index=False)
        return read_sessions(sessions, items_path=str(items), category_separator="|", min_count=min_count)


def retail(path: Path, min_count: int):
    from nnkit.datasets.sessions import read_sessions

    return read_sessions(path, session_column="InvoiceNo", item_column="StockCode", name_column="Description",
                         timestamp_column="InvoiceDate", category_column="", min_count=min_count)


class Bench:
    """One data set, split once: training sessions, held-out ends, held-out items (val/test)."""

    def __init__(self, name, data, seed=0, ends=(0.2, 0.2), tail=1):
        from nnkit.tasks.embedding.next_item import hold_out_session_ends

        self.name = name
        self.train, self.val_ends, self.test_ends, self.split_summary = hold_out_session_ends(
            data, *ends, seed, tail=tail)
        self.val_ends, self.test_ends = self.val_ends.scorable(), self.test_ends.scorable()
        t = self.train
        self.has_categories = (t.categories >= 0).sum() > 20
        if self.has_categories:
            from nnkit.tasks.embedding.baselines import category_matrix

            self.labels = category_matrix(t.categories, len(t.category_names), t.extra_categories)
            known = np.flatnonzero((t.categories >= 0) & (t.counts >= 5))
            order = np.random.default_rng([seed, 21]).permutation(known)
            n_val = int(0.3 * order.size)
            self.val_items, self.test_items = np.sort(order[:n_val]), np.sort(order[n_val:])
            self.pool = np.flatnonzero(t.categories >= 0)

    def describe(self) -> str:
        t = self.train
        text = (f"{self.name}: {t.n_sessions} sessions, {t.tokens.size} events, {t.vocab_size} items "
                f"(mean session {t.tokens.size / t.n_sessions:.1f}); held-out ends scored: validation "
                f"{self.val_ends.size}, test {self.test_ends.size}")
        if self.has_categories:
            text += (f"; {len(t.category_names)} categories, items scored (seen >= 5 times): validation "
                     f"{self.val_items.size}, test {self.test_items.size}")
        return text

    def score(self, vectors, part: str) -> dict:
        from nnkit.tasks.embedding.baselines import multilabel_knn, nearest, normalize
        from nnkit.tasks.embedding.next_item import ranked, vector_scorer

        ends = self.val_ends if part == "validation" else self.test_ends
        out = ranked(vector_scorer(vectors), ends, self.train.vocab_size, K)
        if self.has_categories:
            items = self.val_items if part == "validation" else self.test_items
            rows, _ = nearest(normalize(vectors), items, K, self.pool)
            hit, share = multilabel_knn(rows, items, self.labels)
            out = {"knn_accuracy": float(hit.mean()), f"precision_at_{K}": float(share.mean()), **out}
        return out

    def baselines(self, part: str) -> dict:
        from nnkit.tasks.embedding.next_item import next_item_baselines

        ends = self.val_ends if part == "validation" else self.test_ends
        return next_item_baselines(self.train, ends, K)

    @property
    def primary(self) -> str:
        return "knn_accuracy" if self.has_categories else f"hit_rate_at_{K}"


# -- the methods ----------------------------------------------------------------------------------

def nnkit_settings(preset: str) -> dict:
    """The recipe's model and training settings: the shop's, or with its [with_data] table (users' sessions).

    A window left at "auto" takes the first candidate (what a run with ``eval.select_budget = 0`` uses).
    """
    from nnkit.registry import load_recipe
    from nnkit.tasks.embedding.task import EmbeddingTask

    recipe = load_recipe("products")
    sections = {s: dict(recipe.config.get(s, {})) for s in ("model", "train")}
    if preset == "user":
        for section, values in recipe.with_data.items():
            sections.setdefault(section, {}).update(values)
    schema = EmbeddingTask.schema["model"]
    model = {k: sections["model"].get(k, schema[k].default) for k in
             ("objective", "init", "context", "window", "shrink_window", "negatives", "shared_negatives",
              "noise_power", "subsample")}
    if model["window"] == "auto":
        model["window"] = EmbeddingTask.window_candidates[0]
    return {**model, **{k: sections["train"][k] for k in ("optimizer", "epochs", "batch_size", "learning_rate",
                                                          "schedule")}}


def train_nnkit(data, settings: dict, dim: int, seed: int = 0):
    """nnkit's own pipeline pieces: skipgram_dataset + build_item2vec + the task's loss + Keras fit."""
    import keras

    from nnkit import train as T
    from nnkit.pipeline import resolve
    from nnkit.tasks.base import Prepared

    resolved = resolve("products", overrides=[f"train.seed={seed}", f"model.dim={dim}"])
    task, cfg = resolved.task, resolved.cfg
    for key, value in settings.items():
        cfg["train" if key in cfg["train"] else "model"][key] = value
    prepared = Prepared(train=data, val=None, test=np.zeros(0, np.int64), extra={"train_categories": None})
    T.apply_seed(cfg["train"])
    ds, _ = task.datasets(cfg, prepared, cfg["train"]["batch_size"])
    start = time.perf_counter()  # model.init = "ppmi_svd": the SVD it starts from is part of its time
    model = task.build_model(cfg, prepared)
    model.compile(optimizer=T.make_optimizer(cfg["train"], int(ds.cardinality())),
                  steps_per_execution=cfg["train"]["steps_per_execution"], **task.compile_kwargs(cfg, prepared))
    model.fit(ds, epochs=cfg["train"]["epochs"], verbose=0)
    seconds = time.perf_counter() - start
    vectors = task.trained_vectors(model)  # the softmax's: normalised target + context vectors
    context = np.asarray(model.get_layer("item2vec_context").get_weights()[0])
    keras.backend.clear_session(free_memory=False)
    train_nnkit.last_context = context  # for the target + context variant (same model)
    return vectors, seconds


class ReshuffledSessions:
    """Sessions with their items in a new random order at every pass (gensim iterates once per epoch)."""

    def __init__(self, sessions, seed):
        self.sessions, self.rng = sessions, np.random.default_rng([seed, 99])

    def __iter__(self):
        for session in self.sessions:
            yield [session[i] for i in self.rng.permutation(len(session))]


def train_gensim(data, settings: dict, dim: int, seed: int = 0, workers: int = 2):
    from gensim.models import Word2Vec

    corpus = [data.item_ids[data.tokens[s:e]].tolist() for s, e in zip(data.offsets[:-1], data.offsets[1:])]
    if settings.get("context") == "session":  # the same contexts as nnkit's: reshuffled sessions, same window
        corpus = ReshuffledSessions(corpus, seed)
    start = time.perf_counter()
    model = Word2Vec(corpus, vector_size=dim, window=settings["window"], negative=settings["negatives"], sg=1,
                     ns_exponent=settings["noise_power"], sample=settings["subsample"], epochs=settings["epochs"],
                     shrink_windows=settings.get("shrink_window", True), min_count=1, seed=seed, workers=workers)
    seconds = time.perf_counter() - start
    rows = np.array([model.wv.key_to_index[i] for i in data.item_ids])
    return model.wv.vectors[rows], seconds


def train_ppmi(data, settings: dict, dim: int, seed: int = 0):
    from nnkit.tasks.embedding.baselines import ppmi_svd

    window = settings["window"]
    start = time.perf_counter()
    vectors = ppmi_svd(data.tokens, data.offsets, data.vocab_size, dim, window, seed=seed)
    return vectors, time.perf_counter() - start


# -- commands -------------------------------------------------------------------------------------

def load_benches(args) -> list[Bench]:
    benches = []
    if "movielens" in args.data:
        benches.append(Bench("MovieLens latest-small", movielens(Path(args.movielens), args.min_count)))
    if "retail" in args.data:
        # 68 invoices: every invoice's last 3 items are held out (half validation, half test)
        benches.append(Bench("Online Retail sample", retail(Path(args.retail), 1), ends=(0.5, 0.5), tail=3))
    return benches


def fmt(metrics: dict) -> str:
    return " | ".join(f"{v:.3f}" for v in metrics.values())


def compare(args, benches):
    from nnkit.tasks.embedding import postprocess

    settings = preset_settings(args)
    if args.window:  # every method's window (a user run chooses it on validation: 5, 3 or 10)
        settings["window"] = args.window
    # gensim keeps word2vec's budget of 12 epochs (its default is 5) when nnkit's softmax trains for 5
    gensim = {**settings, "epochs": max(settings["epochs"], GENSIM_EPOCHS)}
    methods = [("nnkit item2vec", train_nnkit, settings), ("gensim Word2Vec", train_gensim, gensim),
               ("PPMI-SVD", train_ppmi, settings)]
    if args.init == "ppmi_svd":
        # the hybrid starts from the PPMI-SVD row's own vectors (same window, dim and seed) and
        # fine-tunes for the budget chosen on MovieLens's validation films (HYBRID); the random
        # starts (nnkit's and gensim's) keep the preset's epochs and rate
        print(f"random starts (nnkit init=random, gensim): {settings}")
        settings = {**settings, **HYBRID}
        methods[0] = ("nnkit item2vec", train_nnkit, settings)
        methods.insert(1, ("nnkit item2vec (init=random)", train_nnkit, methods[1][2]))
    print(f"nnkit settings ({args.preset}): {settings}; gensim epochs {gensim['epochs']}")
    for bench in benches:
        print(f"\n### {bench.describe()}\n")
        rows = []
        for seed in range(args.seeds):
            for name, trainer, config in methods:
                vectors, seconds = trainer(bench.train, config, args.dim, seed)
                rows.append((name, seed, bench.score(vectors, "test"), seconds))
                # every method gets the same post-processing choice nnkit makes (model.postprocess = auto)
                how, _ = postprocess.choose(vectors, lambda v: bench.score(v, "validation")[bench.primary])
                rows.append((f"{name} + {how} (validation's choice)", seed,
                             bench.score(postprocess.apply(vectors, how), "test"), seconds))
                if name == "nnkit item2vec" and config["objective"] != "softmax":  # target + context, summed
                    from nnkit.tasks.embedding.baselines import normalize

                    both = normalize(vectors) + normalize(train_nnkit.last_context)
                    rows.append(("nnkit target+context", seed, bench.score(both, "test"), seconds))
        keys = list(rows[0][2])
        print("| method | seed | " + " | ".join(keys) + " | train wall s |")
        print("|---|---|" + "---|" * (len(keys) + 1))
        for name, seed, metrics, seconds in rows:
            print(f"| {name} | {seed} | {fmt(metrics)} | {seconds:.1f} |")
        rnd = np.random.default_rng(0).normal(size=(bench.train.vocab_size, args.dim))
        print(f"| random vectors | – | {fmt(bench.score(rnd, 'test'))} | – |")
        for name, metrics in bench.baselines("test").items():
            if name != "random":
                cells = " | ".join(["–"] * (len(keys) - len(metrics)) + [f"{v:.3f}" for v in metrics.values()])
                print(f"| {name} (next item) | – | {cells} | – |")
        mean = lambda n, key: np.mean([m[key] for r, _, m, _ in rows if r.startswith(n)])  # noqa: E731
        wall = lambda n: np.mean([s for r, _, _, s in rows if r == n])  # noqa: E731
        p = bench.primary
        for name, _, _ in methods:
            raw = np.mean([m[p] for r, _, m, _ in rows if r == name])
            print(f"{name}: {p} as trained {raw:.3f}, post-processed {mean(name + ' +', p):.3f}")
        plain = (f", nnkit init=random {mean('nnkit item2vec (init=random) +', p):.3f}"
                 if len(methods) > 3 else "")
        print(f"\n{bench.name}: mean {p} over {args.seeds} seed(s), post-processed as nnkit does: nnkit "
              f"{mean('nnkit item2vec +', p):.3f} (init={settings['init']}){plain}, gensim "
              f"{mean('gensim Word2Vec +', p):.3f}, PPMI-SVD {mean('PPMI-SVD +', p):.3f}; wall time nnkit "
              f"{wall('nnkit item2vec'):.1f}s / gensim {wall('gensim Word2Vec'):.1f}s = "
              f"{wall('nnkit item2vec') / wall('gensim Word2Vec'):.2f}x")


GENSIM_EPOCHS = 12

# --objective negative_sampling: what users' sessions trained with before the softmax (and what a
# catalogue above EmbeddingTask.softmax_max_items needs)
NEGATIVE_SAMPLING = {"objective": "negative_sampling", "optimizer": "sgd", "learning_rate": 0.5, "epochs": 12,
                     "schedule": "cosine", "batch_size": 1024}

# --init ppmi_svd: item2vec (negative sampling) started from PPMI-SVD's factors, fine-tuned with this
# budget (of 2, 4, 8 epochs at 0.1 and 4 epochs at 0.03 / 0.3, the best on MovieLens's validation
# films, 2 seeds)
HYBRID = {**NEGATIVE_SAMPLING, "init": "ppmi_svd", "epochs": 4, "learning_rate": 0.1}


def preset_settings(args) -> dict:
    settings = nnkit_settings(args.preset)
    if args.objective == "negative_sampling":
        settings.update(NEGATIVE_SAMPLING)
    return settings


SWEEP = [  # (setting, values): one at a time from the preset; Caselles-Dupré et al. 2018's list
    ("context", ["window", "session"]),
    ("window", [3, 10, 25]),
    ("noise_power", [-0.5, 1.0]),
    ("subsample", [0.0, 1e-2]),
    ("epochs", [6, 24]),
    ("schedule", ["constant"]),
    ("learning_rate", [0.25, 1.0]),
    ("batch_size", [4096]),
]

SOFTMAX_SWEEP = [  # the same idea for the softmax's own settings (Adam: rate, epochs, centres per step)
    ("context", ["window", "session"]),
    ("window", [3, 10, 25]),
    ("subsample", [0.0, 1e-2]),
    ("epochs", [3, 8]),
    ("learning_rate", [0.003, 0.03]),
    ("batch_size", [256, 1024]),
    ("schedule", ["cosine"]),
]


def sweep(args, benches):
    base = preset_settings(args)
    only = set(args.only.split(",")) if args.only else None
    print(f"base settings ({args.preset}): {base}; scores on the VALIDATION part")
    for bench in benches:
        print(f"\n### {bench.describe()}\n")
        head = None
        for setting, values in SOFTMAX_SWEEP if base["objective"] == "softmax" else SWEEP:
            if only and setting not in only:
                continue
            for value in values:
                if setting != "context" and base.get(setting) == value:
                    continue  # the base itself is the first row
                changed = {**base, setting: value}
                vectors, seconds = train_nnkit(bench.train, changed, args.dim)
                metrics = bench.score(vectors, "validation")
                if head is None:
                    head = list(metrics)
                    print("| setting | value | " + " | ".join(head) + " | wall s |")
                    print("|---|---|" + "---|" * (len(head) + 1))
                mark = " (base)" if base.get(setting) == value else ""
                print(f"| {setting} | {value}{mark} | {fmt(metrics)} | {seconds:.1f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["compare", "sweep"])
    parser.add_argument("--data", default="movielens,retail")
    parser.add_argument("--movielens", default=str(MOVIELENS))
    parser.add_argument("--retail", default=str(RETAIL))
    parser.add_argument("--preset", choices=["user", "shop"], default="user")
    parser.add_argument("--init", choices=["random", "ppmi_svd"], default="random",
                        help="compare: 'ppmi_svd' starts nnkit from PPMI-SVD's factors (a hybrid; HYBRID's "
                             "budget) and adds word2vec's random start as its own row")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--objective", choices=["preset", "negative_sampling"], default="preset",
                        help="'negative_sampling': users' sessions as trained before the softmax (NEGATIVE_SAMPLING)")
    parser.add_argument("--window", type=int, default=0, help="compare: every method's window (0: the preset's)")
    parser.add_argument("--only", default="", help="sweep: comma-separated settings")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU threads; load average {os.getloadavg()[0]:.1f} at start "
          "(a shared machine: compare the methods within this run, not across runs)")
    benches = load_benches(args)
    (compare if args.command == "compare" else sweep)(args, benches)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
