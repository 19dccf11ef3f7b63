"""Safe loading and contained writes.

* ``.keras`` files load in Keras safe mode: a Lambda layer (Python bytecode
  in the file) is refused with one line unless ``--unsafe`` is given; a
  model naming a class nobody registered is refused, and the module it names
  is never imported.
* No pickle in nnkit's code or formats (source scan).
* A name or path from the command line or from a handed-over run folder
  cannot make nnkit write outside the chosen output folder: recipe names
  with ``..`` or ``/``, a ``runs/<recipe>`` link to elsewhere, links inside a
  run folder, ``predict --out`` over the run's own files, export formats.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT

PERCEPTRON_CONFIG = '[recipe]\ntask = "binary_classification"\nname = "perceptron"\n'


def _run_folder(path: Path, status: str = "finished") -> Path:
    path.mkdir(parents=True)
    (path / "config.toml").write_text(PERCEPTRON_CONFIG)
    (path / "meta.json").write_text(json.dumps({"status": status, "task": "binary_classification",
                                                "recipe": "perceptron", "stages": ["train"]}))
    return path


def _lambda_model(path: Path, marker: Path) -> Path:
    """A model whose Lambda writes ``marker`` when it runs: proof of code execution."""
    import keras

    code = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]")  # the path is in the bytecode
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1)(keras.layers.Lambda(code, output_shape=(3,))(inputs))
    keras.Model(inputs, outputs).save(path)
    if marker.exists():
        marker.unlink()  # tracing at save time ran it once; only loading counts from here
    return path


# -- safe loading ------------------------------------------------------------------------------

def test_a_lambda_model_is_refused_in_one_line_and_runs_nothing(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.train import load_model

    marker = tmp_path / "marker"
    path = _lambda_model(tmp_path / "lambda.keras", marker)
    with pytest.raises(NnkitError) as info:
        load_model(path)
    message = str(info.value)
    assert "Lambda" in message and "--unsafe" in message and "\n" not in message
    assert not marker.exists()
    model = load_model(path, unsafe=True)  # knowingly: the user's choice
    model.predict(__import__("numpy").ones((1, 3), "float32"), verbose=0)
    assert marker.exists()


def test_cli_refuses_the_lambda_model_of_a_run_unless_unsafe(tmp_path, cli_run):
    run = _run_folder(tmp_path / "run")
    marker = tmp_path / "marker"
    _lambda_model(run / "model.keras", marker)
    for command in (["evaluate", run], ["export", run, "--format", "keras"]):
        result = cli_run(*command, expect=2)
        assert "refused" in result.stderr and "Lambda" in result.stderr and "--unsafe" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    # with --unsafe the model loads; export then stops at the next missing piece (state.json), not the Lambda
    result = cli_run("export", run, "--unsafe", expect=2)
    assert "Lambda" not in result.stderr.splitlines()[-1] and "state.json" in result.stderr
    assert "warning: --unsafe" in result.stderr
    # and --unsafe does not stick to the next command
    result = cli_run("evaluate", run, expect=2)
    assert "refused" in result.stderr


def test_an_unknown_custom_class_is_refused_and_its_module_never_imported(tmp_path, monkeypatch):
    import keras

    from nnkit.errors import NnkitError
    from nnkit.train import load_model

    probe = tmp_path / "nnkit_evil_probe.py"
    marker = tmp_path / "imported"
    probe.write_text(f"open({str(marker)!r}, 'w').write('imported')\nclass Probe:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    inputs = keras.Input((2,))
    keras.Model(inputs, keras.layers.Dense(1, name="d")(inputs)).save(tmp_path / "plain.keras")
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(tmp_path / "plain.keras") as src, zipfile.ZipFile(crafted, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["name"] == "d":
                        layer.update(module="nnkit_evil_probe", class_name="Probe", registered_name="Evil>Probe")
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(NnkitError) as info:
        load_model(crafted)
    assert "refused" in str(info.value) and "Probe" in str(info.value)
    assert not marker.exists(), "loading imported a module named by the file"
    assert "nnkit_evil_probe" not in sys.modules


def test_a_savedmodel_of_another_task_is_refused_before_it_is_loaded(tmp_path):
    from nnkit.errors import DataError
    from nnkit.predictions import load_saved_model
    from nnkit.runs import Run

    run = Run(_run_folder(tmp_path / "run"))
    saved = run.export_dir / "saved_model"
    (saved / "assets.extra").mkdir(parents=True)
    (saved / "assets.extra" / "nnkit.json").write_text(json.dumps({"task": "translation", "recipe": "translate"}))
    with pytest.raises(DataError, match="a SavedModel of task 'translation'.*this run's task is "
                                        "'binary_classification'"):
        load_saved_model(run, saved)
    (saved / "assets.extra" / "nnkit.json").unlink()
    (saved / "saved_model.pb").write_bytes(b"garbage")  # no identity, not loadable: still one line
    with pytest.raises(DataError, match="not a loadable SavedModel"):
        load_saved_model(run, saved)


def test_a_damaged_model_file_is_one_clear_line(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.train import load_model

    bad = tmp_path / "model.keras"
    bad.write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(NnkitError, match="not a loadable .keras model"):
        load_model(bad)


# -- no pickle -----------------------------------------------------------------------------------

PICKLERS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _python_files():
    return sorted((ROOT / "nnkit").rglob("*.py"))


def test_no_pickle_anywhere_in_nnkit():
    problems = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            problems += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in PICKLERS]
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    is_false = isinstance(kw.value, ast.Constant) and kw.value.value is False
                    if kw.arg == "allow_pickle" and not is_false:
                        problems.append(f"{path.name}:{node.lineno} allow_pickle is not False")
                    if kw.arg == "safe_mode" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                        problems.append(f"{path.name}:{node.lineno} safe_mode=False")
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("read_pickle", "to_pickle"):
                    problems.append(f"{path.name}:{node.lineno} {name}")
                dotted = ast.unparse(func)
                if name == "load_model" and ("keras" in dotted or "saving" in dotted or "models" in dotted) \
                        and path.name != "train.py":  # nnkit.train.load_model is the one safe door
                    safe = [kw for kw in node.keywords if kw.arg == "safe_mode"]
                    if not (safe and isinstance(safe[0].value, ast.Constant) and safe[0].value.value is True):
                        problems.append(f"{path.name}:{node.lineno} keras load_model without safe_mode=True")
    assert not problems, problems


def test_a_run_folder_holds_no_pickled_file(tmp_path):
    """Every file nnkit writes in a run is JSON, TOML, CSV, Markdown, PNG, HDF5/zip, npz or TF's own."""
    from nnkit.export_formats import _save_check, load_check

    import numpy as np

    path = tmp_path / "check.npz"
    _save_check(path, {"classify": ({"x": np.ones((2, 3))}, {"label": np.array(["a", "b"])})})
    cases = load_check(path)  # loads with allow_pickle=False, strings included
    assert cases["classify"][1]["label"].tolist() == ["a", "b"]


