"""Item embeddings on users' sessions: held-out session ends, next-item scores, several categories per
item, whole-session contexts, negative noise exponents, and settings chosen on validation only."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnkit.datasets import sessions as S
from nnkit.tasks.embedding import baselines as B
from nnkit.tasks.embedding import next_item as N

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _sessions(*lists):
    """SessionData from lists of item ids (strings), in order."""
    ids = sorted({i for s in lists for i in s})
    index = {i: n for n, i in enumerate(ids)}
    tokens = np.array([index[i] for s in lists for i in s])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in lists])])
    return S.from_arrays(tokens, offsets, np.array(ids))


def _ids(data, rows):
    return [data.item_ids[r] if r >= 0 else None for r in rows]


# -- held-out session ends and next-item scores -------------------------------------------------------

def test_hold_out_session_ends_removes_ends_before_training():
    data = _sessions(list("abc"), list("abd"), list("xyz"), list("ab"), list("xyq"))
    train, val, test, summary = N.hold_out_session_ends(data, 0.5, 0.5, seed=0)
    # eligible: sessions of >= 3 items (4 of 5); all are held out, half validation, half test
    assert sorted(_ids(train, np.concatenate([val.queries, test.queries]))) == list("bbyy")
    # the training sessions lost exactly those ends; items seen only there left the vocabulary
    kept = [list(train.item_ids[train.tokens[s:e]]) for s, e in zip(train.offsets[:-1], train.offsets[1:])]
    assert kept == [list("ab"), list("ab"), list("xy"), list("ab"), list("xy")]
    assert set(train.item_ids) == {"a", "b", "x", "y"}
    assert (np.concatenate([val.targets, test.targets]) == -1).all()  # c, d, z, q: never seen in training
    assert val.scorable().size == 0 and "2, 2" in summary["sessions with held-out ends (validation, test)"]


def test_hold_out_tail_and_scorable_cases():
    data = _sessions(list("abcab"), list("abcab"), list("cabc"))
    train, val, test, _ = N.hold_out_session_ends(data, 0.0, 1.0, seed=0, tail=2)
    assert val.size == 0 and test.size == 6  # 3 sessions x 2 held-out items
    got = sorted(zip(_ids(train, test.queries), _ids(train, test.targets)))
    assert got == sorted([("c", "a"), ("a", "b"), ("c", "a"), ("a", "b"), ("a", "b"), ("b", "c")])
    assert [list(train.item_ids[train.tokens[s:e]]) for s, e in zip(train.offsets[:-1], train.offsets[1:])] \
        == [list("abc"), list("abc"), list("ca")]


def test_small_data_holds_out_enough_cases_and_keeps_each_first_item():
    # 10 sessions of 6..9 items; one end from each of the 2 test sessions would be 2 cases
    lists = [[f"i{(s + j) % 7}" for j in range(6 + s % 4)] for s in range(10)]
    data = _sessions(*lists)
    lengths = np.diff(data.offsets)
    train, val, test, summary = N.hold_out_session_ends(data, 0.2, 0.2, seed=0, min_test_cases=8)
    # ceil(8 / 2 test sessions) = 4 ends from each of the 2 validation and 2 test sessions
    kept = np.diff(train.offsets)
    assert sorted((lengths - kept).tolist()) == [0] * 6 + [4] * 4
    assert val.size == test.size == 8 and summary["held-out items per such session"] == 4
    # a minimum beyond the sessions' lengths: all but the first item (the lone first item then
    # trains nothing: its session is dropped)
    train, val, test, summary = N.hold_out_session_ends(data, 0.2, 0.2, seed=0, min_test_cases=40)
    assert train.n_sessions == 6
    assert val.size + test.size == data.tokens.size - train.tokens.size - 4
    assert summary["held-out items per such session"] == "all but the first"
    # enough test sessions for the minimum: one end each, as without it
    _, _, test_one, summary_one = N.hold_out_session_ends(data, 0.2, 0.2, seed=0, min_test_cases=2)
    assert test_one.size == 2 and summary_one["held-out items per such session"] == 1


def test_heldout_items_setting_is_checked_at_the_door(tmp_path, cli_run):
    result = cli_run("run", "products", "--data", _retail_like(tmp_path), "--set", "data.session_column=invoice",
                     "--set", "data.item_column=sku", "--set", "eval.heldout_items=most",
                     "--out", tmp_path / "r", expect=2)
    assert "eval.heldout_items" in result.output and "'auto' or 'all'" in result.output
    assert not (tmp_path / "r").exists()


def test_folds_cover_each_eligible_session_once_and_all_but_the_first_item_is_held_out():
    data = _sessions(list("abcd"), list("ab"), list("bcd"), list("abc"), list("dcb"), list("cab"))
    folds = N.session_folds(data, 2, seed=0, tail=None)
    # sessions of >= 3 items are eligible (one kept item, at least two cases); "ab" is not
    assert sorted(np.concatenate(folds).tolist()) == [0, 2, 3, 4, 5] and [f.size for f in folds] == [3, 2]
    assert N.session_folds(data, 2, seed=0, tail=None)[0].tolist() == folds[0].tolist()  # seeded
    train, val, test, summary = N.cut_session_ends(data, np.array([0]), np.array([2, 4]), tail=None)
    kept = [list(train.item_ids[train.tokens[s:e]]) for s, e in zip(train.offsets[:-1], train.offsets[1:])]
    # held-out sessions keep only their first item (then too short to train on: dropped)
    assert kept == [list("ab"), list("abc"), list("cab")]
    assert list(zip(_ids(train, val.queries), _ids(train, val.targets))) == [("a", "b"), ("b", "c"), ("c", None)]
    # "d" is left only as the lone first item of "dcb": no row, so that case is not scorable either
    assert list(zip(_ids(train, test.queries), _ids(train, test.targets))) == [
        ("b", "c"), ("c", None), (None, "c"), ("c", "b")]
    assert test.scorable().size == 2
    assert summary["held-out items per such session"] == "all but the first"
    assert summary["held-out items not seen in training (validation, test)"] == "1, 1"


def test_rank_metrics_by_hand():
    scores = np.array([[9.0, 5.0, 4.0, 3.0],   # query 0 excluded: target 2 is 2nd
                       [1.0, 9.0, 2.0, 3.0],   # query 1 excluded: target 0 is 3rd
                       [0.0, 1.0, 9.0, 1.0],   # target 1 ties with 3 for 1st-2nd: mid rank 1.5
                       [np.nan] * 4,           # a diverged model: all tied, no credit
                       [9.0, 1.0, 1.0, 1.0]])  # the item repeated: out of reach (query excluded)
    ranks = N.target_ranks(scores, np.array([0, 1, 2, 0, 0]), np.array([2, 0, 1, 1, 0]))
    assert ranks.tolist() == [2, 3, 1.5, 2, np.inf]  # 3 candidates tied: mid rank 2
    m = N.summarize_ranks(ranks, k=1)
    assert m == {"hit_rate_at_1": 0.0, "mrr_at_1": 0.0}
    m = N.summarize_ranks(ranks, k=2)
    assert m == {"hit_rate_at_2": pytest.approx(3 / 5), "mrr_at_2": pytest.approx((1 / 2 + 0 + 1 / 1.5 + 1 / 2) / 5)}


def test_next_item_baselines_know_the_answers():
    # b always follows a; popularity favours x (most frequent); co-occurrence knows a-b, and x-y
    # ties with x-z (two sessions each), broken by popularity (y: 3, z: 2)
    train = _sessions(list("ab"), list("ab"), list("xy"), list("xy"), list("xz"), list("xz"), list("xq"),
                      list("ya"))
    row = dict(zip(train.item_ids, range(train.vocab_size)))
    ends = N.HeldOutEnds(np.array([row["a"], row["x"]]), np.array([row["b"], row["z"]]))
    out = N.next_item_baselines(train, ends, k=1)
    assert out["cooccurrence"] == {"hit_rate_at_1": 0.5, "mrr_at_1": 0.5}  # a -> b right; x -> y (tie, more popular)
    assert out["popularity"]["hit_rate_at_1"] == 0.0  # a -> x; x -> a or b (x itself excluded)
    vectors = np.eye(train.vocab_size, dtype=np.float32)
    vectors[row["b"]] = vectors[row["a"]]
    vectors[row["z"]] = vectors[row["x"]]
    assert N.ranked(N.vector_scorer(vectors), ends, train.vocab_size, 1) == {"hit_rate_at_1": 1.0, "mrr_at_1": 1.0}


# -- several categories per item ----------------------------------------------------------------------

def test_items_with_several_categories(tmp_path):
    sessions = tmp_path / "s.csv"
    sessions.write_text("session_id,item_id\n1,a\n1,b\n2,c\n2,a\n3,d\n3,b\n")
    items = tmp_path / "i.csv"
    items.write_text("item_id,category\na,Drama|War\nb,Comedy\nc,War|Comedy\nd,\n")
    data = S.read_sessions(sessions, items_path=str(items), category_separator="|")
    assert data.category_names == ["Comedy", "Drama", "War"]
    main = dict(zip(data.item_ids, data.categories))
    assert main == {"a": 1, "b": 0, "c": 2, "d": -1}  # the first listed; d has none
    labels = B.category_matrix(data.categories, 3, data.extra_categories).toarray()
    as_sets = {i: {data.category_names[c] for c in np.flatnonzero(labels[r])} for r, i in enumerate(data.item_ids)}
    assert as_sets == {"a": {"Drama", "War"}, "b": {"Comedy"}, "c": {"War", "Comedy"}, "d": set()}
    plain = S.read_sessions(sessions, items_path=str(items))  # no separator: one category per cell
    assert "Drama|War" in plain.category_names and plain.extra_categories is None


def test_multilabel_knn_by_hand():
    import scipy.sparse as sp

    labels = sp.csr_matrix(np.array([[1, 1, 0],    # 0: A, B
                                     [0, 1, 0],    # 1: B
                                     [0, 0, 1],    # 2: C
                                     [0, 1, 1]], bool))  # 3: B, C
    neighbours = np.array([[1, 3], [2, 3]])  # query 0: B, B+C -> votes B (hit); query 1: C, B+C -> C (miss)
    hit, share = B.multilabel_knn(neighbours, np.array([0, 1]), labels)
    assert hit.tolist() == [True, False]
    assert share.tolist() == [1.0, 0.5]


# -- the skip-gram pipeline -------------------------------------------------------------------------

def test_negative_noise_power_favours_rare_items():
    counts = np.array([2000, 400, 100, 20])
    tokens = np.random.default_rng(0).permutation(np.repeat(np.arange(4), counts))
    data = S.from_arrays(tokens, np.arange(0, tokens.size + 1, 10), np.array(list("wxyz")))
    ds = S.skipgram_dataset(data, window=1, negatives=10, centers_per_batch=1000, sample=0, shrink=False,
                            power=-0.5)
    draws = np.concatenate([x[1].numpy()[:, 1:].ravel() for x, _ in ds])
    expected = counts ** -0.5 / np.sum(counts ** -0.5)
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / draws.size, expected, atol=0.01)


def test_session_context_stays_in_the_session_and_reaches_far():
    data = _sessions(list("abcdefgh"), list("stuvwxyz"))
    ds = S.skipgram_dataset(data, window=1, negatives=1, centers_per_batch=16, sample=0, shrink=False,
                            context="session")
    pairs = [(data.item_ids[t], data.item_ids[c]) for _ in range(30) for x, _ in ds
             for t, c in zip(x[0].numpy(), x[1].numpy()[:, 0])]
    assert all((t in "abcdefgh") == (c in "abcdefgh") and t != c for t, c in pairs)
    assert ("a", "h") in pairs and ("z", "s") in pairs  # beyond any neighbour window
    with pytest.raises(ValueError, match="context"):
        S.skipgram_dataset(data, context="basket")


# -- the task on user sessions: the choice sees validation only -------------------------------------------

class _Poisoned:
    """Stands for the test part: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test part was read during selection ({name})")

    def __array__(self, *args, **kwargs):
        raise AssertionError("the test part was read during selection (as an array)")

    def __len__(self):
        raise AssertionError("the test part was read during selection (len)")


