"""The products recipe: shop generator, sessions reader, skip-gram pairs, item2vec, serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnkit.datasets import sessions as S
from nnkit.datasets.shop import Shop
from nnkit.errors import DataError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# -- the shop generator --------------------------------------------------------------------

def test_shop_is_deterministic():
    a = Shop(n_products=500, n_categories=10, seed=3).sessions(300)
    b = Shop(n_products=500, n_categories=10, seed=3).sessions(300)
    c = Shop(n_products=500, n_categories=10, seed=4).sessions(300)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0][:200], c[0][:200])
    tokens, offsets = a
    assert tokens.dtype == np.int32 and offsets[0] == 0 and offsets[-1] == tokens.size
    assert np.diff(offsets).min() >= 2 and tokens.max() < 500


def test_shop_plants_categories_and_zipf():
    shop = Shop(n_products=2000, n_categories=20, noise=0.2, seed=0)
    tokens, offsets = shop.sessions(3000)
    cats = shop.categories
    assert np.bincount(cats).min() == np.bincount(cats).max() == 100  # balanced
    session = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    same_session = session[:-1] == session[1:]
    within = np.mean(cats[tokens[:-1]][same_session] == cats[tokens[1:]][same_session])
    assert within > 0.6  # ~ (1 - noise)^2; chance is 1/20
    # popularity: the most popular product is drawn far more often than the median one
    counts = np.bincount(tokens, minlength=2000)
    top = np.argmax(shop.popularity)
    assert counts[top] > 20 * np.median(counts)


def test_shop_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_categories"):
        Shop(n_products=5, n_categories=10)


# -- skip-gram pairs -------------------------------------------------------------------------

def _tiny():
    # sessions: [a b c d] [e f] [g]; g is in a 1-item session and leaves the vocabulary
    return S.from_arrays(np.array([0, 1, 2, 3, 4, 5, 6]), np.array([0, 4, 6, 7]), np.array(list("abcdefg")))


def _pairs_as_ids(data, targets, contexts):
    return sorted((data.item_ids[t], data.item_ids[c]) for t, c in zip(targets, contexts))


HAND_WORKED = sorted([
    ("a", "b"), ("a", "c"),
    ("b", "a"), ("b", "c"), ("b", "d"),
    ("c", "a"), ("c", "b"), ("c", "d"),
    ("d", "b"), ("d", "c"),
    ("e", "f"), ("f", "e"),
])


def test_pairs_match_hand_worked_example():
    data = _tiny()
    assert list(data.item_ids) == list("abcdef")
    assert data.summary["sessions dropped (< 2 items)"] == 1
    t, c = S.skipgram_pairs(data.tokens, data.offsets, window=2)
    assert _pairs_as_ids(data, t, c) == HAND_WORKED
    ds = S.skipgram_dataset(data, window=2, negatives=3, centers_per_batch=4, sample=0, shrink=False)
    assert int(ds.cardinality()) == 2
    got = []
    for x, y in ds:
        assert x[1].shape[1] == 4 and y["skipgram"].shape == x[1].shape
        assert np.all(y["skipgram"].numpy()[:, 0] == 1) and np.all(y["skipgram"].numpy()[:, 1:] == 0)
        got += list(zip(x[0].numpy(), x[1].numpy()[:, 0]))
    assert _pairs_as_ids(data, *zip(*got)) == HAND_WORKED


def test_shrunk_windows_and_subsampling_give_subsets():
    shop = Shop(n_products=200, n_categories=4, seed=1)
    data = S.from_shop(shop, 300)
    full = set(zip(*S.skipgram_pairs(data.tokens, data.offsets, 3)))
    ds = S.skipgram_dataset(data, window=3, negatives=2, centers_per_batch=256, sample=1e-2, shrink=True)
    got = [(int(t), int(c)) for x, _ in ds for t, c in zip(x[0].numpy(), x[1].numpy()[:, 0])]
    assert set(got) <= full
    assert len(got) < 0.8 * len(S.skipgram_pairs(data.tokens, data.offsets, 3)[0])
    # a new epoch draws a new permutation and new windows
    again = [int(t) for x, _ in ds for t in x[0].numpy()]
    assert again != [t for t, _ in got]


def test_negatives_follow_unigram_to_the_075():
    rng = np.random.default_rng(0)
    counts = np.array([2000, 400, 100, 20])
    tokens = rng.permutation(np.repeat(np.arange(4), counts))
    offsets = np.arange(0, tokens.size + 1, 10)
    data = S.from_arrays(tokens, offsets, np.array(["w", "x", "y", "z"]))
    assert list(data.counts) == list(counts)
    ds = S.skipgram_dataset(data, window=1, negatives=20, centers_per_batch=1000, sample=0, shrink=False)
    draws = np.concatenate([x[1].numpy()[:, 1:].ravel() for x, _ in ds])
    freq = np.bincount(draws, minlength=4) / draws.size
    expected = counts ** 0.75 / np.sum(counts ** 0.75)
    assert draws.size > 50_000
    np.testing.assert_allclose(freq, expected, atol=0.01)
    assert abs(freq[0] - counts[0] / counts.sum()) > 0.05  # not the plain unigram


def test_keep_probabilities():
    keep = S.keep_probabilities(np.array([1_000_000, 10, 1]), 1e-3)
    assert keep[0] < 0.1 and keep[1] == 1.0 and keep[2] == 1.0
    assert np.all(S.keep_probabilities(np.array([5, 5]), 0) == 1)


# -- reading sessions CSV ------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_read_sessions_orders_by_time_and_reads_items(tmp_path):
    sessions = _write(tmp_path / "s.csv", """
        session_id,item_id,timestamp
        u1,b,2
        u1,a,1
        u2,c,5
        u1,c,3
        u2,a,4
        u3,z,1
        """)
    items = _write(tmp_path / "i.csv", """
        item_id,category,name
        a,fruit,Apple
        b,fruit,Banana
        c,veg,Carrot
        """)
    data = S.read_sessions(sessions, items_path=str(items))
    as_ids = [list(data.item_ids[data.tokens[s:e]]) for s, e in zip(data.offsets[:-1], data.offsets[1:])]
    assert as_ids == [["a", "b", "c"], ["a", "c"]]  # time order; u3 has one item and is dropped
    assert data.category_names == ["fruit", "veg"]
    cats = dict(zip(data.item_ids, data.categories))
    assert cats["a"] == cats["b"] == 0 and cats["c"] == 1
    assert dict(zip(data.item_ids, data.names))["c"] == "Carrot"
    assert data.summary["sessions dropped (< 2 items)"] == 1


def test_invoice_table_maps_by_config_and_min_count(tmp_path):
    invoices = _write(tmp_path / "retail.csv", """
        InvoiceNo,StockCode,Description,Quantity,InvoiceDate
        536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26
        536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26
        536366,85123A,WHITE HANGING HEART,6,12/1/2010 8:28
        536366,71053,WHITE METAL LANTERN,6,12/1/2010 8:28
        536366,22633,HAND WARMER,6,12/1/2010 8:28
        536367,84879,ASSORTED BIRD,32,12/1/2010 8:34
        536367,85123A,WHITE HANGING HEART,6,12/1/2010 8:34
        """)
    data = S.read_sessions(invoices, session_column="InvoiceNo", item_column="StockCode",
                           name_column="Description", timestamp_column="InvoiceDate", min_count=2)
    assert sorted(data.item_ids) == ["71053", "85123A"]
    assert data.item_ids[0] == "85123A"  # most frequent first
    assert data.summary["items dropped (min_count)"] == 2
    assert data.summary["events dropped (min_count)"] == 2
    assert data.summary["sessions dropped (< 2 items)"] == 1
    assert dict(zip(data.item_ids, data.names))["71053"] == "WHITE METAL LANTERN"
    assert (data.categories == -1).all()


def test_bad_inputs_raise_clear_errors(tmp_path):
    empty = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match="empty file"):
        S.read_sessions(empty)
    header_only = _write(tmp_path / "header.csv", "session_id,item_id\n")
    with pytest.raises(DataError, match="no rows"):
        S.read_sessions(header_only)
    wrong = _write(tmp_path / "wrong.csv", "user,product\n1,a\n1,b\n")
    with pytest.raises(DataError, match=r"no column 'session_id' \(config key data.session_column\).*'user'"):
        S.read_sessions(wrong)
    nan_sessions = _write(tmp_path / "nan.csv", "session_id,item_id\n,a\n,b\n,c\n")
    with pytest.raises(DataError, match=r"nan.csv, line 2, column 'session_id': empty value \(3 of 3 rows\)"):
        S.read_sessions(nan_sessions)
    bad_time = _write(tmp_path / "t.csv", "session_id,item_id,timestamp\n1,a,1\n1,b,yesterday-ish\n")
    with pytest.raises(DataError, match=r"line 3, column 'timestamp'"):
        S.read_sessions(bad_time)
    good = _write(tmp_path / "good.csv", "session_id,item_id\n1,a\n1,b\n")
    items = _write(tmp_path / "items.csv", "item_id,kind\na,x\n")
    with pytest.raises(DataError, match=r"items.csv: no column 'category' \(config key data.category_column\)"):
        S.read_sessions(good, items_path=str(items))
    with pytest.raises(DataError, match="min_count=5"):
        S.read_sessions(good, min_count=5)
    with pytest.raises(DataError, match="not found"):
        S.read_sessions(tmp_path / "missing.csv")


# -- builder -------------------------------------------------------------------------------------

def test_build_item2vec_shapes_and_errors():
    from nnkit.builders import build_item2vec

    model = build_item2vec(50, dim=8, num_negatives=3, num_categories=4, name="i2v")
    x = [np.array([1, 2], np.int32), np.array([[1, 2, 3, 4], [0, 0, 0, 0]], np.int32)]
    out = model(x)
    assert tuple(out["skipgram"].shape) == (2, 4) and tuple(out["category"].shape) == (2, 4)
    assert all(layer.name.startswith("i2v") for layer in model.layers if not layer.name in ("target", "contexts"))
    assert np.allclose(out["skipgram"], 0)  # contexts start at zero, as in word2vec
    with pytest.raises(ValueError, match="Received: dim=0"):
        build_item2vec(50, dim=0)
    with pytest.raises(ValueError, match="vocab_size"):
        build_item2vec("many")


def test_sparse_embedding_round_trip_and_equals_keras_embedding():
    import keras

    from nnkit.layers import SparseEmbedding

    layer = SparseEmbedding(10, 4, name="e")
    ids = np.array([[1, 9], [0, 0]], np.int32)
    out = layer(ids)
    clone = SparseEmbedding.from_config(layer.get_config())
    clone.build((None, 2))
    clone.set_weights(layer.get_weights())
    plain = keras.layers.Embedding(10, 4)
    plain.build((None, 2))
    plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(ids), out)
    np.testing.assert_array_equal(plain(ids), out)
    assert keras.saving.get_registered_name(SparseEmbedding) == "nnkit>SparseEmbedding"


def test_context_scores_equal_keras_dot_in_values_and_gradients():
    import keras
    import tensorflow as tf

    from nnkit.layers.embedding import ContextScores

    rng = np.random.default_rng(4)
    target = tf.constant(rng.normal(size=(7, 5)).astype("float32"))
    contexts = tf.constant(rng.normal(size=(7, 3, 5)).astype("float32"))
    ours, theirs = ContextScores(), keras.layers.Dot(axes=(1, 2))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([target, contexts])
        a, b = ours([target, contexts]), theirs([target, contexts])
        weights = tf.constant(rng.normal(size=(7, 3)).astype("float32"))
        loss_a, loss_b = tf.reduce_sum(a * weights), tf.reduce_sum(b * weights)
    assert a.shape == (7, 3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for ga, gb in zip(tape.gradient(loss_a, [target, contexts]), tape.gradient(loss_b, [target, contexts])):
        np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-6)
    assert keras.saving.get_registered_name(ContextScores) == "nnkit>ContextScores"


def test_shared_negatives_score_true_contexts_and_draws_from_the_noise(tmp_path):
    import keras
    import tensorflow as tf

    from nnkit.builders import build_item2vec
    from nnkit.layers import SharedNegativeContexts

    keras.utils.set_random_seed(0)
    # 6 pairs x 2 negatives, each draw serving 4 pairs: ceil(6 * 2 / 4) = 3 shared negatives
    model = build_item2vec(5, dim=5, num_negatives=2, shared_negatives=4, noise=[0, 0, 0, 1, 3], name="i2v")
    table = model.get_layer("i2v_context")
    assert isinstance(table, SharedNegativeContexts) and tuple(model.input_shape[1]) == (None, 1)
    table.set_weights([np.eye(5, dtype="float32"), table.get_weights()[1]])  # row j = e_j: a score names its item
    np.testing.assert_allclose(table.noise_cdf.numpy(), [0, 0, 0, 0.25, 1])
    targets = np.arange(6) % 5
    model.get_layer("i2v_target").set_weights([np.eye(5, dtype="float32") * 10])
    contexts = np.array([[0], [1], [2], [3], [4], [0]], np.int32)
    draws = []
    for _ in range(40):
        scores = model([targets.astype("int32"), contexts], training=True)["skipgram"].numpy()
        assert scores.shape == (6, 4)
        np.testing.assert_allclose(scores[:, 0], 10.0 * (targets == contexts[:, 0]))  # target . true context
        # every row scores the same drawn items: column j is 10 where the target is that item
        drawn = [int(np.flatnonzero(scores[:5, j])[0]) if scores[:5, j].any() else -1 for j in range(1, 4)]
        draws += drawn
    assert set(draws) <= {3, 4} and 0.6 < draws.count(4) / len(draws) < 0.9  # weights 1:3
    inference = model([targets.astype("int32"), contexts])["skipgram"].numpy()
    np.testing.assert_array_equal(inference, model([targets.astype("int32"), contexts])["skipgram"].numpy())
    # the context table's gradient stays sparse: the rows of the batch and its draws only
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model([targets.astype("int32"), contexts], training=True)["skipgram"])
    grad = tape.gradient(loss, table.embeddings)
    assert isinstance(grad, tf.IndexedSlices) and grad.values.shape[0] == 6 + 3
    # a saved model keeps the noise distribution beside the table
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.get_layer("i2v_context").noise_cdf.numpy(), table.noise_cdf.numpy())
    np.testing.assert_array_equal(loaded.get_layer("i2v_context").embeddings.numpy(), table.embeddings.numpy())
    with pytest.raises(ValueError, match="noise"):
        build_item2vec(5, shared_negatives=4, noise=[1, 2])


def test_shared_negatives_loss_weighs_draws_as_per_pair_negatives():
    import keras

    from nnkit.layers import SharedNegativesLoss

    logits = np.array([[2.0, -1.0, 0.5, 3.0], [-0.5, 0.0, 1.0, -2.0]], np.float32)
    loss = SharedNegativesLoss(negatives=2)  # 3 shared draws weigh as 2 negatives per pair
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    per_pair = (softplus(-logits[:, 0]) + 2 / 3 * softplus(logits[:, 1:]).sum(axis=1)) / 3
    np.testing.assert_allclose(float(loss(np.ones((2, 1)), logits)), per_pair.sum(), rtol=1e-5)
    # with as many draws as negatives it is Keras's binary cross-entropy against [1, 0, 0] per pair
    three = logits[:, :3]
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum")
    np.testing.assert_allclose(float(loss(np.ones((2, 1)), three)),
                               float(bce(np.tile([[1.0, 0.0, 0.0]], (2, 1)), three)), rtol=1e-5)
    clone = SharedNegativesLoss.from_config(loss.get_config())
    assert clone.negatives == 2 and keras.saving.get_registered_name(SharedNegativesLoss) == "nnkit>SharedNegativesLoss"


def test_metrics_helpers():
    from nnkit.tasks.embedding.baselines import category_metrics, majority, nearest, normalize

    assert list(majority(np.array([[1, 2, 2, 1], [3, 1, 2, 4]]))) == [1, 3]  # ties: nearest wins
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    rows, scores = nearest(normalize(vectors), np.array([0, 2]), 1)
    assert rows.tolist() == [[1], [3]] and np.all(scores > 0.9)
    cats = np.array([0, 0, 1, 1])
    m = category_metrics(vectors, cats, np.arange(4), k=1, probe_folds=0)
    assert m == {"knn_accuracy": 1.0, "precision_at_1": 1.0}


# -- the recipe end to end ------------------------------------------------------------------------

TINY = ["--set", "data.products=300", "--set", "data.categories=5", "--set", "data.sessions=600",
        "--set", "train.epochs=2", "--set", "train.batch_size=256", "--set", "model.dim=8",
        "--set", "model.category_weight=0.5", "--set", "eval.probe_folds=2", "--set", "eval.map_items=50"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from click.testing import CliRunner

    from nnkit.cli import cli

    out = tmp_path_factory.mktemp("products") / "run"
    result = CliRunner().invoke(cli, ["run", "products", "--out", str(out), "--quiet", *TINY])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert result.output.strip().splitlines()[-1] == str(out)
    return out


def test_run_folder(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "embedding" and metrics["primary"] == "knn_accuracy"
    assert set(metrics["baselines"]) == {"random", "ppmi_svd", "popularity", "cooccurrence"}
    category_keys = {"knn_accuracy", "precision_at_10", "probe_accuracy"}
    next_item_keys = {"hit_rate_at_10", "mrr_at_10"}
    for block in [metrics["model"], metrics["baselines"]["random"], metrics["baselines"]["ppmi_svd"]]:
        assert set(block) == category_keys | next_item_keys
        assert 0 <= block["knn_accuracy"] <= 1 and 0 <= block["hit_rate_at_10"] <= 1
    assert set(metrics["baselines"]["popularity"]) == next_item_keys
    assert metrics["details"]["settings"]["context"] == "window"  # the generated shop's setting
    assert (run_dir / "model.keras").is_file()
    assert (run_dir / "export" / "saved_model" / "saved_model.pb").is_file()
    assert (run_dir / "plots" / "embedding_map.png").is_file()
    state = json.loads((run_dir / "state.json").read_text())
    emb = np.loadtxt(run_dir / "embeddings.tsv", delimiter="\t")
    meta = (run_dir / "metadata.tsv").read_text().splitlines()
    assert emb.shape == (len(state["item_ids"]), 8) and len(meta) == emb.shape[0] + 1
    assert meta[1].split("\t")[0] == state["item_ids"][0]
    assert "Nearest neighbours" in (run_dir / "report.md").read_text()


def test_saved_model_in_fresh_process_equals_in_memory(run_dir, tmp_path):
    from nnkit.tasks.embedding.baselines import nearest, normalize
    from nnkit.tasks.embedding.task import EmbeddingTask
    from nnkit.train import load_model

    task = EmbeddingTask()
    model = load_model(run_dir / "model.keras", task.custom_objects())
    vectors = task.vectors(model)
    state = json.loads((run_dir / "state.json").read_text())
    ids = state["item_ids"]
    queries = [ids[0], ids[5], "no-such-item", ids[7]]
    out_file = tmp_path / "out.npz"
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        m = tf.saved_model.load({str(run_dir / 'export' / 'saved_model')!r})
        ids = tf.constant({queries!r})
        e = m.embed(item_ids=ids)
        s = m.similar(item_ids=ids, k=tf.constant(4))
        sig = m.signatures["similar"](item_ids=ids, k=tf.constant(4))
        np.savez({str(out_file)!r}, vector=e["vector"].numpy(), known=e["known"].numpy(),
                 sim_ids=s["item_ids"].numpy().astype(str), scores=s["scores"].numpy(),
                 sig_ids=sig["item_ids"].numpy().astype(str), cats=s["categories"].numpy().astype(str))
        """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    got = np.load(out_file)
    assert got["known"].tolist() == [True, True, False, True]
    rows = [0, 5, 7]
    np.testing.assert_allclose(got["vector"][[0, 1, 3]], vectors[rows], rtol=1e-6)
    assert np.all(got["vector"][2] == 0)
    want_rows, want_scores = nearest(normalize(vectors), np.array(rows), 4)
    np.testing.assert_array_equal(got["sim_ids"][[0, 1, 3]], np.array(ids)[want_rows])
    np.testing.assert_allclose(got["scores"][[0, 1, 3]], want_scores, rtol=1e-5, atol=1e-6)
    assert got["sim_ids"][2].tolist() == [""] * 4 and np.all(got["scores"][2] == 0)
    np.testing.assert_array_equal(got["sig_ids"], got["sim_ids"])
    names = state["category_names"]
    assert got["cats"][0, 0] == names[state["categories"][want_rows[0, 0]]]


