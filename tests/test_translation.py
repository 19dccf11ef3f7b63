"""The translate recipe: corpus generator, TSV reader, tokeniser, decoding, SavedModel, end to end."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from nnkit.datasets.number_corpus import generate, split_by_source
from nnkit.datasets.pairs import read_pairs
from nnkit.errors import DataError


# -- the generated corpus ---------------------------------------------------------------------

def test_generator_is_deterministic_and_unique():
    a = generate(400, target_lang="fr", seed=3)
    b = generate(400, target_lang="fr", seed=3)
    c = generate(400, target_lang="fr", seed=4)
    assert a == b
    assert a != c
    assert len(a) == 400 and len({s for s, _ in a}) == 400
    assert all(s and t and "\t" not in s + t for s, t in a)


def test_generator_has_long_inputs_and_other_languages():
    pairs = generate(1500, seed=0)
    assert max(len(s.split()) for s, _ in pairs) >= 9  # "nine hundred and ninety-seven thousand, ..."
    es = dict(generate(50, target_lang="es", seed=0))
    fr = dict(generate(50, target_lang="fr", seed=0))
    assert es.keys() == fr.keys() and es != fr
    with pytest.raises(ValueError, match="target_lang"):
        generate(10, target_lang="xx")


def test_split_keeps_every_source_in_one_part():
    pairs = generate(600, seed=1)
    pairs += [(s, t + " bis") for s, t in pairs[:100]]  # repeated sources, as in Tatoeba
    train, val, test = split_by_source(pairs, 0.1, 0.2, seed=0)
    src = [{s for s, _ in part} for part in (train, val, test)]
    assert not (src[0] & src[2]) and not (src[0] & src[1]) and not (src[1] & src[2])
    assert len(train) + len(val) + len(test) == len(pairs)
    assert split_by_source(pairs, 0.1, 0.2, seed=0) == (train, val, test)


def test_task_load_never_tests_on_training_sources(tmp_path, monkeypatch):
    from nnkit.pipeline import resolve

    monkeypatch.setenv("NNKIT_CACHE", str(tmp_path))
    resolved = resolve("translate", overrides=["data.size=300", "data.target_lang=ja"])
    prepared = resolved.task.load(resolved.cfg)
    train, test = {s for s, _ in prepared.train}, {s for s, _ in prepared.test}
    assert train and test and not (train & test)
    assert len(prepared.train) + len(prepared.val) + len(prepared.test) == 300
    assert prepared.state["tokenize"] == "char"  # auto: Japanese has no spaces
    assert list(tmp_path.glob("number_corpus/en-ja-300-*.tsv"))  # cached
    again = resolved.task.load(resolved.cfg)
    assert again.test == prepared.test and again.state == prepared.state


# -- the TSV reader --------------------------------------------------------------------------

def test_tsv_reader_reports_bad_lines(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution\n"
                    "no tab here\n"
                    "\n"
                    "Hi.\tSalut !\n"
                    "Run!\t\n"
                    "Caf\u0065\u0301.\tCaf\u00e9 !\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_pairs(path)
    message = str(info.value)
    assert "2 line(s)" in message and "line 2, 5" in message and "skip_bad_lines" in message
    pairs, report = read_pairs(path, skip_bad_lines=True)
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut !"), ("Caf\u00e9.", "Caf\u00e9 !")]  # NFC
    assert report.bad_lines == 2 and report.first_bad == [2, 5]
    lower, _ = read_pairs(path, skip_bad_lines=True, lowercase=True, limit=1)
    assert lower == [("go.", "va !")]


def test_tsv_reader_names_bad_encoding(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("Go.\tVa !\nCoffee.\tCaf\u00e9.\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 2.*UTF-8"):
        read_pairs(path)


# -- tokenisation ------------------------------------------------------------------------------

def test_tokenizer_round_trip():
    import tensorflow as tf

    from nnkit.tasks.translation.tokens import tf_detokenize, tf_tokenize

    texts = ["vingt et unième", "lundi 5 janvier 1959", "二十一番目", "Été\u202f21:30"]
    chars = tf_tokenize(tf.constant(texts), "char")
    assert chars.to_list()[2] == [c.encode() for c in "二十一番目"]
    back = [t.decode() for t in tf_detokenize(chars, "char").numpy()]
    assert back == ["vingt et unième", "lundi 5 janvier 1959", "二十一番目", "Été 21:30"]
    words = ["Il est 19:53, d'accord ?", "1,000 « oui » (bis).", "Quatre-vingts l'homme."]
    tokens = tf_tokenize(tf.constant(words), "word")
    assert [t.decode() for t in tokens.to_list()[0]] == ["Il", "est", "19", ":", "53", ",", "d'accord", "?"]
    text = tf_detokenize(tokens, "word")
    assert [t.decode() for t in text.numpy()] == ["Il est 19:53, d'accord?", "1,000 «oui» (bis).",
                                                  "Quatre-vingts l'homme."]
    assert tf_tokenize(text, "word").to_list() == tokens.to_list()  # same tokens after a round trip
    lower = tf_tokenize(tf.constant(["ÉTÉ"]), "char", lowercase=True)
    assert [t.decode() for t in lower.to_list()[0]] == ["é", "t", "é"]


# -- decoding ----------------------------------------------------------------------------------

def _tiny_model(arch="rnn", attention="additive", cell="gru", vocab=12, depth=1):
    import keras

    from nnkit.builders.seq2seq import build_seq2seq

    keras.utils.set_random_seed(1)
    return build_seq2seq(9, vocab, arch=arch, cell=cell, attention=attention, units=16, embed_dim=8, heads=2,
                         depth=depth, ff_dim=16, max_source_len=12, max_target_len=10, name="s2s")


@pytest.mark.parametrize("arch,attention,cell,depth", [("rnn", "additive", "gru", 1), ("rnn", "dot", "lstm", 2),
                                                       ("rnn", "none", "gru", 1), ("transformer", "none", "gru", 1)])
def test_beam_width_one_equals_greedy(arch, attention, cell, depth):
    import tensorflow as tf

    from nnkit.tasks.translation.decoding import Seq2SeqDecoder, beam_search, greedy_search

    model = _tiny_model(arch, attention, cell, depth=depth)
    # push the random model towards long outputs so the comparison covers many steps
    bias = model.get_layer("s2s_logits").bias
    bias.assign(bias.numpy() - np.eye(12)[3] * 1.0)
    decoder = Seq2SeqDecoder(model)
    rng = np.random.default_rng(0)
    source = rng.integers(1, 9, size=(6, 7)).astype("int32")
    source[:, 5:] = 0  # padding
    greedy = tf.function(lambda s: greedy_search(decoder, s, 9)[0])(tf.constant(source)).numpy()
    beam1 = tf.function(lambda s: beam_search(decoder, s, 9, width=1))(tf.constant(source)).numpy()
    assert (greedy != 0).sum() >= 3 * len(source)  # not a trivial [END]-only output
    np.testing.assert_array_equal(greedy, beam1)
    beam3 = tf.function(lambda s: beam_search(decoder, s, 9, width=3))(tf.constant(source)).numpy()
    assert beam3.shape == greedy.shape and beam3.min() >= 0 and beam3.max() < 12


@pytest.mark.parametrize("depth", [1, 2])
def test_transformer_step_gives_the_whole_models_logits(depth):
    import tensorflow as tf

    from nnkit.tasks.translation.decoding import Seq2SeqDecoder

    model = _tiny_model("transformer", "none", depth=depth)
    decoder = Seq2SeqDecoder(model)  # encodes once, runs the decoder layers on the prefix alone
    source = np.array([[5, 6, 7, 3, 0, 0], [8, 4, 3, 0, 0, 0], [4, 5, 6, 7, 8, 3]], "int32")  # with padding
    tokens = np.array([[2, 5, 9, 11, 0], [2, 7, 3, 0, 0], [2, 4, 4, 4, 4]], "int32")
    memory = decoder.encode(tf.constant(source))
    for t in range(4):
        whole = model([source, tokens[:, :t + 1]], training=False)[:, -1, :].numpy()
        np.testing.assert_allclose(decoder.step(tf.constant(tokens), t, (), memory)[0].numpy(), whole, atol=1e-5)
    # attention never reads the padding: more of it (a longer sentence in the batch) changes nothing
    padded = np.concatenate([source, np.zeros((3, 5), "int32")], axis=1)
    np.testing.assert_allclose(model([padded, tokens], training=False).numpy(),
                               model([source, tokens], training=False).numpy(), atol=1e-5)


def test_decoding_stops_at_end_token_and_max_length():
    import tensorflow as tf

    from nnkit.tasks.translation.decoding import END_ID, Seq2SeqDecoder, beam_search, greedy_search
    from nnkit.tasks.translation.serving import Seq2SeqTranslator

    model = _tiny_model()
    logits = model.get_layer("s2s_logits")
    kernel = np.zeros(logits.kernel.shape, "float32")
    source = tf.constant([[4, 5, 3, 0], [6, 3, 0, 0]], tf.int32)
    decoder = Seq2SeqDecoder(model)
    for target in (END_ID, 7):
        logits.kernel.assign(kernel)
        logits.bias.assign(np.eye(12, dtype="float32")[target] * 10.0)
        greedy = greedy_search(decoder, source, 6)[0].numpy()
        beam = beam_search(decoder, source, 6, width=2).numpy()
        if target == END_ID:  # [END] first, padding after
            expected = np.array([[END_ID, 0, 0, 0, 0, 0]] * 2)
        else:  # never ends: cut at max length
            expected = np.full((2, 6), 7)
        np.testing.assert_array_equal(greedy, expected)
        np.testing.assert_array_equal(beam, expected)
    vocab = ["[START]", "[END]"] + list("abcdefgh")
    translator = Seq2SeqTranslator(model, vocab[:7], vocab, tokenize="char", max_decode_len=5)
    assert [t.decode() for t in translator.translate(tf.constant(["abc", ""]))["translation"].numpy()] == \
        ["ddddd", "ddddd"]  # id 7 = "d", max_decode_len characters
    logits.bias.assign(np.eye(12, dtype="float32")[END_ID] * 10.0)
    assert [t.decode() for t in translator.translate(tf.constant(["abc"]))["translation"].numpy()] == [""]


def test_builder_rejects_bad_arguments_and_names_layers():
    from nnkit.builders import build_seq2seq

    with pytest.raises(ValueError, match="attention='luong'"):
        build_seq2seq(10, 10, attention="luong")
    with pytest.raises(ValueError, match="arch="):
        build_seq2seq(10, 10, arch="cnn")
    model = build_seq2seq(10, 12, units=8, embed_dim=4, depth=2, name="m")
    assert model.output.shape[-1] == 12 and all(layer.name.startswith("m") for layer in model.layers)


def test_transformer_reloads_in_safe_mode(tmp_path):
    import keras

    from nnkit.layers.positional import PositionalEmbedding

    model = _tiny_model("transformer", "none")
    x = [np.array([[4, 5, 3]], "int32"), np.array([[2, 6, 7]], "int32")]
    path = tmp_path / "t.keras"
    model.save(path)
    again = keras.saving.load_model(path, custom_objects={"PositionalEmbedding": PositionalEmbedding})
    np.testing.assert_allclose(model.predict(x, verbose=0), again.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


# -- the recipe end to end ---------------------------------------------------------------------

TINY = ["--set", "data.size=300", "--set", "train.epochs=1", "--set", "model.units=16",
        "--set", "model.embed_dim=8", "--set", "eval.heatmaps=2", "--set", "eval.examples=4"]


# slow (34 s idle): the default run keeps translation end to end through tests/test_subwords.py
@pytest.mark.slow
def test_translate_recipe_end_to_end(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from nnkit.cli import cli

    monkeypatch.setenv("NNKIT_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(cli, ["run", "translate", "--out", str(out), "--quiet", *TINY])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "translation" and metrics["primary"] == "exact_match"
    assert set(metrics["model"]) == {"bleu", "chrf", "exact_match", "exact_match_long", "copy_rate",
                                     "copy_rate_numbers", "copy_rate_names", "copy_rate_probe"}
    assert set(metrics["baselines"]) == {"copy_source", "word_dictionary"}
    assert 0 <= metrics["model"]["exact_match"] <= 1 and metrics["baselines"]["copy_source"]["bleu"] < 20
    for name in ("model.keras", "state.json", "report.md", "plots/attention.png", "export/saved_model"):
        assert (out / name).exists(), name
    state = json.loads((out / "state.json").read_text())
    assert state["tokenize"] == "word" and state["target_vocab"][:2] == ["[START]", "[END]"]

    # predict: arguments and --file together, then beam search from model.keras
    sents = tmp_path / "sents.txt"
    sents.write_text("ninety-seven\n\nMarch 5, 2021\n", encoding="utf-8")
    result = runner.invoke(cli, ["predict", str(out), "twenty-one", "--file", str(sents)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "source,translation" and len(lines) == 4 and lines[1].startswith("twenty-one,")
    assert lines[3].startswith('"March 5, 2021",')
    beam = runner.invoke(cli, ["predict", str(out), "twenty-one", "--beam", "3"])
    assert beam.exit_code == 0, beam.output
    assert beam.output.strip().splitlines()[1].startswith("twenty-one,")
    wrong = runner.invoke(cli, ["predict", str(out), "twenty-one", "--horizon", "3"])
    assert wrong.exit_code == 2 and "--beam" in wrong.output

    # the SavedModel in a fresh process: strings in, the same strings out
    code = ("import sys, json, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
            "out = m.translate(tf.constant(['twenty-one', 'ninety-seven']))['translation'].numpy(); "
            "sig = m.signatures['serving_default'](text=tf.constant(['twenty-one']))['translation'].numpy(); "
            "print(json.dumps([[t.decode() for t in out], sig[0].decode()]))")
    fresh = subprocess.run([sys.executable, "-c", code, str(out / "export" / "saved_model")],
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    both, single = json.loads(fresh.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader(io.StringIO(result.output)))
    expected = [row["translation"] for row in rows[:2]]
    assert both == expected and single == expected[0]


def test_tsv_data_errors_exit_2(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"w{i} x\tm{i} y\n" for i in range(40)) + "broken line\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", "translate", "--data", str(path), "--out", str(tmp_path / "r"),
                                      "--quiet", *TINY])
    assert result.exit_code == 2
    assert "line 41" in result.output and "skip_bad_lines" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_tsv_data_runs_with_skip_and_char_tokens(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli

    path = tmp_path / "pairs.tsv"
    rows = generate(300, seed=5)
    path.write_text("".join(f"{s}\t{t}\tattribution\n" for s, t in rows) + "broken line\n", encoding="utf-8")
    out = tmp_path / "r"
    result = CliRunner().invoke(cli, ["run", "translate", "--data", str(path), "--out", str(out), "--quiet",
                                      "--set", "data.skip_bad_lines=true", "--set", "data.tokenize=char",
                                      "--set", "model.arch=transformer", *TINY])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "state.json").read_text())["tokenize"] == "char"