def _retail_like(tmp_path: Path, names: bool = False) -> Path:
    """Invoices of two kinds of basket (A*, B*); ``names``: A<n> and B<n> are both described "no<n>"."""
    rng = np.random.default_rng(0)
    lines = ["invoice,sku" + (",description" if names else "")]
    for s in range(120):  # two kinds of basket, so there is something to learn
        kind = s % 2
        for item in rng.choice(12, size=rng.integers(3, 7), replace=False):
            lines.append(f"{s},{'AB'[kind]}{item}" + (f",no{item}" if names else ""))
    path = tmp_path / "invoices.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _resolve(path, *sets):
    from nnkit.pipeline import resolve

    base = ["data.session_column=invoice", "data.item_column=sku", "data.timestamp_column=", "model.dim=8",
            "train.epochs=2", "train.batch_size=64", "eval.probe_folds=0", "eval.map_items=20"]
    return resolve("products", data=str(path), overrides=base + list(sets))


def test_selection_reads_validation_only(tmp_path):
    from nnkit.runs import Run, write_text
    from nnkit.select import choose_settings

    resolved = _resolve(_retail_like(tmp_path), "model.context=window")
    task, cfg = resolved.task, resolved.cfg
    task.window_candidates = task.window_candidates[:2]  # two are enough to choose (and cheaper)
    prepared = task.load(cfg)
    assert prepared.extra["val_ends"].size > 0
    prepared.test = _Poisoned()
    prepared.extra["test_ends"] = _Poisoned()
    run = Run(tmp_path / "run")
    run.path.mkdir()
    write_text(run.meta_file, "{}")
    chosen = choose_settings(task, cfg, prepared, run)
    selection = json.loads(run.meta_file.read_text())["selection"]
    assert [c["settings"] for c in selection["candidates"]] == [{"model.window": 5}, {"model.window": 3}]
    assert selection["budget"] == {"epochs": 1, "min_steps": 450}  # half of each: eval.select_budget = 0.5
    assert selection["metric"].startswith("hit_rate_at_10 (validation")
    best = max(selection["candidates"], key=lambda c: c["validation"])
    assert selection["chosen"] == best["settings"]
    assert all(chosen["model"][k.split(".")[1]] == v for k, v in best["settings"].items())
    assert f'window = {chosen["model"]["window"]}' in run.config_file.read_text()
    assert not (run.path / "selection").exists()  # trial folders are removed; the table stays


