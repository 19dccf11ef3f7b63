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
