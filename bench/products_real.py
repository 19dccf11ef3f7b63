"""Item embeddings on real sessions: nnkit's item2vec vs gensim's Word2Vec vs PPMI-SVD, one run, same scoring.

Data (research use only: read from ../shared/data, never committed):

* MovieLens latest-small: a session is a user's ratings in time order; a
  film's categories are its genres (several per film, a kNN prediction is a
  hit when it is among them).
* Online Retail sample: a session is an invoice; no categories, so the score
  is next-item retrieval on held-out invoice ends.

Both data sets also get the next-item score. MovieLens: the last item of
20 % + 20 % of the users is held out (validation, test) before training.
Retail: 55 invoices are too few for one split (the last stop scored 25 test
ends), so the invoices are cut into 5 folds; for fold f every item after an
invoice's first is held out in fold f (test) and fold f+1 (validation),
each method trains on the rest, and the test cases of the 5 folds are
pooled (about 250 cases). Every method is trained on the same sessions and
scored by the same code (``nnkit.tasks.embedding.baselines`` and
``.next_item``): kNN category accuracy and precision@10 on held-out films
seen at least 5 times, hit rate@10 and MRR@10 on held-out ends, beside
popularity and same-session co-occurrence. nnkit's difference to each other
method comes with a 95 % bootstrap interval over the same cases.

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


class Split:
    """One training set and its held-out parts: session ends (validation/test) and, with categories, items."""

    def __init__(self, train, val_ends, test_ends, seed: int):
        self.train, self.val_ends, self.test_ends = train, val_ends.scorable(), test_ends.scorable()
        t = train
        self.has_categories = (t.categories >= 0).sum() > 20
        if self.has_categories:
            from nnkit.tasks.embedding.baselines import category_matrix

            self.labels = category_matrix(t.categories, len(t.category_names), t.extra_categories)
            known = np.flatnonzero((t.categories >= 0) & (t.counts >= 5))
            order = np.random.default_rng([seed, 21]).permutation(known)
            n_val = int(0.3 * order.size)
            self.val_items, self.test_items = np.sort(order[:n_val]), np.sort(order[n_val:])
            self.pool = np.flatnonzero(t.categories >= 0)

    def cases(self, vectors, part: str) -> dict:
        """Per-case scores (arrays, in a fixed case order): the metrics are their means."""
        from nnkit.tasks.embedding.baselines import multilabel_knn, nearest, normalize
        from nnkit.tasks.embedding.next_item import case_ranks, case_scores, vector_scorer

        ranks = case_ranks(vector_scorer(vectors), self.val_ends if part == "validation" else self.test_ends,
                           self.train.vocab_size)
        out = {}
        if self.has_categories:
            items = self.val_items if part == "validation" else self.test_items
            rows, _ = nearest(normalize(vectors), items, K, self.pool)
            hit, share = multilabel_knn(rows, items, self.labels)
            out = {"knn_accuracy": hit.astype(float), f"precision_at_{K}": share}
        return {**out, **case_scores(ranks, K)}

    def baseline_cases(self, part: str, window: int, dim: int) -> dict:
        """Per-case scores of the popularity and co-occurrence baselines (random vectors have their own row).

        Where items have names, two that read them too: the names alone (TF-IDF cosine), and PPMI-SVD's
        cosine plus the names' (weight chosen on this split's validation ends among NAME_WEIGHTS): what
        nnkit's ``model.name_words`` must beat to show that it learns more than the sum of the two.
        """
        from nnkit.tasks.embedding.next_item import baseline_scorers, case_ranks, case_scores

        t, ends = self.train, self.val_ends if part == "validation" else self.test_ends
        scorers = {name: score for name, score in baseline_scorers(t).items() if name != "random"}
        if t.names is not None:
            scorers.update(self.name_scorers(window, dim))
        return {name: case_scores(case_ranks(score, ends, t.vocab_size), K) for name, score in scorers.items()}

    def name_scorers(self, window: int, dim: int) -> dict:
        from sklearn.feature_extraction.text import TfidfVectorizer

        from nnkit.tasks.embedding.baselines import normalize
        from nnkit.tasks.embedding.next_item import case_ranks, case_scores

        t = self.train
        tfidf = TfidfVectorizer(token_pattern=r"[^\W_]+").fit_transform([str(n) for n in t.names]).tocsr()
        by_name = lambda q: (tfidf[q] @ tfidf.T).toarray()  # noqa: E731
        ppmi = normalize(train_ppmi(t, {"window": window}, dim)[0])

        def mixed(weight):
            return lambda q: ppmi[q] @ ppmi.T + weight * by_name(q)

        hit = f"hit_rate_at_{K}"
        best = max(NAME_WEIGHTS, key=lambda w: case_scores(case_ranks(mixed(w), self.val_ends, t.vocab_size),
                                                            K)[hit].mean())
        return {"names (TF-IDF cosine)": by_name, f"PPMI-SVD + names (weight {best:g}, validation's)": mixed(best)}


class Bench:
    """One data set, split once (``folds=0``) or into ``folds`` parts of its sessions (cross-fitting).

    With folds, part f's sessions are the test ends and part f+1's the
    validation ends of training set f; every method trains once per fold
    and the test cases of all folds are pooled, so each eligible session is
    scored once: a small data set gets all the cases it has.
    """

    def __init__(self, name, data, seed=0, ends=(0.2, 0.2), tail=1, folds=0):
        from nnkit.tasks.embedding.next_item import cut_session_ends, hold_out_session_ends, session_folds

        self.name, self.folds, self.tail = name, folds, tail
        if folds:
            parts = session_folds(data, folds, seed, tail)
            cuts = [cut_session_ends(data, parts[(f + 1) % folds], parts[f], tail) for f in range(folds)]
        else:
            cuts = [hold_out_session_ends(data, *ends, seed, tail=tail)]
        self.splits = [Split(train, val, test, seed) for train, val, test, _ in cuts]
        self.has_categories = self.splits[0].has_categories

    def describe(self) -> str:
        t, s = self.splits[0].train, self.splits
        held = "all but the first item" if self.tail is None else f"last {self.tail}"
        text = (f"{self.name}: {t.n_sessions} sessions, {t.tokens.size} events, {t.vocab_size} items "
                f"(mean session {t.tokens.size / t.n_sessions:.1f}) in training; held-out ends ({held}) "
                f"scored: validation {sum(x.val_ends.size for x in s)}, test {sum(x.test_ends.size for x in s)}")
        if self.folds:
            text += f" (pooled over {self.folds} folds of the sessions; sizes are fold 0's)"
        if self.has_categories:
            text += (f"; {len(t.category_names)} categories, items scored (seen >= 5 times): validation "
                     f"{self.splits[0].val_items.size}, test {self.splits[0].test_items.size}")
        return text

    def run(self, trainer, config: dict, dim: int, seed: int, part: str = "test", post: bool = True):
        """Train on every split; ``(raw cases, post-processed cases, choices, seconds)`` pooled over splits.

        Post-processing is nnkit's own choice (``model.postprocess = auto``), made on each split's
        validation part, for every method alike.
        """
        from nnkit.tasks.embedding import postprocess

        raw, done, choices, seconds = [], [], [], 0.0
        for split in self.splits:
            vectors, took = trainer(split.train, config, dim, seed)
            seconds += took
            raw.append(split.cases(vectors, part))
            if post:
                how, _ = postprocess.choose(
                    vectors, lambda v, split=split: split.cases(v, "validation")[self.primary].mean())
                choices.append(how)
                done.append(split.cases(postprocess.apply(vectors, how), part))
        return pooled(raw), pooled(done) if post else None, choices, seconds

    def baselines(self, part: str, window: int, dim: int) -> dict:
        per_split = [split.baseline_cases(part, window, dim) for split in self.splits]
        # the mixed baseline's name carries its weight, which may differ between splits
        names = [list(b) for b in per_split]
        return {label: pooled([list(b.values())[i] for b in per_split])
                for i, label in enumerate(_merged_labels(names))}

    @property
    def primary(self) -> str:
        return "knn_accuracy" if self.has_categories else f"hit_rate_at_{K}"


def _merged_labels(names: list[list[str]]) -> list[str]:
    """One label per position; where the splits' labels differ (their chosen weights), the weight dropped. """
    return [column[0] if len(set(column)) == 1 else column[0].split(" (weight")[0] + " (weight per split)"
            for column in zip(*names)]