def test_blown_up_vectors_are_an_error_and_a_diverging_candidate_loses(tmp_path, monkeypatch):
    from nnkit.errors import NnkitError, TrainingDiverged
    from nnkit.report import selection_section
    from nnkit.runs import Run, write_text
    from nnkit.select import choose_settings
    from nnkit.tasks.embedding import task as T

    cfg = {"train": {"learning_rate": 0.5}, "model": {"shared_negatives": 100, "objective": "negative_sampling"}}
    healthy = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    T.check_not_diverged(healthy, cfg)  # norms ~3: nothing to say
    with pytest.raises(TrainingDiverged, match=r"median norm is 2\.64e\+05.*try 0\.25.*shared_negatives = 0"):
        T.check_not_diverged(healthy * 1e5, cfg)
    with pytest.raises(TrainingDiverged, match="nan"):
        T.check_not_diverged(np.full((3, 8), np.nan, np.float32), cfg)
    softmax = {"train": {"learning_rate": 0.01}, "model": {"shared_negatives": 100, "objective": "softmax"}}
    with pytest.raises(TrainingDiverged, match="try 0.005") as info:  # the softmax draws nothing to share
        T.check_not_diverged(healthy * 1e5, softmax)
    assert "shared_negatives" not in str(info.value)

    # in a choice of settings, the candidate that diverges loses and the run goes on with the other
    real_check = T.check_not_diverged

    def window_5_diverges(vectors, cfg):
        if cfg["model"]["window"] == 5:
            raise TrainingDiverged("training diverged: the item vectors' median norm is 1e+05")
        real_check(vectors, cfg)

    monkeypatch.setattr(T, "check_not_diverged", window_5_diverges)
    resolved = _resolve(_retail_like(tmp_path), "model.context=window")
    task, cfg = resolved.task, resolved.cfg
    task.window_candidates = task.window_candidates[:2]
    prepared = task.load(cfg)
    run = Run(tmp_path / "run")
    run.path.mkdir()
    write_text(run.meta_file, "{}")
    chosen = choose_settings(task, cfg, prepared, run)
    selection = json.loads(run.meta_file.read_text())["selection"]
    assert chosen["model"]["window"] == 3 and selection["chosen"] == {"model.window": 3}
    assert selection["candidates"][0]["validation"] is None and "diverged" in selection["candidates"][0]["diverged"]
    assert "| model.window = 5 | diverged |" in "\n".join(selection_section(selection))
    task.window_candidates = (5, 5)
    with pytest.raises(NnkitError, match="every candidate setting diverged"):
        choose_settings(task, cfg, prepared, run)


