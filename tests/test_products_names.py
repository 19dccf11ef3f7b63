"""Items' name words as side information (model.name_words): the word rows, the layer by hand and its
round trip, the candidates chosen on validation, and a run whose saved vectors carry the names."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from nnkit.tasks.embedding.name_words import item_word_rows, name_words

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def test_word_rows_keep_words_two_items_share():
    names = ["HAND WARMER Red", "hand-warmer UNION JACK", "Red  red tea", "", "Thé rouge_vert", "thé"]
    assert name_words("Hand-warmer, RED red!") == ["hand", "warmer", "red"]  # distinct, lower-cased, in order
    assert name_words("Thé rouge_vert") == ["thé", "rouge", "vert"]  # letters of any script; '_' splits
    rows, words = item_word_rows(names)
    assert words == ["hand", "red", "thé", "warmer"]  # "union", "jack", "tea", ... belong to one item each
    got = [[words[w] for w in row if w >= 0] for row in rows]
    assert got == [["hand", "warmer", "red"], ["hand", "warmer"], ["red"], [], ["thé"], ["thé"]]
    assert rows.dtype == np.int32 and rows.shape == (6, 3) and rows[3].tolist() == [-1, -1, -1]
    rows, words = item_word_rows(["a b", "c d"])
    assert rows.shape == (2, 0) and words == []  # nothing shared: no words at all


def test_named_item_embedding_by_hand_round_trip_and_bake(tmp_path):
    import keras

    from nnkit.layers import NamedItemEmbedding

    layer = NamedItemEmbedding(4, 3, words=2, width=2, word_weight=2.0)
    layer.build()
    layer.embeddings.assign(np.arange(12, dtype="float32").reshape(4, 3))
    layer.word_embeddings.assign(np.array([[1, 0, 0], [0, 1, 0]], "float32"))
    layer.item_words.assign(np.array([[0, 1], [0, -1], [-1, -1], [1, -1]], "int32"))
    # id row + 2 x the mean of the item's word rows; item 2 has no word
    expected = np.array([[1, 2, 2], [5, 4, 5], [6, 7, 8], [9, 12, 11]], "float32")
    np.testing.assert_allclose(np.asarray(layer(np.array([0, 1, 2, 3]))), expected)
    np.testing.assert_allclose(layer.item_vectors(), expected)
    inputs = keras.Input((), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(np.array([3, 0]))), expected[[3, 0]])
    layer.bake()  # the words folded into the id table: the first weight is the item vectors
    np.testing.assert_allclose(layer.get_weights()[0], expected)
    np.testing.assert_allclose(np.asarray(layer(np.array([0, 1, 2, 3]))), expected)
    assert not layer.get_weights()[1].any()


def test_builder_checks_the_word_rows():
    from nnkit.builders.embedding import build_item2vec

    with pytest.raises(ValueError, match="item_words"):
        build_item2vec(5, dim=4, item_words=np.zeros((4, 2), np.int32))
    with pytest.raises(ValueError, match="word_weight"):
        build_item2vec(5, dim=4, item_words=np.zeros((5, 2), np.int32), word_weight=-1.0)
    model = build_item2vec(5, dim=4, objective="softmax", item_words=np.array([[0], [0], [-1], [1], [1]]))
    assert type(model.get_layer("item2vec_target")).__name__ == "NamedItemEmbedding"
    assert model(np.array([0, 4]))["skipgram"].shape == (2, 5)


def _named_invoices(tmp_path: Path) -> Path:
    from test_products_sessions import _retail_like

    return _retail_like(tmp_path, names=True)


def _resolve(path, *sets):
    from nnkit.pipeline import resolve

    base = ["data.session_column=invoice", "data.item_column=sku", "data.name_column=description",
            "data.timestamp_column=", "model.dim=8", "train.epochs=2", "train.min_steps=0", "train.batch_size=64",
            "eval.probe_folds=0", "eval.map_items=20"]
    return resolve("products", data=str(path), overrides=base + list(sets))


def test_candidates_cross_the_window_with_the_name_weight_where_items_have_words(tmp_path):
    from nnkit.select import with_settings

    resolved = _resolve(_named_invoices(tmp_path))
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    # "no<n>", shared by A<n> and B<n>: one word for every item
    rows = prepared.extra["item_words"]
    assert rows.shape == (prepared.train.vocab_size, 1) and (rows >= 0).all()
    candidates = task.candidate_settings(cfg, prepared)  # [with_data]: window and name_words are 'auto'
    assert len(candidates) == 6 and {c["model.name_words"] for c in candidates} == {0.0, 3.0}
    assert len(task.candidate_settings(with_settings(cfg, {"model.window": 5}), prepared)) == 2
    assert task.candidate_settings(with_settings(cfg, {"eval.select_budget": 0}), prepared) == []
    assert task.settings(cfg, prepared)["name_words"] == 0.0  # no choice made: the first candidate
    without = prepared.__class__(**{**prepared.__dict__, "extra": {**prepared.extra, "item_words": None}})
    assert len(task.candidate_settings(cfg, without)) == 3


def test_run_with_name_words_serves_the_baked_vectors(tmp_path):
    import keras

    from nnkit.pipeline import start

    resolved = _resolve(_named_invoices(tmp_path), "eval.select_budget=0", "model.window=3", "model.name_words=3",
                        "model.postprocess=none")
    run = start(resolved, stages=("train", "evaluate", "report"), out=str(tmp_path / "run"))
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["details"]["settings"]["name_words"] == 3
    assert "mean vector of its name's words" in run.report_file.read_text()
    table = keras.saving.load_model(run.model_file).get_layer("item2vec_target")
    assert type(table).__name__ == "NamedItemEmbedding" and table.word_weight == 3.0
    assert not table.get_weights()[1].any()  # baked: the words live in the id rows now
    vectors = table.get_weights()[0]
    np.testing.assert_allclose(table.item_vectors(), vectors, atol=1e-6)
    # A<n> and B<n> are never bought together (two kinds of basket) but share the word "<n>" in their
    # names: with the words in their vectors they are nearer each other than A<n> is to the other B's
    ids = json.loads(run.state_file.read_text())["item_ids"]
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    row = {item: r for r, item in enumerate(ids)}
    twins, others = [], []
    for n in range(12):
        for m in range(12):
            if f"A{n}" in row and f"B{m}" in row:
                (twins if n == m else others).append(float(normed[row[f"A{n}"]] @ normed[row[f"B{m}"]]))
    assert np.mean(twins) > np.mean(others) + 0.5  # 0.89 vs 0.01 here; without the words 0.09 apart


@pytest.mark.parametrize("value, expected", [("3", "needs item names"), ("-1", "a number >= 0"),
                                             ("sometimes", "a number >= 0 or 'auto'")])
def test_name_words_are_checked_at_the_door(tmp_path, cli_run, value, expected):
    from test_products_sessions import _retail_like  # no name column

    result = cli_run("run", "products", "--data", _retail_like(tmp_path), "--set", "data.session_column=invoice",
                     "--set", "data.item_column=sku", "--set", f"model.name_words={value}",
                     "--out", tmp_path / "r", expect=2)
    assert "model.name_words" in result.output and expected in result.output
    assert not (tmp_path / "r").exists()


def test_names_train_under_mixed_precision(tmp_path):
    from nnkit.pipeline import start

    resolved = _resolve(_named_invoices(tmp_path), "eval.select_budget=0", "model.window=3", "model.name_words=3",
                        "train.mixed_precision=true")
    run = start(resolved, stages=("train",), out=str(tmp_path / "run"))
    assert json.loads(run.meta_file.read_text())["finished"]["chosen"] in ("none", "center", "all_but_the_top")


def test_negative_sampling_with_names_bakes_the_words_too(tmp_path):
    import keras

    from nnkit.pipeline import start

    resolved = _resolve(_named_invoices(tmp_path), "eval.select_budget=0", "model.window=3", "model.name_words=3",
                        "model.postprocess=none", "model.objective=negative_sampling", "train.optimizer=sgd",
                        "train.learning_rate=0.1")
    run = start(resolved, stages=("train",), out=str(tmp_path / "run"))
    table = keras.saving.load_model(run.model_file).get_layer("item2vec_target")
    assert not table.get_weights()[1].any()  # the words live in the id rows: the first weight is the vectors
    np.testing.assert_allclose(table.item_vectors(), table.get_weights()[0], atol=1e-6)
