"""The products recipe on inputs nobody here wrote: labels matplotlib would read as maths, an items file
named relative to another folder or changed since the run, repeated items at session ends, no validation
part to choose on, and verdicts that say why categories were not scored."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from nnkit.tasks.embedding import next_item as N
from test_products_sessions import _sessions

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _catalogue(tmp_path: Path, categories=("$", "$$", "$$$")) -> tuple[Path, Path]:
    """Sessions of 3 kinds of item; an items CSV naming each kind's category (price tiers by default)."""
    rng = np.random.default_rng(0)
    sessions = ["session_id,item_id"]
    for s in range(90):
        kind = s % 3
        for item in rng.choice(8, size=rng.integers(3, 6), replace=False):
            sessions.append(f"{s},k{kind}-{item}")
    items = ["item_id,category"] + [f"k{kind}-{i},{categories[kind]}" for kind in range(3) for i in range(8)]
    (tmp_path / "s.csv").write_text("\n".join(sessions) + "\n")
    (tmp_path / "items.csv").write_text("\n".join(items) + "\n")
    return tmp_path / "s.csv", tmp_path / "items.csv"


def test_plots_draw_labels_as_written(tmp_path):
    from nnkit.tasks.embedding.plots import write_plots

    sessions, items = _catalogue(tmp_path)
    from nnkit.datasets.sessions import read_sessions

    data = read_sessions(sessions, items_path=str(items))
    assert sorted(data.category_names) == ["$", "$$", "$$$"]
    run = SimpleNamespace(path=tmp_path, plot_dir=tmp_path / "plots")
    run.plot_dir.mkdir()
    vectors = np.random.default_rng(0).normal(size=(data.vocab_size, 4))
    paths = write_plots(vectors, data, {"projector_items": 10, "map_items": 20}, run)
    assert (tmp_path / "plots" / "embedding_map.png") in paths  # mathtext raised ParseException on "$$"


def test_items_path_is_absolute_in_the_run_config_and_part_of_the_fingerprint(tmp_path, monkeypatch):
    from nnkit.pipeline import resolve

    sessions, items = _catalogue(tmp_path, categories=("a", "b", "c"))
    monkeypatch.chdir(tmp_path)
    sets = ["data.items=items.csv", "model.dim=4"]
    resolved = resolve("products", data=str(sessions), overrides=sets)
    assert resolved.cfg["data"]["items"] == str(items.resolve())  # evaluate from elsewhere reads the same file
    before = resolved.task.load(resolved.cfg).fingerprint
    other = tmp_path / "other"
    other.mkdir()
    (other / "items.csv").write_text(items.read_text().replace(",a\n", ",c\n"))  # same ids, other categories
    monkeypatch.chdir(other)
    moved = resolve("products", data=str(sessions), overrides=sets)
    assert moved.cfg["data"]["items"] == str((other / "items.csv").resolve())
    assert moved.task.load(moved.cfg).fingerprint != before  # other data: its own metrics file, not the run's


def test_no_validation_part_means_nothing_is_chosen(tmp_path):
    from nnkit.pipeline import resolve

    sessions, items = _catalogue(tmp_path, categories=("a", "b", "c"))
    resolved = resolve("products", data=str(sessions), overrides=[
        f"data.items={items}", "eval.validation_fraction=0", "eval.heldout_sessions=0"])
    prepared = resolved.task.load(resolved.cfg)
    assert resolved.cfg["model"]["window"] == "auto"
    assert resolved.task.candidate_settings(resolved.cfg, prepared) == []  # nothing to score candidates on
    with_validation = resolve("products", data=str(sessions), overrides=[f"data.items={items}"])
    assert len(with_validation.task.candidate_settings(
        with_validation.cfg, with_validation.task.load(with_validation.cfg))) == 3


def test_a_repeated_item_at_a_session_end_is_counted_not_scored():
    data = _sessions(list("abb"), list("abc"), list("xyy"), list("xyz"), list("bc"), list("yz"))
    train, val, test, summary = N.cut_session_ends(data, np.array([0]), np.array([1, 2, 3]), tail=1)
    # "b" after "b" and "y" after "y": no method ranks the query itself, so they are not cases
    assert val.size == 1 and val.scorable().size == 0
    assert test.size == 3
    kept = test.scorable()
    assert [(train.item_ids[q], train.item_ids[t]) for q, t in zip(kept.queries, kept.targets)] == [
        ("b", "c"), ("y", "z")]
    key = "held-out items repeating the item before them (validation, test; not scored)"
    assert summary[key] == "1, 1"


def test_verdict_says_why_categories_were_not_scored_and_when_k_is_too_large():
    from nnkit.tasks.embedding.verdicts import next_item_verdict

    scores = {"hit_rate_at_10": 0.9, "mrr_at_10": 0.5}
    baselines = {name: dict(scores) for name in ("random", "popularity", "cooccurrence")}
    plain = next_item_verdict(scores, baselines, 10, cases=50, items=500)
    assert plain.startswith("No item categories were given") and "told apart" not in plain
    few = next_item_verdict(scores, baselines, 10, cases=50, with_category=8, items=12)
    assert few.startswith("Only 8 items have a category, too few to score kNN accuracy with eval.k = 10")
    assert "With 12 items, the 10 nearest hold half of them or more" in few


def test_softmax_refusal_names_one_set_per_key(tmp_path, cli_run):
    lines = ["session_id,item_id"] + [f"{s},i{s}" for s in range(20_001)] + [f"{s},i{s + 1}" for s in range(20_001)]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    result = cli_run("run", "products", "--data", path, "--set", "data.min_count=1", "--out", tmp_path / "r",
                     expect=2)
    assert "--set model.objective=negative_sampling --set train.optimizer=sgd" in result.output
    assert not (tmp_path / "r").exists()


