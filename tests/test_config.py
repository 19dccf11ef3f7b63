"""Config: priority, dotted typed overrides, validation errors that name the key and suggest one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnkit import config
from nnkit.config import Field
from nnkit.errors import ConfigError

SCHEMA = config.full_schema({
    "data": {"ticker": Field("AAPL"), "fraction": Field(0.2, min=0.0, max=1.0)},
    "model": {"filters": Field([32, 64], min=1), "cell": Field("lstm", choices=("simple", "lstm", "gru"))},
}, train_defaults={"epochs": 30})


def test_defaults_then_recipe_then_file_then_set():
    recipe = {"recipe": {"task": "t"}, "train": {"epochs": 5, "batch_size": 8}, "model": {"cell": "gru"}}
    file_layer = {"train": {"epochs": 7}}
    overrides = config.overrides_to_dict(["train.epochs=9", "data.ticker=MSFT"])
    cfg = config.resolve(SCHEMA, recipe, file_layer, overrides)
    assert cfg["train"]["epochs"] == 9  # --set beats --config beats recipe
    assert cfg["train"]["batch_size"] == 8  # recipe beats task default
    assert cfg["model"]["cell"] == "gru"
    assert cfg["data"]["ticker"] == "MSFT"  # a bare word is a string
    assert cfg["model"]["filters"] == [32, 64]  # task default
    assert config.resolve(SCHEMA, {}, file_layer)["train"]["epochs"] == 7


def test_task_train_defaults_change_only_the_default():
    assert config.defaults(SCHEMA)["train"]["epochs"] == 30
    with pytest.raises(ConfigError, match=">= 1"):
        config.resolve(SCHEMA, {"train": {"epochs": 0}})


@pytest.mark.parametrize("text, expected", [
    ("train.epochs=5", (["train", "epochs"], 5)),
    ("model.filters=[32,64]", (["model", "filters"], [32, 64])),
    ("train.learning_rate=1e-3", (["train", "learning_rate"], 0.001)),
    ("train.nesterov=true", (["train", "nesterov"], True)),
    ('data.ticker="IBM"', (["data", "ticker"], "IBM")),
    ("data.ticker=IBM", (["data", "ticker"], "IBM")),
])
def test_override_values_are_toml_literals(text, expected):
    assert config.parse_override(text) == expected


def test_int_widens_to_float_but_bool_is_not_int():
    cfg = config.resolve(SCHEMA, {}, None, {"train": {"learning_rate": 1}})
    assert cfg["train"]["learning_rate"] == 1.0 and isinstance(cfg["train"]["learning_rate"], float)
    with pytest.raises(ConfigError, match="train.epochs"):
        config.resolve(SCHEMA, {}, None, {"train": {"epochs": True}})


@pytest.mark.parametrize("layer, words", [
    ({"train": {"epochz": 5}}, ["unknown config key 'train.epochz'", "did you mean 'train.epochs'"]),
    ({"epochs": 5}, ["unknown config key 'epochs'", "did you mean 'train.epochs'"]),
    ({"train": {"epochs": "five"}}, ["'train.epochs'", "wrong type", "'five'", "an integer"]),
    ({"data": {"fraction": 1.5}}, ["'data.fraction'", "out of range", "1.5", "<= 1.0"]),
    ({"model": {"cell": "lstn"}}, ["'model.cell'", "'lstn'", "one of 'simple', 'lstm', 'gru'"]),
    ({"model": {"filters": [32, "x"]}}, ["'model.filters'", "item 1"]),
    ({"model": {"filters": [0]}}, ["'model.filters'", "item 0 is out of range"]),
    ({"train": 5}, ["'train' is a section"]),
    ({"train": {"learning_rate": float("nan")}}, ["not a finite number"]),
])
def test_bad_keys_and_values_name_the_key_and_what_is_allowed(layer, words):
    with pytest.raises(ConfigError) as info:
        config.resolve(SCHEMA, {}, None, layer)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_errors_say_which_layer_they_came_from():
    with pytest.raises(ConfigError, match=r"^my\.toml: unknown config key"):
        config.resolve(SCHEMA, {}, {"train": {"epoch": 1}}, config_source="my.toml")
    with pytest.raises(ConfigError, match=r"^--set: "):
        config.resolve(SCHEMA, {}, None, {"train": {"epoch": 1}})


@pytest.mark.parametrize("text", ["train.epochs", "=5", "train..epochs=5", "model.filters=[1,", "a.b={x=1}"])
def test_malformed_overrides(text):
    with pytest.raises(ConfigError, match="--set"):
        config.overrides_to_dict([text])


def test_toml_round_trip_of_a_resolved_config(tmp_path):
    cfg = config.resolve(SCHEMA, {"recipe": {"task": "t", "name": "x"}, "model": {"filters": [8]}})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml(cfg))
    assert config.resolve(SCHEMA, config.read_toml(path)) == cfg


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        config.read_toml(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[data]\nticker = 'caf\xe9'".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.read_toml(latin)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_override_string_is_accepted_or_a_clear_error(text):
    """Property: random --set strings never escape as anything but ConfigError."""
    try:
        layer = config.overrides_to_dict([text])
        config.resolve(SCHEMA, {}, None, layer)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8)),
                    lambda children: st.one_of(st.lists(children, max_size=3),
                                               st.dictionaries(st.sampled_from(["train", "model", "data", "epochs",
                                                                                "cell", "filters", "x"]),
                                                               children, max_size=3)),
                    max_leaves=8))
def test_any_config_document_is_accepted_or_a_clear_error(document):
    """Property: random TOML-like documents either validate or raise ConfigError."""
    try:
        config.resolve(SCHEMA, document if isinstance(document, dict) else {"train": document})
    except ConfigError as exc:
        assert str(exc)
