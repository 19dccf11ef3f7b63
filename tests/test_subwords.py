"""Subword tokens for translation: round trip, the copy-rate metric, and the served graph vs the model."""

from __future__ import annotations

import json

import pytest

from nnkit.datasets.names_numbers import copy_rate, target_words, to_keep
from nnkit.datasets.pairs import clean_text

NAMES = ["Maria", "Tom", "Kenji", "Zoé", "Ahmed", "Olga", "Luis", "Anna"]
THINGS = [("apples", "pommes"), ("books", "livres"), ("cats", "chats"), ("tickets", "billets")]


def tiny_pairs(n: int = 320) -> list[tuple[str, str]]:
    """English -> French sentences with names and numbers (deterministic)."""
    pairs = []
    for i in range(n):
        name = NAMES[i % len(NAMES)]
        en, fr = THINGS[(i // len(NAMES)) % len(THINGS)]
        number = (i * 37) % 1000
        if i % 3 == 0:
            pairs.append((f"{name} bought {number} {en}.", f"{name} a acheté {number} {fr}."))
        elif i % 3 == 1:
            pairs.append((f"Does {name} have {number} {en}?", f"Est-ce que {name} a {number} {fr} ?"))
        else:
            pairs.append((f"I saw {name} in Paris with {number} {en}!", f"J'ai vu {name} à Paris avec {number} {fr} !"))
    return pairs


def test_subword_round_trip_accents_digits_punctuation_emoji():
    import tensorflow as tf

    from nnkit.datasets.subwords import SubwordTokenizer, learn_subwords, pieces

    corpus = [t for pair in tiny_pairs(200) for t in pair] + ["Été, déjà… «oui» ?", "Ça coûte 12,50 € !"]
    model = learn_subwords(corpus, vocab_size=400)
    assert learn_subwords(corpus, vocab_size=400) == model  # deterministic
    vocab = pieces(model)
    assert vocab[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]  # the seq2seq builder's ids
    assert all(d in vocab for d in "0123456789")  # split_digits: any number is spelt from ten pieces
    texts = ["Maria a acheté 25 pommes 🍎 à Zürich !",  # emoji and ü never seen in training
             "Cafe\u0301\u00a0 déjà  vu…  «Ωμέγα» (100%)",  # decomposed é, no-break and double spaces
             "  ¿Qué?  ", "", "Tom 🙂👍🏽 1234567890"]
    tokenizer = SubwordTokenizer(model)
    tokens = tokenizer.tokenize(tf.constant(texts))
    flat = [t.decode() for row in tokens.to_list() for t in row]
    assert "[UNK]" not in flat and "<0xF0>" in flat  # unseen characters fall back to UTF-8 bytes
    assert [d for d in flat if d.strip("▁").isdigit()] == list("25") + list("100") + list("1234567890")
    back = [t.decode() for t in tokenizer.detokenize(tokens).numpy()]
    assert back == [clean_text(t) for t in texts]
    lower = SubwordTokenizer(model, lowercase=True)
    assert lower.detokenize(lower.tokenize(tf.constant(["ÉTÉ à Zürich"]))).numpy()[0].decode() == "été à zürich"


def test_copy_rate_on_a_known_case():
    train_targets = ["Tom a un chat.", "Je vais à Paris."]
    known = target_words(train_targets)
    assert to_keep("Tom met Maria in Paris at 10.", "Tom a vu Maria à Paris à 10 h.", known) == ["Maria", "10"]
    assert to_keep("London has 2 or 2 parks.", "Londres a 2 parcs.", known) == ["2"]  # kept once in the reference
    sources = ["Tom met Maria in Paris at 10.", "London has 2 or 2 parks.", "The cat sleeps."]
    refs = ["Tom a vu Maria à Paris à 10 h.", "Londres a 2 parcs.", "Le chat dort."]
    outputs = ["Tom a vu Marie à Paris à 10 heures.", "Londres a 3 parcs.", "Le chat dort."]
    score = copy_rate(sources, refs, outputs, known)
    assert (score.items, score.sentences) == (3, 2)
    assert score.rate == pytest.approx(1 / 3) and score.numbers == pytest.approx(1 / 2) and score.names == 0.0
    perfect = copy_rate(sources, refs, sources, known)
    assert perfect.rate == 1.0  # copying the source keeps everything: the ceiling
    assert copy_rate(["The cat."], ["Le chat."], ["Le chat."], known).rate is None  # nothing to keep


def test_invented_names_and_numbers_replace_both_sides():
    from nnkit.datasets.names_numbers import shared_tokens, substitute

    pairs = [("Tom bought 25 apples.", "Tom a acheté 25 pommes."), ("I like it.", "Ça me plaît.")]
    assert shared_tokens(*pairs[0]) == ["Tom", "25"] and shared_tokens(*pairs[1]) == []
    swapped = substitute(pairs, seed=0)
    assert len(swapped) == 1 and swapped == substitute(pairs, seed=0)
    (source, target), = swapped
    name, number = source.split()[0], source.split()[2]
    assert name not in ("Tom", "I") and name[0].isupper() and number.isdigit()
    assert target == f"{name} a acheté {number} pommes."
    assert all(s.split()[0] != "Zekuca" for s, _ in substitute(pairs * 20, seed=0, avoid={"Zekuca"}))


def test_subword_run_exports_and_serves_what_the_model_says(tmp_path):
    from click.testing import CliRunner

    from nnkit.cli import cli
    from nnkit.tasks.translation.task import TranslationTask, make_translator, translate_all
    from nnkit.train import load_model

    data = tmp_path / "pairs.tsv"
    data.write_text("".join(f"{s}\t{t}\tCC-BY\n" for s, t in tiny_pairs()), encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "translate", "--data", str(data), "--out", str(out), "--quiet",
                                      "--set", "train.epochs=6", "--set", "train.learning_rate=0.01", "--set", "train.batch_size=16",
                                      "--set", "train.patience=5", "--set", "model.units=16", "--set", "model.depth=1",
                                      "--set", "model.ff_dim=32", "--set", "model.heads=2",
                                      "--set", "data.subword_vocab=400",
                                      "--set", "eval.heatmaps=0", "--set", "eval.examples=4"])
    assert result.exit_code == 0, result.output
    state = json.loads((out / "state.json").read_text())
    assert state["tokenize"] == "subword" and state["source_vocab"] == state["target_vocab"]  # auto, joint
    config = (out / "config.toml").read_text()
    assert 'arch = "transformer"' in config and "beam_width = 4" in config  # the recipe's [with_data] defaults
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["baselines"]["copy_source"]["copy_rate"] == 1.0  # names and numbers kept by the references
    assert 0.0 <= metrics["model"]["copy_rate"] <= 1.0 and metrics["details"]["names_numbers_to_keep"] > 0
    assert metrics["baselines"]["copy_source"]["copy_rate_probe"] == 1.0 and metrics["details"]["probe_sentences"]
    assert 0.0 <= metrics["model"]["copy_rate_probe"] <= 1.0
    report = (out / "report.md").read_text()
    assert "unknown tokens in test sources" in report and "Names and numbers" in report
    assert "placeholder share of training sources" in report and "| ⦅0⦆ " in report  # model input shown

    # the served graph (the SavedModel, through `nnkit predict`) equals the in-memory model on the same strings;
    # the exporter already reloaded it in a fresh process (with these kinds of strings: see serving())
    texts = ["Maria bought 25 apples.", "Does Zoé have 7 cats?", "Kyoto 🍎 1999", "Zoltan bought 4711 books."]
    model = load_model(out / "model.keras", TranslationTask().custom_objects())
    in_memory = translate_all(make_translator(model, state), texts)
    predicted = CliRunner().invoke(cli, ["predict", str(out), *texts, "--out", str(tmp_path / "p.json")])
    assert predicted.exit_code == 0, predicted.output
    assert [r["translation"] for r in json.loads((tmp_path / "p.json").read_text())] == in_memory
    # placeholders: the names and numbers come back from the source, also ones never seen in training
    # (the exporter's fresh-process check compared the SavedModel with the model on "Maria bought 25 apples.")
    for source, translation in zip(texts[:1] + texts[3:], in_memory[:1] + in_memory[3:]):
        assert [w for w in source.split() if w[0].isupper() or w[0].isdigit()] == [
            w for w in translation.split() if w[0].isupper() or w[0].isdigit()]
    assert metrics["model"]["copy_rate_probe"] > 0.5 and metrics["model"]["copy_rate"] > 0.5


def test_recipe_with_data_table_applies_only_to_the_users_data(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.pipeline import resolve

    recipe = tmp_path / "r.toml"
    recipe.write_text('[recipe]\ntask = "translation"\n[model]\nunits = 32\n'
                      '[with_data.model]\nunits = 48\n[with_data.eval]\nbeam_width = 3\n', encoding="utf-8")
    bundled = resolve(str(recipe)).cfg
    own = resolve(str(recipe), data=str(tmp_path / "pairs.tsv")).cfg
    forced = resolve(str(recipe), data=str(tmp_path / "pairs.tsv"), overrides=["model.units=8"]).cfg
    assert (bundled["model"]["units"], bundled["eval"]["beam_width"]) == (32, 1)
    assert (own["model"]["units"], own["eval"]["beam_width"]) == (48, 3)
    assert forced["model"]["units"] == 8  # --set still wins
    recipe.write_text('[recipe]\ntask = "translation"\n[with_data.model]\nunitz = 48\n', encoding="utf-8")
    with pytest.raises(NnkitError, match="unitz"):
        resolve(str(recipe), data="x.tsv")


def test_placeholders_mask_and_restore_names_and_numbers():
    import tensorflow as tf

    from nnkit.tasks.translation.placeholders import Placeholders, mask_pairs, words_to_translate

    train = [("Tom bought 25 apples.", "Tom a acheté 25 pommes."), ("I went to London.", "Je suis allé à Londres."),
             ("Where is Tom?", "Où est Tom ?"), ("I have 2 dogs.", "J'ai deux chiens."), ("red apples", "pommes")]
    translate = words_to_translate(train)
    assert {"I", "Where", "London", "Apples", "Red"} <= set(translate)  # not copied, or seen in lower case
    assert "Tom" not in translate  # copied verbatim in training: kept
    placeholders = Placeholders(translate)
    texts = ["Maria bought 25 apples in 1987.", "I went to London with Zoë and McDonald's 3.4 kg 🙂",
             "Apples: 1 2 3 4 5 6 7 8 9 10 11", "", "no names here"]
    masked, spans = placeholders.mask(tf.constant(texts))
    assert [t.decode() for t in masked.numpy()] == [
        "⦅0⦆ bought ⦅1⦆ apples in ⦅2⦆.", "I went to London with ⦅0⦆ and ⦅1⦆'s ⦅2⦆.⦅3⦆ kg 🙂",
        "Apples: ⦅0⦆ ⦅1⦆ ⦅2⦆ ⦅3⦆ ⦅4⦆ ⦅5⦆ ⦅6⦆ ⦅7⦆ ⦅8⦆ ⦅9⦆ 11", "", "no names here"]  # ten at most
    assert spans.to_list()[0] == [b"Maria", b"25", b"1987"]
    assert [t.decode() for t in placeholders.restore(masked, spans).numpy()] == texts  # round trip
    decoded = tf.constant(["⦅1⦆ pommes pour ⦅0⦆, ⦅7⦆.", "", "", "⦅0⦆", "x"])  # reordered; ⦅7⦆ and ⦅0⦆ have no span
    assert [t.decode() for t in placeholders.restore(decoded, spans).numpy()] == [
        "25 pommes pour Maria, .", "", "", "", "x"]
    assert mask_pairs(placeholders, train + [("Tom has 2 dogs and 3 cats.", "Tom a deux chiens et 3 chats.")]) == [
        ("⦅0⦆ bought ⦅1⦆ apples.", "⦅0⦆ a acheté ⦅1⦆ pommes."), ("I went to London.", "Je suis allé à Londres."),
        ("Where is ⦅0⦆?", "Où est ⦅0⦆ ?"), ("I have 2 dogs.", "J'ai deux chiens."), ("red apples", "pommes"),
        ("⦅0⦆ has 2 dogs and ⦅1⦆ cats.", "⦅0⦆ a deux chiens et ⦅1⦆ chats.")]  # "2" is not copied: plain text