def test_user_set_keys_are_not_chosen_and_bundled_data_chooses_nothing(tmp_path):
    path = _retail_like(tmp_path)
    user = _resolve(path)  # the recipe's [with_data] table: every context in the window, window chosen
    assert (user.cfg["model"]["window"], user.cfg["model"]["shrink_window"]) == ("auto", False)
    prepared = user.task.load(user.cfg)
    assert user.task.candidate_settings(user.cfg, prepared) == [{"model.window": w} for w in (5, 3, 10)]
    assert user.task.settings(user.cfg, prepared)["window"] == 5  # no choice made yet: the first
    resolved = _resolve(path, "model.window=2")
    prepared = resolved.task.load(resolved.cfg)
    assert resolved.task.candidate_settings(resolved.cfg, prepared) == []
    assert resolved.task.settings(resolved.cfg, prepared)["window"] == 2
    from nnkit.pipeline import resolve

    shop = resolve("products", overrides=["data.products=200", "data.categories=4", "data.sessions=300"])
    assert (shop.cfg["model"]["window"], shop.cfg["model"]["shrink_window"]) == (3, True)
    prepared = shop.task.load(shop.cfg)
    assert shop.task.candidate_settings(shop.cfg, prepared) == []
    chooses = resolve("products", overrides=["data.products=200", "data.categories=4", "data.sessions=300",
                                             "model.window=auto"])  # the bundled shop may choose too
    assert chooses.task.candidate_settings(chooses.cfg, prepared) == [{"model.window": w} for w in (5, 3, 10)]
    view = shop.task.validation_view(prepared)  # what `nnkit tune` scores on: nothing of the test part
    assert view.test is prepared.val and view.extra["test_ends"] is prepared.extra["val_ends"]
    assert (view.train.categories[prepared.test] == -1).all() and (view.train.categories[prepared.val] >= 0).all()