# -- contained writes ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../../evil", "/etc/cron.d/x", "..", "a/../../b", "~/x", "./.."])
def test_a_recipe_name_cannot_leave_the_runs_folder(tmp_path, name):
    from nnkit.runs import create_run

    root = tmp_path / "runs"
    run = create_run(name, root=root)
    assert run.path.resolve().parent.parent == root.resolve()
    assert run.path.is_dir() and not (tmp_path / "evil").exists()


def test_a_runs_subfolder_linked_elsewhere_is_refused(tmp_path):
    from nnkit.errors import NnkitError
    from nnkit.runs import create_run

    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "digits").symlink_to(elsewhere)
    with pytest.raises(NnkitError, match="symbolic link"):
        create_run("digits", root=root)
    assert not any(elsewhere.iterdir())


def test_a_runs_root_that_is_itself_a_link_is_the_users_choice(tmp_path):
    from nnkit.runs import create_run

    disk = tmp_path / "big-disk"
    disk.mkdir()
    (tmp_path / "runs").symlink_to(disk)
    run = create_run("digits", root=tmp_path / "runs")
    assert run.path.resolve().parent.parent == disk.resolve()


@pytest.mark.parametrize("entry", ["export", "plots", "logs", "checkpoints", "predictions", "metrics.json",
                                   "model.keras", "report.md"])