def pooled(case_dicts: list[dict]) -> dict:
    return {key: np.concatenate([c[key] for c in case_dicts]) for key in case_dicts[0]}


def means(cases: dict) -> dict:
    return {key: float(v.mean()) if v.size else 0.0 for key, v in cases.items()}


def paired_interval(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same cases, and its 95 % bootstrap interval (cases resampled)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, diff.size, (rounds, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


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
    return {**model, **{k: sections["train"].get(k, 0) for k in ("optimizer", "epochs", "batch_size",
                                                                 "learning_rate", "schedule", "min_steps")}}


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
    prepared = Prepared(train=data, val=None, test=np.zeros(0, np.int64),
                        extra={"train_categories": None, "item_words": task.check_names(cfg, data)})
    T.apply_seed(cfg["train"])
    ds, _ = task.datasets(cfg, prepared, cfg["train"]["batch_size"])
    # train.min_steps, as a run does: a small data set repeats within an epoch
    ds, _, _ = T.repeat_to_min_steps(ds, cfg["train"]["epochs"], cfg["train"]["min_steps"])
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
    epochs = settings["epochs"]
    if settings.get("min_steps"):  # as many passes over a small data set as nnkit's train.min_steps makes
        from nnkit.train import steps_for_min_steps

        nnkit_epochs, steps = settings["nnkit_epochs"], -(-data.tokens.size // settings["batch_size"])
        passes = nnkit_epochs * steps_for_min_steps(nnkit_epochs, settings["min_steps"], steps) / steps
        epochs = max(epochs, round(passes))
    start = time.perf_counter()
    model = Word2Vec(corpus, vector_size=dim, window=settings["window"], negative=settings["negatives"], sg=1,
                     ns_exponent=settings["noise_power"], sample=settings["subsample"], epochs=epochs,
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

def train_random(data, settings: dict, dim: int, seed: int = 0):
    return np.random.default_rng([seed, 7]).normal(size=(data.vocab_size, dim)), 0.0


def train_nnkit_both(data, settings: dict, dim: int, seed: int = 0):
    """Negative sampling's target + context vectors, normalised and summed (what the softmax serves)."""
    from nnkit.tasks.embedding.baselines import normalize

    vectors, seconds = train_nnkit(data, settings, dim, seed)
    return normalize(vectors) + normalize(train_nnkit.last_context), seconds


def load_benches(args) -> list[Bench]:
    benches = []
    if "movielens" in args.data:
        benches.append(Bench("MovieLens latest-small", movielens(Path(args.movielens), args.min_count)))
    if "retail" in args.data:
        # 55 invoices of 2+ items: one split would score a few dozen ends, so the invoices are cut into
        # folds, every item after an invoice's first is a case, and the folds' cases are pooled
        benches.append(Bench("Online Retail sample", retail(Path(args.retail), 1), tail=None,
                             folds=args.retail_folds))
    return benches


def fmt(metrics: dict) -> str:
    return " | ".join(f"{v:.3f}" for v in metrics.values())


def compare(args, benches):
    settings = preset_settings(args)
    if args.window:  # every method's window (a user run chooses it on validation: 5, 3 or 10)
        settings["window"] = args.window
    if args.name_words:  # nnkit's model.name_words (a user run chooses 0 or 3 on validation)
        settings["name_words"] = args.name_words
    # gensim keeps word2vec's budget of 12 epochs (its default is 5) when nnkit's softmax trains for 5
    # (and, on a data set small enough for nnkit's train.min_steps, as many passes as nnkit makes)
    gensim = {**settings, "epochs": max(settings["epochs"], GENSIM_EPOCHS), "nnkit_epochs": settings["epochs"]}
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
    if settings["objective"] != "softmax":
        methods.append(("nnkit target+context", train_nnkit_both, settings))
    print(f"nnkit settings ({args.preset}): {settings}; gensim epochs {gensim['epochs']} (on a data set small "
          "enough for nnkit's train.min_steps: as many passes as nnkit makes)")
    for bench in benches:
        print(f"\n### {bench.describe()}\n")
        cases = {}  # (method, seed) -> post-processed test cases
        lines, walls = [], {}
        for seed in range(args.seeds):
            for name, trainer, config in methods:
                raw, done, choices, seconds = bench.run(trainer, config, args.dim, seed)
                cases[name, seed] = done
                walls.setdefault(name, []).append(seconds)
                lines.append(f"| {name} | {seed} | {fmt(means(raw))} | {seconds:.1f} |")
                lines.append(f"| {name} + {'/'.join(sorted(set(choices)))} (validation's choice) | {seed} | "
                             f"{fmt(means(done))} | {seconds:.1f} |")
        keys = list(done)
        print("| method | seed | " + " | ".join(keys) + " | train wall s |")
        print("|---|---|" + "---|" * (len(keys) + 1))
        print("\n".join(lines))
        rnd, _, _, _ = bench.run(train_random, settings, args.dim, 0, post=False)
        print(f"| random vectors | – | {fmt(means(rnd))} | – |")
        baselines = bench.baselines("test", settings["window"], args.dim)
        for name, metrics in baselines.items():
            cells = " | ".join(["–"] * (len(keys) - len(metrics)) + [f"{v:.3f}" for v in means(metrics).values()])
            print(f"| {name} (next item) | – | {cells} | – |")
        report_comparison(bench, methods, cases, walls, args.seeds, settings,
                          {name: c for name, c in baselines.items() if "names" in name})


def report_comparison(bench, methods, cases, walls, seeds, settings, scorers=None):
    """Mean scores, nnkit's paired differences (95 % bootstrap intervals over the cases) and wall times.

    ``scorers``: next-item baselines' cases (no seeds) to compare with too, on the keys they have.
    """
    keys = [bench.primary] + [k for k in cases["nnkit item2vec", 0] if k != bench.primary]
    per_case = {(name, key): np.mean([cases[name, s][key] for s in range(seeds)], axis=0)
                for name, _, _ in methods for key in keys}
    for name, their_cases in (scorers or {}).items():
        methods = [*methods, (name, None, None)]
        per_case.update({(name, key): their_cases[key] for key in keys if key in their_cases})
    print(f"\n{bench.name}: over {seeds} seed(s), test cases post-processed as nnkit does (init="
          f"{settings['init']}); nnkit minus each method on the same cases, with a 95 % bootstrap interval:")
    for name, _, _ in methods:
        cells = []
        for key in (k for k in keys if (name, k) in per_case):
            mine, theirs = per_case["nnkit item2vec", key], per_case[name, key]
            cell = f"{key} {theirs.mean():.3f}"
            if name != "nnkit item2vec":
                diff, low, high = paired_interval(mine, theirs)
                cell += f" ({diff:+.3f}, {low:+.3f} to {high:+.3f})"
            cells.append(cell)
        size = next(per_case[name, k].size for k in keys if (name, k) in per_case)
        print(f"  {name} [{size} cases]: " + "; ".join(cells))
    nn, gs = np.mean(walls["nnkit item2vec"]), np.mean(walls["gensim Word2Vec"])
    print(f"  wall time (training, summed over {max(1, bench.folds)} split(s)): nnkit {nn:.1f}s / gensim "
          f"{gs:.1f}s = {nn / max(gs, 1e-9):.2f}x")


GENSIM_EPOCHS = 12
NAME_WEIGHTS = (0.3, 1.0, 3.0)  # the names' cosine added to PPMI-SVD's (baseline_cases), chosen on validation

# --objective negative_sampling: what users' sessions trained with before the softmax (and what a
# catalogue above EmbeddingTask.softmax_max_items needs)
NEGATIVE_SAMPLING = {"objective": "negative_sampling", "optimizer": "sgd", "learning_rate": 0.5, "epochs": 12, "min_steps": 0,
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
    ("context", ["session"]),
    ("window", [3, 10, 25]),
    ("noise_power", [-0.5, 1.0]),
    ("subsample", [0.0, 1e-2]),
    ("epochs", [6, 24]),
    ("schedule", ["constant"]),
    ("learning_rate", [0.25, 1.0]),
    ("batch_size", [4096]),
]

SOFTMAX_SWEEP = [  # the same idea for the softmax's own settings (Adam: rate, epochs, centres per step)
    ("context", ["session"]),
    ("window", [3, 10, 25]),
    ("subsample", [0.0, 1e-2]),
    ("epochs", [3, 8]),
    ("min_steps", [0, 250, 500, 1000, 2000]),  # what a small data set (the retail sample) trains for
    ("init", ["ppmi_svd"]),
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
        rows = [("base", "–", base)] + [
            (setting, value, {**base, setting: value})
            for setting, values in (SOFTMAX_SWEEP if base["objective"] == "softmax" else SWEEP)
            if not only or setting in only for value in values if base.get(setting) != value]
        for i, (setting, value, changed) in enumerate(rows):
            raw, _, _, seconds = bench.run(train_nnkit, changed, args.dim, 0, part="validation", post=False)
            metrics = means(raw)
            if i == 0:
                print("| setting | value | " + " | ".join(metrics) + " | wall s |")
                print("|---|---|" + "---|" * (len(metrics) + 1))
            print(f"| {setting} | {value} | {fmt(metrics)} | {seconds:.1f} |", flush=True)


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
    parser.add_argument("--name-words", type=float, default=0.0,
                        help="compare: nnkit's model.name_words (the items' name words added to their vectors)")
    parser.add_argument("--retail-folds", type=int, default=5,
                        help="the retail invoices' folds: each fold's cases are scored by models trained on the rest")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU threads; load average {os.getloadavg()[0]:.1f} at start "
          "(a shared machine: compare the methods within this run, not across runs)")
    benches = load_benches(args)
    (compare if args.command == "compare" else sweep)(args, benches)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
