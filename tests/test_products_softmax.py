"""The full-softmax skip-gram (model.objective = "softmax"): one row per centre with all its contexts,
the loss by hand, the layer's round trip, the item vectors it serves, and the catalogue size it refuses."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nnkit.datasets import sessions as S
from test_products_sessions import _retail_like  # invoices of two kinds of basket (A*, B*), 24 items

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _data():
    tokens = np.array([0, 1, 2, 3, 4, 5, 1, 2, 6])
    offsets = np.array([0, 5, 6, 9])  # sessions [0 1 2 3 4], [5] (no context), [1 2 6]
    return S.from_arrays(tokens, offsets, np.array([f"i{n}" for n in range(7)]))


def test_grouped_batches_hold_every_context_of_each_centre_once():
    data = _data()
    ds = S.skipgram_dataset(data, window=2, centers_per_batch=16, sample=0, shrink=False, grouped=True)
    (target, y), = list(ds)
    target, contexts = target.numpy(), y["skipgram"].numpy()
    assert contexts.shape == (8, 4)  # 9 positions, the lone item of session 2 has no context and is dropped
    expected = {}  # by hand: positions within 2 of the centre, same session, -1 elsewhere
    for s, e in zip(data.offsets[:-1], data.offsets[1:]):
        for i in range(s, e):
            near = sorted(data.tokens[j] for j in range(max(s, i - 2), min(e, i + 3)) if j != i)
            if near:
                expected.setdefault(int(data.tokens[i]), []).append(near)
    got = {}
    for t, row in zip(target, contexts):
        got.setdefault(int(t), []).append(sorted(row[row >= 0].tolist()))
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in expected.items()}
    # shrunk windows and subsampling only remove contexts (-1), never add or move them
    shrunk = S.skipgram_dataset(data, window=2, centers_per_batch=16, sample=0.2, shrink=True, grouped=True, seed=3)
    target, y = next(iter(shrunk))
    for t, row in zip(target.numpy(), y["skipgram"].numpy()):
        assert (row >= 0).any()
        assert set(row[row >= 0].tolist()) <= set(sum(expected[int(t)], []))


def test_softmax_loss_by_hand():
    from nnkit.layers import SoftmaxContextsLoss

    logits = np.array([[1.0, 2.0, 0.5, -1.0], [0.0, 0.0, 3.0, 1.0]], np.float32)
    contexts = np.array([[1, 3, -1], [2, 2, 0]])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    by_hand = [-(log_p[0, 1] + log_p[0, 3]), -(2 * log_p[1, 2] + log_p[1, 0])]
    loss = SoftmaxContextsLoss(reduction=None)(contexts, logits)
    np.testing.assert_allclose(np.asarray(loss), by_hand, rtol=1e-5)
    np.testing.assert_allclose(float(SoftmaxContextsLoss()(contexts, logits)), np.mean(by_hand), rtol=1e-5)


def test_softmax_model_shapes_round_trip_and_errors(tmp_path):
    import keras

    from nnkit.builders import build_item2vec

    model = build_item2vec(30, dim=4, objective="softmax", num_categories=3, name="i2v")
    assert [t.name for t in model.inputs] == ["target"]
    out = model(np.array([1, 2, 5], np.int32))
    assert tuple(out["skipgram"].shape) == (3, 30) and tuple(out["category"].shape) == (3, 3)
    assert np.allclose(out["skipgram"], 0)  # contexts and biases start at zero
    table = model.get_layer("i2v_context")
    table.embeddings.assign(np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32))
    table.bias.assign(np.arange(30, dtype=np.float32))
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = np.array([0, 7, 29], np.int32)
    np.testing.assert_allclose(again(x)["skipgram"], model(x)["skipgram"], rtol=1e-6)
    with pytest.raises(ValueError, match="objective"):
        build_item2vec(30, objective="hierarchical")
    with pytest.raises(ValueError, match="shared_negatives"):
        build_item2vec(30, objective="softmax", shared_negatives=10)


def _resolve(path, *sets):
    from nnkit.pipeline import resolve

    base = ["data.session_column=invoice", "data.item_column=sku", "data.timestamp_column=", "model.dim=8",
            "eval.probe_folds=0", "eval.map_items=20", "eval.select_budget=0"]
    return resolve("products", data=str(path), overrides=base + list(sets))


def test_user_sessions_train_the_softmax_and_serve_target_plus_context(tmp_path):
    import keras

    from nnkit.pipeline import start
    from nnkit.tasks.embedding.baselines import normalize

    resolved = _resolve(_retail_like(tmp_path), "model.postprocess=none", "train.epochs=8")
    assert resolved.cfg["model"]["objective"] == "softmax"  # the recipe's [with_data] table
    assert (resolved.cfg["train"]["optimizer"], resolved.cfg["train"]["learning_rate"]) == ("adam", 0.01)
    run = start(resolved, stages=("train", "evaluate", "report", "export"), out=str(tmp_path / "run"))
    metrics = json.loads(run.metrics_file.read_text())
    assert metrics["details"]["settings"]["objective"] == "softmax"
    model = keras.saving.load_model(run.model_file)
    served = model.get_layer("item2vec_target").get_weights()[0]
    context = model.get_layer("item2vec_context").get_weights()[0]
    # what the task wrote into the target table: each item's normalised target + context vector; the
    # target part is what remains after taking the normalised context away (a unit vector)
    target_part = served - normalize(context)
    np.testing.assert_allclose(np.linalg.norm(target_part, axis=1), 1.0, atol=1e-4)
    kind = np.array([json.loads(run.state_file.read_text())["item_ids"][r][0] for r in range(len(served))])
    cos = normalize(served) @ normalize(served).T
    same = kind[:, None] == kind[None, :]
    np.fill_diagonal(same, False)
    assert cos[same].mean() > cos[kind[:, None] != kind[None, :]].mean() + 0.3  # the two kinds apart
    import tensorflow as tf  # the SavedModel serves the same vectors from raw ids

    ids = json.loads(run.state_file.read_text())["item_ids"]
    module = tf.saved_model.load(str(run.path / "export" / "saved_model"))  # kept: its variables live in it
    served_by_export = module.embed(item_ids=tf.constant([ids[3], "nope", ids[0]]))
    np.testing.assert_allclose(served_by_export["vector"].numpy()[[0, 2]], served[[3, 0]], rtol=1e-6)
    assert served_by_export["known"].numpy().tolist() == [True, False, True]


def test_category_head_gets_the_kept_centres_categories(tmp_path):
    path = _retail_like(tmp_path)
    items = tmp_path / "items.csv"
    items.write_text("sku,category\n" + "".join(f"{k}{n},{k}\n" for k in "AB" for n in range(12)))
    resolved = _resolve(path, "data.items=" + str(items), "model.category_weight=10", "model.window=2",
                        "data.category_column=category")
    task, cfg = resolved.task, resolved.cfg
    prepared = task.load(cfg)
    train, _ = task.datasets(cfg, prepared, 64)
    target, y = next(iter(train))
    assert y["skipgram"].shape == (target.shape[0], 4) and y["category"].shape == target.shape
    np.testing.assert_array_equal(y["category"].numpy(), prepared.extra["train_categories"][target.numpy()])
    model = task.build_model(cfg, prepared)
    model.compile(optimizer="adam", **task.compile_kwargs(cfg, prepared))
    logs = model.fit(train, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][0]) and logs["category_loss"][0] > 0


def test_softmax_refuses_a_catalogue_too_large_before_any_run_folder(tmp_path, monkeypatch):
    from nnkit.errors import NnkitError
    from nnkit.pipeline import start
    from nnkit.tasks.embedding.task import EmbeddingTask

    monkeypatch.setattr(EmbeddingTask, "softmax_max_items", 10)  # the file has 24 items
    resolved = _resolve(_retail_like(tmp_path))
    with pytest.raises(NnkitError, match=r"config key 'model.objective': 'softmax' scores all 24 items.*"
                                         r"at most 10.*model.objective=negative_sampling"):
        start(resolved, stages=("train",), out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    ok = _resolve(_retail_like(tmp_path), "model.objective=negative_sampling", "train.optimizer=sgd")
    ok.task.load(ok.cfg)  # negative sampling takes any catalogue