def test_predict_similar(run_dir):
    from click.testing import CliRunner

    from nnkit.cli import cli

    ids = json.loads((run_dir / "state.json").read_text())["item_ids"]
    result = CliRunner().invoke(cli, ["predict", str(run_dir), "--similar", ids[0], "-k", "3", "nope"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "query,rank,item_id,score,name,category,note"
    assert len(lines) == 1 + 3 + 1 and lines[1].startswith(f"{ids[0]},1,")
    assert "unknown item id" in lines[-1]
    bad = CliRunner().invoke(cli, ["predict", str(run_dir), "--horizon", "3", ids[0]])
    assert bad.exit_code == 2


def test_export_keras_format_reloads_in_fresh_process(run_dir, tmp_path):
    from click.testing import CliRunner

    from helpers import own_copy
    from nnkit.cli import cli

    run_dir = own_copy(run_dir, tmp_path)

    result = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "keras"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (run_dir / "export" / "model.keras").is_file()


def test_bad_data_via_cli_exits_2(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli

    empty = _write(tmp_path / "empty.csv", "")
    result = CliRunner().invoke(cli, ["run", "products", "--data", str(empty), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "empty file" in result.output
    assert not (tmp_path / "r").exists()
    nan = _write(tmp_path / "nan.csv", "session_id,item_id\n,a\n,b\n")
    result = CliRunner().invoke(cli, ["run", "products", "--data", str(nan), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "column 'session_id'" in result.output
