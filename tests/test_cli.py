"""The command line: help for every command, TF-free listing, exit codes, recipe resolution."""

from __future__ import annotations

import json

import pytest
from helpers import fresh_python

from nnkit.cli import cli
from nnkit.registry import bundled_names

COMMANDS = sorted(cli.commands)


def test_every_command_is_there():
    assert set(COMMANDS) >= {"list", "show", "run", "train", "evaluate", "predict", "export", "report", "resume",
                             "runs"}


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS])
def test_help_of_every_command(cli_run, command):
    result = cli_run(*command, "--help")
    assert "Usage:" in result.output


def test_help_list_and_show_do_not_import_tensorflow():
    out = fresh_python("""
        import sys
        from click.testing import CliRunner
        from nnkit.cli import cli
        from nnkit.registry import bundled_names
        runner = CliRunner()
        codes = [runner.invoke(cli, ["--help"]).exit_code, runner.invoke(cli, ["list"]).exit_code]
        codes += [runner.invoke(cli, ["show", name]).exit_code for name in bundled_names()]
        print(codes, "tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    codes, tf_loaded, keras_loaded = out.strip().rsplit(" ", 2)
    assert set(json.loads(codes)) == {0}, codes
    assert tf_loaded == "False" and keras_loaded == "False"


def test_list_shows_every_bundled_recipe(cli_run):
    output = cli_run("list").output
    for name in bundled_names():
        assert name in output
    assert {"perceptron", "digits", "mnist"} <= set(bundled_names())


def test_show_prints_the_resolved_config_with_overrides(cli_run):
    output = cli_run("show", "digits", "--set", "train.epochs=3", "--set", "model.filters=[8,16]").output
    assert "epochs = 3" in output and "filters = [\n    8,\n    16,\n]" in output or "filters = [8, 16]" in output
    assert 'task = "image_classification"' in output


def test_show_schema_lists_keys_with_types(cli_run):
    output = cli_run("show", "digits", "--schema").output
    assert "# train.optimizer: one of 'sgd', 'adam', 'rmsprop'" in output


def test_a_recipe_path_works_where_a_name_does(cli_run, tmp_path):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[recipe]\ntask = "image_classification"\n[train]\nepochs = 2\n')
    output = cli_run("show", str(recipe)).output
    assert 'name = "mine"' in output and "epochs = 2" in output


@pytest.mark.parametrize("args, words", [
    (["run", "digitz"], ["unknown recipe 'digitz'", "did you mean 'digits'"]),
    (["show", "digits", "--set", "train.epochz=3"], ["unknown config key 'train.epochz'", "train.epochs"]),
    (["show", "digits", "--set", "train.optimizer=adagrad"], ["'train.optimizer'", "'adagrad'", "'sgd'"]),
    (["show", "digits", "--set", "model.dropout=2"], ["'model.dropout'", "out of range", "<= 0.9"]),
    (["show", "nowhere/recipe.toml"], ["recipe file not found"]),
    (["show", "digits", "--config", "missing.toml"], ["config file not found: missing.toml"]),
    (["evaluate", "not-a-run"], ["not-a-run: no such run folder"]),
    (["export", "."], ["not an nnkit run folder"]),
])
def test_user_errors_exit_2_with_one_line(cli_run, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    result = cli_run(*args, expect=2)
    message = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in message.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), message
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()  # nothing written


def test_a_recipe_without_a_task_is_refused(cli_run, tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text("[train]\nepochs = 2\n")
    result = cli_run("show", str(recipe), expect=2)
    assert "missing [recipe] task" in result.output + getattr(result, "stderr", "")


def test_runs_lists_nothing_politely(cli_run, tmp_path):
    assert "no runs under" in cli_run("runs", str(tmp_path)).output