def test_links_inside_a_run_folder_are_refused_before_anything_is_written(tmp_path, entry, cli_run):
    run = _run_folder(tmp_path / "run", status="interrupted")
    target = tmp_path / "outside"
    if "." in entry:
        target.write_text("precious")
    else:
        target.mkdir()
    (run / entry).symlink_to(target)
    for command in (["resume", run], ["report", run], ["export", run]):
        result = cli_run(*command, expect=2)
        assert "symbolic link" in result.stderr and entry in result.stderr
    assert (target.read_text() == "precious") if target.is_file() else not any(target.iterdir())


def test_atomic_writes_replace_a_link_never_its_target(tmp_path):
    from nnkit.runs import write_json

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "metrics.json"
    link.symlink_to(target)
    write_json(link, {"a": 1})
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and json.loads(link.read_text()) == {"a": 1}


def test_predict_out_is_free_outside_the_run_and_in_predictions_only_inside(tmp_path):
    from nnkit.cli import _check_predict_out
    from nnkit.errors import NnkitError
    from nnkit.runs import Run

    run = Run(_run_folder(tmp_path / "run"))
    _check_predict_out(run, str(tmp_path / "mine.csv"))
    _check_predict_out(run, str(run.path / "predictions" / "p.csv"))
    for bad in ("model.keras", "metrics.json", "export/saved_model/saved_model.pb", "predictions/../config.toml"):
        with pytest.raises(NnkitError, match="inside the run folder"):
            _check_predict_out(run, str(run.path / bad))
    os.symlink(run.path / "meta.json", tmp_path / "innocent.json")
    with pytest.raises(NnkitError, match="inside the run folder"):  # a link into the run resolves there
        _check_predict_out(run, str(tmp_path / "innocent.json"))


def test_export_formats_are_a_closed_list(tmp_path, cli_run):
    run = _run_folder(tmp_path / "run")
    result = cli_run("export", run, "--format", "../../../tmp/x", expect=2)
    assert "Invalid value for '--format'" in result.stderr


def test_sweep_removes_only_half_written_files(tmp_path):
    from nnkit.runs import atomic_path, sweep_partial

    keep = tmp_path / "metrics.json"
    keep.write_text("{}")
    (tmp_path / ".hidden-user-file").write_text("mine")
    (tmp_path / "export" / ".partial.saved_model-x1").mkdir(parents=True)
    (tmp_path / ".partial.metrics.json.abc.tmp").write_text("{")
    with atomic_path(tmp_path / "report.md") as tmp:
        assert tmp.name.startswith(".partial.report.md.")
        tmp.write_text("done")
    removed = sweep_partial(tmp_path)
    assert sorted(p.name for p in removed) == [".partial.metrics.json.abc.tmp", ".partial.saved_model-x1"]
    assert keep.read_text() == "{}" and (tmp_path / ".hidden-user-file").exists()
    assert (tmp_path / "report.md").read_text() == "done"


def test_runs_started_in_the_same_second_never_share_a_folder(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from nnkit.runs import create_run

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: create_run("digits", root=tmp_path).path, range(64)))
    assert len(set(paths)) == 64 and all(p.is_dir() for p in paths)


def test_runs_lists_a_running_run_whose_process_died_as_killed(tmp_path, cli_run):
    """"killed" comes from the run folder's lock, not from a pid that the system may have reused."""
    import platform

    from nnkit.runs import Run, lock_run, release_locks

    for name in ("alive", "dead"):
        folder = tmp_path / "runs" / "digits" / name
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"status": "running", "recipe": "digits",
                                                     "pid": os.getpid(),  # a live pid for both
                                                     "host": platform.node(), "stages": ["train"]}))
    (tmp_path / "runs" / "digits" / "dead" / ".lock").write_text("{}")  # left by a process that died
    lock_run(Run(tmp_path / "runs" / "digits" / "alive"))
    try:
        from click.testing import CliRunner

        from nnkit.cli import runs

        lines = CliRunner().invoke(runs, [str(tmp_path / "runs")]).output.strip().splitlines()
    finally:
        release_locks()
    assert lines[0].startswith("running ") and lines[0].endswith("alive")
    assert lines[1].startswith("killed ") and lines[1].endswith("dead")