def test_run_on_sessions_without_categories_scores_next_items(tmp_path):
    from nnkit.pipeline import start

    resolved = _resolve(_retail_like(tmp_path), "eval.select_budget=0")
    run = start(resolved, stages=("train", "evaluate", "report"), out=str(tmp_path / "run"))
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["primary"] == "hit_rate_at_10"
    assert set(metrics["baselines"]) == {"random", "popularity", "cooccurrence", "ppmi_svd"}
    assert set(metrics["model"]) == {"hit_rate_at_10", "mrr_at_10"}
    used = metrics["details"]["settings"]  # [with_data]; the window 'auto' with no budget: the first candidate
    assert {k: used[k] for k in ("init", "context", "window", "shrink_window")} == {
        "init": "random", "context": "window", "window": 5, "shrink_window": False}
    assert "next-item retrieval" in run.report_file.read_text()
    # eval.heldout_items = auto: 12 test invoices of 3-6 items hold out all but their first item, so the
    # test part has several cases per invoice (one end each would be 12)
    assert metrics["details"]["held-out session ends scored"] > 24
    meta = json.loads(run.meta_file.read_text())
    assert "selection" not in meta
    # [with_data.train] min_steps = 900: ~8 batches a pass, so each of the 2 epochs repeats them to 450 steps
    repeat = meta["steps_per_epoch"]
    assert repeat["min_steps"] == 900 and repeat["steps"] == 450 and 0 < repeat["steps_per_pass"] < 20
    assert len(run.history_file.read_text().strip().splitlines()) == 1 + 2  # still 2 epochs
    assert "Each epoch made 450 optimizer steps" in run.report_file.read_text()
    finished = meta["finished"]  # model.postprocess = auto: the best of the three on validation ends
    assert set(finished["scores"]) == {"none", "center", "all_but_the_top"}
    assert finished["scores"][finished["chosen"]] == max(finished["scores"].values())
    assert "Post-processing of the item vectors" in run.report_file.read_text()
    if finished["chosen"] != "none":  # the saved model serves the post-processed vectors
        import keras

        vectors = keras.saving.load_model(run.model_file).get_layer("item2vec_target").get_weights()[0]
        np.testing.assert_allclose(vectors.mean(axis=0), 0.0, atol=1e-5)