def test_sessions_csv_names_the_items_csv_error(tmp_path, cli_run):
    sessions, _ = _catalogue(tmp_path)
    result = cli_run("run", "products", "--data", sessions, "--set", f"data.items={tmp_path / 'missing.csv'}",
                     "--out", tmp_path / "r", expect=2)
    assert "missing.csv" in result.output
    assert textwrap.dedent(result.output).count("\n") <= 2


def test_an_items_file_naming_none_of_the_items_is_an_error_and_strays_are_counted(tmp_path):
    from nnkit.datasets.sessions import read_sessions
    from nnkit.errors import DataError

    sessions, items = _catalogue(tmp_path, categories=("a", "b", "c"))
    zeros_lost = tmp_path / "lost.csv"  # the ids as a spreadsheet might write them back
    zeros_lost.write_text(items.read_text().replace("k0-", "K0_").replace("k1-", "K1_").replace("k2-", "K2_"))
    try:
        read_sessions(sessions, items_path=str(zeros_lost))
        raise AssertionError("expected a DataError")
    except DataError as exc:
        assert "none of its 24 item ids occurs in" in str(exc) and "'K0_0'" in str(exc)
    strays = tmp_path / "strays.csv"
    strays.write_text(items.read_text() + "gone-1,a\ngone-2,b\n")
    data = read_sessions(sessions, items_path=str(strays))
    assert data.summary["items file rows naming no item of the sessions"] == 2
    assert (data.categories >= 0).sum() == data.vocab_size


def test_an_items_file_may_name_the_items_without_categories(tmp_path):
    from nnkit.datasets.sessions import read_sessions
    from nnkit.errors import DataError

    sessions, items = _catalogue(tmp_path, categories=("a", "b", "c"))
    names_only = tmp_path / "names.csv"
    names_only.write_text("item_id,name\n" + "".join(f"k0-{i},lamp {i}\n" for i in range(8)))
    data = read_sessions(sessions, items_path=str(names_only))
    assert (data.categories < 0).all() and dict(zip(data.item_ids, data.names))["k0-3"] == "lamp 3"
    neither = tmp_path / "neither.csv"
    neither.write_text("item_id,price\nk0-1,3\n")
    try:
        read_sessions(sessions, items_path=str(neither))
        raise AssertionError("expected a DataError")
    except DataError as exc:
        assert "no column 'category' (config key data.category_column) or 'name'" in str(exc)


def test_runs_recorded_with_the_sessions_only_fingerprint_still_evaluate(tmp_path):
    from nnkit.pipeline import load_run_data, resolve
    from nnkit.tasks.embedding.data import data_fingerprint, sessions_fingerprint

    sessions, items = _catalogue(tmp_path, categories=("a", "b", "c"))
    resolved = resolve("products", data=str(sessions), overrides=[f"data.items={items}"])
    full = resolved.task.load(resolved.cfg)
    for recorded, same in ((full.fingerprint, True), (full.earlier_fingerprints[0], True), ("0" * 16, False)):
        run = SimpleNamespace(meta=lambda recorded=recorded: {"data_fingerprint": recorded})
        assert load_run_data(run, resolved, None, "evaluate")[1] is same
    # every category of an item counts, and the categories' names
    from nnkit.datasets.sessions import read_sessions

    def read(text):
        path = tmp_path / "several.csv"
        path.write_text(text)
        return read_sessions(sessions, items_path=str(path), category_separator="|")

    rows = [f"k{kind}-{i}" for kind in range(3) for i in range(8)]
    # main categories m0..m2 (or M0..M2: same order), second ones zX / zY sort after them: same main codes
    first = read("item_id,category\n" + "".join(f"{r},m{r[1]}|zX\n" for r in rows))
    second = read("item_id,category\n" + "".join(f"{r},m{r[1]}|z{'XY'[n % 2]}\n" for n, r in enumerate(rows)))
    renamed = read("item_id,category\n" + "".join(f"{r},M{r[1]}|zX\n" for r in rows))
    assert (first.categories == second.categories).all() and (first.categories == renamed.categories).all()
    prints = {data_fingerprint(d) for d in (first, second, renamed)}
    assert len(prints) == 3 and len({sessions_fingerprint(d) for d in (first, second, renamed)}) == 1


def test_held_out_wording_and_no_held_out_sessions():
    assert N._tail_text(7, np.array([5, 7])) == "the last 7 (all but the first in sessions of 8 items or fewer)"
    assert N._tail_text(7, np.array([7, 7])) == 7 and N._tail_text(7, np.array([3, 5])) == "all but the first"
    data = _sessions(*[list("abcdef")] * 6)
    _, val, test, summary = N.hold_out_session_ends(data, 0.0, 0.0, seed=0, min_test_cases=200)
    assert val.size == test.size == 0 and summary["held-out items per such session"] == 1


def test_a_selection_where_every_candidate_ties_says_so():
    from nnkit.report import selection_section

    def section(scores):
        rows = [{"settings": {"model.window": w}, "validation": v, "seconds": 1.0} for w, v in zip((5, 3), scores)]
        return "\n".join(selection_section({"chosen": {"model.window": 5}, "budget": {"epochs": 1},
                                             "metric": "hit_rate_at_10", "candidates": rows}))

    assert "Every candidate scored the same" in section([1.0, 1.0])
    assert "Every candidate scored the same" not in section([0.5, 0.4])
    assert "Every candidate scored the same" not in section([0.5, None])  # the diverged one lost