def test_ppmi_svd_init_starts_both_tables_from_the_factors(tmp_path):
    path = _retail_like(tmp_path)
    user = _resolve(path, "model.window=3", "model.init=ppmi_svd")
    task, cfg = user.task, user.cfg
    prepared = task.load(cfg)
    data = prepared.train
    target, context = B.ppmi_factors(data.tokens, data.offsets, data.vocab_size, 8, 3, seed=0)
    assert target.shape == context.shape == (data.vocab_size, 8) and target.dtype == np.float32
    np.testing.assert_array_equal(target, B.ppmi_svd(data.tokens, data.offsets, data.vocab_size, 8, 3, seed=0))
    # target . context fits the PPMI matrix: items of one kind of basket (A* or B*) co-occur, across kinds never
    fit = target @ context.T
    kind = np.array([str(i)[0] for i in data.item_ids])
    same = kind[:, None] == kind[None, :]
    assert fit[same].mean() > 0.2 > abs(fit[~same].mean())
    model = task.build_model(cfg, prepared)  # before any training: exactly the factors
    np.testing.assert_array_equal(model.get_layer("item2vec_target").get_weights()[0], target)
    np.testing.assert_array_equal(model.get_layer("item2vec_context").get_weights()[0], context)
    plain = _resolve(path, "model.window=3")
    assert plain.cfg["model"]["init"] == "random"  # the default, for users' sessions too
    model = plain.task.build_model(plain.cfg, plain.task.load(plain.cfg))
    assert not model.get_layer("item2vec_context").get_weights()[0].any()  # word2vec's zero contexts


def test_postprocess_centres_removes_the_top_direction_and_choose_prefers_simpler_ties():
    from nnkit.tasks.embedding import postprocess as P

    rng = np.random.default_rng(0)
    common = rng.normal(size=8)  # a direction every vector shares, scaled by "popularity"
    vectors = rng.normal(size=(50, 8)) + 5.0 + np.outer(rng.uniform(1, 4, 50), common)
    assert P.apply(vectors, "none").dtype == np.float32
    np.testing.assert_allclose(P.apply(vectors, "none"), vectors, rtol=1e-6)
    centred = P.apply(vectors, "center")
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-5)
    top = np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)[2][0]
    cleaned = P.apply(vectors, "all_but_the_top")
    np.testing.assert_allclose(cleaned @ top, 0.0, atol=1e-4)
    np.testing.assert_allclose(cleaned.mean(axis=0), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="postprocess must be one of"):
        P.apply(vectors, "whiten")
    chosen, scores = P.choose(vectors, lambda v: 1.0)
    assert chosen == "none" and set(scores) == set(P.CHOICES)  # all tie: the simplest
    chosen, _ = P.choose(vectors, lambda v: -float(np.abs(v @ top).mean()))
    assert chosen == "all_but_the_top"


def test_sessions_too_short_to_evaluate_fail_clearly(tmp_path, cli_run):
    path = tmp_path / "pairs.csv"
    path.write_text(textwrap.dedent("""\
        session_id,item_id
        1,a
        1,b
        2,a
        2,b
        """))
    result = cli_run("run", "products", "--data", path, "--out", tmp_path / "r", expect=2)
    assert "nothing to evaluate" in result.output
