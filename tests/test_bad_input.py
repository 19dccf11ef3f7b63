"""Bad input, one table: every case exits 2 with one clear line and damages nothing.

Each row of ``CASES`` builds a bad input in a temporary folder and gives the
command line; the test checks: exit code 2, exactly one line on standard
error (``error: ...``) that contains the expected words (the file, line or
key, and what was expected), no traceback, no run folder created, and every
file that existed before (inputs, an existing run folder) byte-for-byte
unchanged. ``docs/bad-input.md`` is generated from this table with the
messages nnkit actually prints::

    python tests/test_bad_input.py > docs/bad-input.md
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import ROOT  # noqa: E402
from bad_input_files import (OUT, RUN, Case, npz, png, prices, ragged_npz, recipe_file,  # noqa: E402
                             run_folder_of, sequences_csv, table, text)
from bad_input_cases import CASES_13, release_held  # noqa: E402

CASES = [
    # recipes and config
    Case("unknown-recipe", "config", "a recipe name that is not bundled",
         lambda t: ["run", "digitz", "--out", OUT], ("unknown recipe 'digitz'", "did you mean 'digits'")),
    Case("recipe-file-missing", "config", "a recipe path that does not exist",
         lambda t: ["run", str(t / "mine.toml"), "--out", OUT], ("recipe file not found", "mine.toml")),
    Case("recipe-invalid-toml", "config", "a recipe file that is not valid TOML",
         lambda t: ["run", str(recipe_file(t / "bad.toml", "[recipe\ntask = 1")), "--out", OUT],
         ("bad.toml", "invalid TOML", "line 1")),
    Case("recipe-no-task", "config", "a recipe file without [recipe] task",
         lambda t: ["run", str(recipe_file(t / "notask.toml", "[train]\nepochs = 2\n")), "--out", OUT],
         ("notask.toml", "missing [recipe] task")),
    Case("recipe-unknown-task", "config", "a recipe naming a task that does not exist",
         lambda t: ["run", str(recipe_file(t / "typo.toml", '[recipe]\ntask = "image_clasification"\n')),
                    "--out", OUT], ("unknown task 'image_clasification'", "did you mean 'image_classification'")),
    Case("recipe-unknown-key", "config", "a recipe file with a mistyped key",
         lambda t: ["run", str(recipe_file(t / "key.toml", '[recipe]\ntask = "binary_classification"\n'
                                           "[train]\nepoch = 3\n")), "--out", OUT],
         ("key.toml", "unknown config key 'train.epoch'", "did you mean 'train.epochs'")),
    Case("set-unknown-key", "config", "--set with an unknown key",
         lambda t: ["run", "perceptron", "--set", "train.epochz=3", "--out", OUT],
         ("--set", "unknown config key 'train.epochz'", "did you mean 'train.epochs'")),
    Case("set-wrong-type", "config", "--set with a value of the wrong type",
         lambda t: ["run", "perceptron", "--set", "train.epochs=five", "--out", OUT],
         ("'train.epochs'", "wrong type", "'five'", "expected an integer")),
    Case("set-out-of-range", "config", "--set with a value out of range",
         lambda t: ["run", "perceptron", "--set", "data.test_fraction=1.5", "--out", OUT],
         ("'data.test_fraction'", "out of range", "<= 0.5")),
    Case("set-not-a-choice", "config", "--set with a value not among the choices",
         lambda t: ["run", "digits", "--set", "train.optimizer=adamw", "--out", OUT],
         ("'train.optimizer'", "'adamw'", "one of 'sgd', 'adam', 'rmsprop'")),
    Case("set-no-equals", "config", "--set without key=value",
         lambda t: ["run", "perceptron", "--set", "train.epochs", "--out", OUT],
         ("--set 'train.epochs'", "expected key=value")),
    Case("set-bad-list", "config", "--set with a list that is not valid TOML",
         lambda t: ["run", "digits", "--set", "model.filters=[8,", "--out", OUT],
         ("--set", "is not valid TOML")),
    Case("config-not-utf8", "config", "--config file in Latin-1",
         lambda t: ["run", "perceptron", "--config", str(text(t / "latin.toml", "[data]\nlabel_column = 'caf\xe9'"
                                                                .encode("latin-1"))), "--out", OUT],
         ("latin.toml", "not UTF-8")),
    Case("config-section-as-value", "config", "--config file giving a value where a section belongs",
         lambda t: ["run", "perceptron", "--config", str(text(t / "flat.toml", "train = 3\n")), "--out", OUT],
         ("flat.toml", "'train' is a section")),
    Case("out-not-empty", "config", "--out naming a folder that already holds files",
         lambda t: ["run", "perceptron", "--out", str(text(t / "busy" / "keep.txt", "mine").parent)],
         ("--out", "busy", "not an empty folder")),
    # run folders
    Case("not-a-run-folder", "run folder", "resume of a folder that is not a run",
         lambda t: ["resume", str((t / "plain").mkdir() or t / "plain")], ("plain", "not an nnkit run folder")),
    Case("no-such-run", "run folder", "predict on a run folder that does not exist",
         lambda t: ["predict", str(t / "nowhere"), "x.csv"], ("nowhere", "no such run folder")),
    Case("resume-finished", "run folder", "resume of a run that already finished",
         lambda t: ["resume", str(run_folder_of(t / "done"))], ("done", "already finished")),
    Case("run-folder-symlink", "run folder", "a run folder whose export/ is a link to elsewhere",
         lambda t: ["export", str(_linked_run(t))], ("export", "symbolic link", "refuses to write through it")),
    # binary classification (CSV tables)
    Case("table-missing-file", "table", "--data naming a file that does not exist",
         lambda t: ["run", "perceptron", "--data", str(t / "nope.csv"), "--out", OUT], ("nope.csv",)),
    Case("table-empty", "table", "an empty CSV file",
         lambda t: ["run", "perceptron", "--data", str(text(t / "empty.csv", "")), "--out", OUT],
         ("empty.csv", "empty CSV file")),
    Case("table-header-only", "table", "a CSV with a header and no rows",
         lambda t: ["run", "perceptron", "--data", str(text(t / "head.csv", "a,b,label\n")), "--out", OUT],
         ("head.csv", "no data rows")),
    Case("table-semicolons", "table", "a CSV separated by semicolons",
         lambda t: ["run", "perceptron", "--data", str(table(t / "semi.csv", sep=";")), "--out", OUT],
         ("semi.csv", "semicolons", "comma-separated")),
    Case("table-missing-label", "table", "no label column",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv")), "--set", "data.label_column=y",
                    "--out", OUT], ("t.csv", "no label column 'y'", "data.label_column")),
    Case("table-text-in-number", "table", "a word in a numeric column",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv", bad={(4, "b"): "abc"})), "--out", OUT],
         ("t.csv", "line 6", "column 'b'", "'abc'", "finite number")),
    Case("table-infinite", "table", "an infinite value",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv", bad={(7, "a"): "inf"})), "--out", OUT],
         ("t.csv", "line 9", "column 'a'", "'inf' is not a finite number")),
    Case("table-nan", "table", "an empty (NaN) feature cell",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv", bad={(2, "a"): ""})), "--out", OUT],
         ("t.csv", "line 4", "column 'a'", "empty cell is not a finite number")),
    Case("table-three-classes", "table", "three classes for a binary task",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv", label=lambda i: i % 3)), "--out", OUT],
         ("t.csv", "3 classes", "exactly 2")),
    # image classification
    Case("images-mixed-sizes", "images", "a folder of images of two sizes",
         lambda t: ["run", "digits", "--data", str(_image_folder(t, sizes=((8, 8), (9, 8)))), "--out", OUT],
         ("mixed sizes",)),
    Case("images-corrupt", "images", "a corrupt .png file",
         lambda t: ["run", "digits", "--data", str(_image_folder(t, corrupt=True)), "--out", OUT],
         ("broken.png", "corrupt or unreadable image")),
    Case("images-one-class", "images", "a folder with a single class",
         lambda t: ["run", "digits", "--data", str(_image_folder(t, classes=1)), "--out", OUT],
         ("1 class", "at least 2 class subfolders")),
    Case("images-stray-file", "images", "a text file among the images",
         lambda t: ["run", "digits", "--data", str(_image_folder(t, stray=True)), "--out", OUT],
         ("notes.txt", "not an image file")),
    Case("images-npz-no-y", "images", "an .npz without labels",
         lambda t: ["run", "digits", "--data", str(npz(t / "x.npz", x=np.zeros((20, 8, 8), "uint8"))),
                    "--out", OUT], ("x.npz", "missing array 'y'")),
    Case("images-npz-nan", "images", "an .npz with NaN pixels",
         lambda t: ["run", "digits", "--data", str(npz(t / "nan.npz", x=_nan_images(), y=np.arange(20) % 2)),
                    "--out", OUT], ("nan.npz", "NaN or infinite pixels")),
    # forecasting (price CSV)
    Case("prices-dates-out-of-order", "prices", "two dates out of order",
         lambda t: ["run", "stock", "--data", str(prices(t / "p.csv", swap=10)), "--out", OUT],
         ("p.csv", "line 13", "column 'Date'", "comes after", "increasing order")),
    Case("prices-bad-date", "prices", "a date that cannot be parsed",
         lambda t: ["run", "stock", "--data", str(prices(t / "p.csv", bad={(5, "Date"): "2020-13-45"})),
                    "--out", OUT], ("p.csv", "line 7", "column 'Date'", "'2020-13-45'")),
    Case("prices-text-in-close", "prices", "a word in the price column",
         lambda t: ["run", "stock", "--data", str(prices(t / "p.csv", bad={(20, "Close"): "n/a?"})),
                    "--out", OUT], ("p.csv", "line 22", "column 'Close'", "not a number")),
    Case("prices-missing-value", "prices", "an empty price cell",
         lambda t: ["run", "stock", "--data", str(prices(t / "p.csv", bad={(30, "Close"): ""})), "--out", OUT],
         ("p.csv", "line 32", "column 'Close'", "missing value")),
    Case("prices-not-utf8", "prices", "a price file that is not UTF-8",
         lambda t: ["run", "stock", "--data", str(text(t / "p.csv", b"Date,Close\n2020-01-01,\xff\xfe1\n")),
                    "--out", OUT], ("p.csv", "not UTF-8")),
    # sequences (collision / driving)
    Case("sequences-ragged-npz", "sequences", "an .npz of ragged sequences (object array)",
         lambda t: ["run", "collision", "--data", str(ragged_npz(t / "r.npz")), "--out", OUT],
         ("r.npz", "ragged")),
    Case("sequences-infinite", "sequences", "an infinite sensor value in a sequence CSV",
         lambda t: ["run", "collision", "--data", str(sequences_csv(t / "s.csv", bad_cell="inf")), "--out", OUT],
         ("s.csv", "line 19", "column 'gap'", "infinite")),
    Case("sequences-text", "sequences", "a word in a sequence CSV",
         lambda t: ["run", "driving", "--data", str(sequences_csv(t / "s.csv", bad_cell="fast")), "--out", OUT],
         ("s.csv", "line 19", "column 'gap'", "'fast' is not a number")),
    Case("sequences-wrong-rank", "sequences", "an .npz whose x is 4-D",
         lambda t: ["run", "collision", "--data", str(npz(t / "deep.npz", x=np.zeros((12, 5, 2, 2)),
                                                          y=np.arange(12) % 2)), "--out", OUT],
         ("deep.npz", "expected [N, T, F]")),
    Case("sequences-unknown-type", "sequences", "a sequence file of an unsupported type",
         lambda t: ["run", "collision", "--data", str(text(t / "s.json", "{}")), "--out", OUT],
         ("s.json", "unsupported file type")),
    # melody / text
    Case("text-not-utf8", "text", "a Latin-1 text file for the melody (character) model",
         lambda t: ["run", "melody", "--data", str(text(t / "song.txt", ("caf\xe9 " * 200).encode("latin-1"))),
                    "--out", OUT], ("song.txt", "line 1", "not valid UTF-8")),
    Case("text-empty", "text", "an empty text file",
         lambda t: ["run", "melody", "--data", str(text(t / "empty.txt", "")), "--out", OUT],
         ("empty.txt", "empty")),
    # translation (TSV pairs)
    Case("tsv-no-tab", "pairs", "a TSV line with no tab",
         lambda t: ["run", "translate", "--data", str(text(t / "pairs.tsv", "one\tun\ntwo deux\nthree\ttrois\n" * 5)),
                    "--out", OUT], ("pairs.tsv", "line 2", "source<TAB>target")),
    Case("tsv-empty", "pairs", "an empty TSV file",
         lambda t: ["run", "translate", "--data", str(text(t / "pairs.tsv", "")), "--out", OUT],
         ("pairs.tsv", "empty")),
    # products (sessions CSV)
    Case("sessions-missing-column", "sessions", "a sessions CSV without item_id",
         lambda t: ["run", "products", "--data", str(text(t / "s.csv", "session_id,product\n1,a\n1,b\n")),
                    "--out", OUT], ("s.csv", "no column 'item_id'", "data.item_column")),
    Case("sessions-empty", "sessions", "an empty sessions CSV",
         lambda t: ["run", "products", "--data", str(text(t / "s.csv", "")), "--out", OUT],
         ("s.csv", "empty file")),
    Case("sessions-empty-item", "sessions", "a session row with no item id",
         lambda t: ["run", "products", "--data", str(text(t / "s.csv", "session_id,item_id\n1,a\n1,\n2,b\n")),
                    "--out", OUT], ("s.csv", "line 3", "column 'item_id'", "empty value")),
    # predict (a finished perceptron run)
    Case("predict-missing-columns", "predict", "a CSV to predict without the feature columns",
         lambda t: ["predict", RUN, str(text(t / "new.csv", "x,y\n1,2\n"))], ("new.csv", "missing feature column"),
         needs_run=True),
    Case("predict-option-of-another-task", "predict", "a predict option the task does not take",
         lambda t: ["predict", RUN, "--horizon", "3", str(t / "any.csv")], ("--horizon", "do not apply"),
         needs_run=True),
    Case("predict-out-over-run-files", "predict", "--out pointing at the run's own model file",
         lambda t: ["predict", RUN, "--out", f"{RUN}/model.keras", str(t / "any.csv")],
         ("--out", "inside the run folder", "never over the run's own files"), needs_run=True),
    Case("predict-savedmodel-of-another-task", "predict", "a SavedModel of another task in the run's export/",
         lambda t: ["predict", "FOREIGN", str(_cancer_csv(t / "new.csv"))],
         ("saved_model", "a SavedModel of task 'image_classification'", "this run's task is 'binary_classification'"),
         needs_run=True),
] + CASES_13


def _linked_run(t: Path) -> Path:
    run = run_folder_of(t / "linked", status="running")
    (t / "elsewhere").mkdir()
    (run / "export").symlink_to(t / "elsewhere")
    return run


def _image_folder(t: Path, sizes=((8, 8),), classes: int = 2, corrupt: bool = False, stray: bool = False) -> Path:
    root = t / "images"
    for c in range(classes):
        for i in range(6):
            width, height = sizes[(i + c) % len(sizes)] if i == 5 else sizes[0]
            png(root / f"class{c}" / f"{i}.png", width, height, value=40 * c + i)
    if corrupt:
        text(root / "class0" / "broken.png", b"\x89PNG\r\n\x1a\nnot really")
    if stray:
        text(root / "class1" / "notes.txt", "hello")
    return root


def _cancer_csv(path: Path) -> Path:
    """Three rows with the perceptron run's feature columns (sklearn's breast cancer names)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    lines = [",".join(bunch.feature_names)] + [",".join(map(str, row)) for row in bunch.data[:3]]
    return text(path, "\n".join(lines) + "\n")


def _nan_images():
    x = np.zeros((20, 8, 8), "float32")
    x[3, 2, 2] = np.nan
    return x


# -- the run the predict cases need -------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny finished perceptron run, and a copy whose export/ holds another task's SavedModel."""
    from helpers import nnkit_subprocess

    base = tmp_path_factory.mktemp("runs")
    run = base / "perceptron"
    nnkit_subprocess("run", "perceptron", "--out", run, "--quiet", "--set", "train.epochs=1")
    foreign = base / "foreign"
    shutil.copytree(run, foreign)
    shutil.rmtree(foreign / "export" / "saved_model")
    _foreign_saved_model(foreign / "export" / "saved_model")
    return run, foreign


def _foreign_saved_model(path: Path) -> None:
    """A small real SavedModel exported by an image-classification run (its identity file says so)."""
    import tensorflow as tf

    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8], tf.uint8)])
        def classify(self, images):
            return {"label": tf.reduce_sum(tf.cast(images, tf.float32), axis=[1, 2])}

    module = Classifier()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.classify})
    text(path / "assets.extra" / "nnkit.json", json.dumps({"task": "image_classification", "recipe": "digits",
                                                          "endpoints": ["classify"]}))


# -- running a case -------------------------------------------------------------------------------

def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def run_case(case: Case, tmp: Path, run: Path | None = None, foreign: Path | None = None):
    """Build the case, run the CLI in-process; return (exit code, stderr, out path, digests before/after)."""
    from click.testing import CliRunner

    from nnkit.cli import cli

    work = tmp / "case"
    work.mkdir()
    out = work / "should-not-exist"
    args = case.setup(work)
    args = [str(out) if a == OUT else a for a in args]
    if run is not None:
        args = [a.replace(RUN, str(run)) if RUN in a else a for a in args]
        args = [str(foreign) if a == "FOREIGN" else a for a in args]
    watched = [work] + [p for p in (run, foreign) if p is not None]
    before = {str(w): _digest(w) for w in watched}
    cwd = os.getcwd()
    os.chdir(work)  # a default runs/ folder would appear here
    restore = _arm_interrupt(case.interrupt)
    try:
        result = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        os.chdir(cwd)
        restore()
        release_held()
    after = {str(w): _digest(w) for w in watched}
    stderr = result.stderr if hasattr(result, "stderr") else result.output
    return result, stderr, out, before, after, work


@pytest.mark.parametrize("case", [c for c in CASES if not c.needs_run and not c.slow], ids=lambda c: c.id)
def test_bad_input(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.slow  # cases that train (divergence) for longer than the default run affords
@pytest.mark.parametrize("case", [c for c in CASES if c.slow], ids=lambda c: c.id)
def test_bad_input_that_trains(case, tmp_path):
    _check(case, tmp_path)


@pytest.mark.slow  # one tiny real run shared by the four cases (~30-90 s on a shared machine)
@pytest.mark.parametrize("case", [c for c in CASES if c.needs_run], ids=lambda c: c.id)
def test_bad_input_to_predict(case, tmp_path, finished_run):
    _check(case, tmp_path, *finished_run)


def _arm_interrupt(interrupt):
    """Make ``module.function`` raise ``signal`` in this thread when called: the interruption lands at a
    known point of the command (no timing involved). Returns the function that undoes it."""
    if interrupt is None:
        return lambda: None
    import importlib
    import signal

    module_name, name, signum = interrupt
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    # Ctrl-C's default handling, as on a terminal: tests started in the background inherit SIGINT ignored
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)

    def firing(*args, **kwargs):
        signal.raise_signal(signum)
        return original(*args, **kwargs)

    def restore():
        setattr(module, name, original)
        signal.signal(signal.SIGINT, handler)

    setattr(module, name, firing)
    return restore


def _check(case, tmp_path, run=None, foreign=None):
    if case.root_can and os.geteuid() == 0:
        pytest.skip("root may write anywhere: file permissions cannot be tested as root")
    result, stderr, out, before, after, work = run_case(case, tmp_path, run, foreign)
    detail = f"exit {result.exit_code}; stderr:\n{stderr}"
    if result.exception and not isinstance(result.exception, SystemExit):
        import traceback

        detail += "".join(traceback.format_exception(result.exception))
    assert result.exit_code == case.code, detail
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and (lines[0].startswith("error: ") or case.code != 2), detail
    assert "Traceback" not in stderr
    for word in case.expect:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"
    if case.fails_run:  # the run folder says what happened, in the same words
        meta = json.loads((out / "meta.json").read_text())
        assert meta["status"] == "failed" and meta["error"] == lines[0][len("error: "):], meta
        assert not (out / "metrics.json").exists() and not (out / "export").exists()
        assert not list(out.rglob(".partial.*"))
        return
    assert not out.exists(), "a run folder was created for bad input"
    assert not (work / "runs").exists(), "a default run folder was created for bad input"
    for folder, files in after.items():  # a lock taken and released leaves its (empty of meaning) .lock file
        for name in [n for n in files if n not in before[folder] and Path(n).name == ".lock"]:
            del files[name]
    assert before == after, "a file that existed before was changed"


def test_the_table_is_large_and_covers_every_area():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    areas = {c.area for c in CASES}
    assert {"config", "run folder", "table", "images", "prices", "sequences", "text", "pairs", "sessions",
            "predict"} <= areas


def test_the_published_table_matches_this_one():
    """docs/bad-input.md is generated from CASES; regenerate it when a case is added or changed."""
    doc = (ROOT / "docs" / "bad-input.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert len(rows) == len(CASES), "regenerate: python tests/test_bad_input.py > docs/bad-input.md"
    for row, case in zip(rows, CASES):
        assert f"| {case.klass or ''} | {case.area} | {case.what} |" in row and f"exit {case.code}: " in row, row


def test_every_class_of_issue_13_has_at_least_five_new_cases():
    from collections import Counter

    counts = Counter(c.klass for c in CASES if c.klass)
    for klass in (1, 2, 3, 4, 5, 6, 7, 8, 9):
        assert counts[klass] >= 5, (klass, counts)


# -- docs/bad-input.md ---------------------------------------------------------------------------

def markdown() -> str:
    """The table with the messages nnkit prints today (run this file as a script)."""
    import tempfile

    lines = ["# Bad input: every case, and what nnkit says", "",
             "Generated by `python tests/test_bad_input.py > docs/bad-input.md` from the table that "
             "`tests/test_bad_input.py` tests: each case exits with code 2 (130 for an interruption), prints exactly one line on "
             "standard error (no traceback), creates no run folder, and leaves every file that existed "
             "before unchanged. Paths below are shortened to the file name.", "",
             "Cases marked with a class number were added for issue 13 (1: one line after TensorFlow has "
             "loaded, 2: file-system trouble, 3: the run-folder lock, 5: nothing read silently wrong, "
             "7: values checked where they enter, 8: Ctrl-C/SIGTERM, exit 130). Cases that need file "
             "permissions are skipped when the tests run as root.", "",
             "| # | class | area | bad input | command | message |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        needs = any(c.needs_run for c in CASES)
        run = foreign = None
        if needs:
            from helpers import nnkit_subprocess

            run, foreign = tmp / "perceptron", tmp / "foreign"
            nnkit_subprocess("run", "perceptron", "--out", run, "--quiet", "--set", "train.epochs=1")
            shutil.copytree(run, foreign)
            shutil.rmtree(foreign / "export" / "saved_model")
            _foreign_saved_model(foreign / "export" / "saved_model")
        for n, case in enumerate(CASES, 1):
            folder = tmp / f"c{n}"
            folder.mkdir()
            if case.root_can and os.geteuid() == 0:
                lines.append(f"| {n} | {case.klass or ''} | {case.area} | {case.what} | "
                             f"`{_command_words(case)}` | exit {case.code}: (skipped: run as root) |")
                continue
            result, stderr, out, *_ = run_case(case, folder, run, foreign)
            message = (stderr.strip().splitlines() or ["(none)"])[-1]
            for prefix in (str(folder / "case") + "/", str(folder / "case"), str(tmp) + "/"):
                message = message.replace(prefix, "")
            message = message.replace("|", "\\|")
            command = _command_words(case)
            lines.append(f"| {n} | {case.klass or ''} | {case.area} | {case.what} | `{command}` | "
                         f"exit {result.exit_code}: "
                         f"`` {message} `` |")
    return "\n".join(lines) + "\n"


def _command_words(case: Case) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args = case.setup(Path(tmp))
        words = []
        for a in args:
            a = str(a).replace(tmp + "/", "").replace(tmp, ".")
            if a == OUT:
                a = "new-run"
            words.append(a if a and a.isprintable() and " " not in a else repr(a))
        return ("nnkit " + " ".join(words)).replace("|", "\\|")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NNKIT_CACHE", str(Path.home() / ".cache" / "nnkit"))
    sys.stdout.write(markdown())


# -- random config text (property-based) ---------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TOML_LIKE = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"(\[(recipe|train|model|data|eval|x)\]\n)?((epochs|batch_size|optimizer|learning_rate|arch|"
                  r"activation|source|path|test_fraction|task|epoch)\s?=\s?(-?\d{1,3}|\d\.\d+|\"[a-z_]{0,8}\"|"
                  r"\[\d?(, ?\d)*\]|true|nan|inf|1e9|\{a = 1\})\n){0,4}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(TOML_LIKE)
def test_random_config_text_is_accepted_or_one_clear_error(document):
    """Random TOML text as a --config file for a real task: it validates, or raises one clear ConfigError."""
    import tempfile

    from nnkit import config
    from nnkit.errors import ConfigError
    from nnkit.pipeline import task_schema
    from nnkit.tasks import get_task

    schema = task_schema(get_task("binary_classification"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.toml"
        path.write_text(document, encoding="utf-8")
        try:
            layer = config.read_toml(path)
            cfg = config.resolve(schema, {"recipe": {"task": "binary_classification"}}, layer,
                                 config_source=str(path))
        except ConfigError as exc:
            message = str(exc)
            assert message and "\n" not in message
            assert "Traceback" not in message
        else:
            assert set(cfg) == set(schema)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=3))
def test_random_set_strings_against_a_real_task(items):
    from nnkit import config
    from nnkit.errors import ConfigError
    from nnkit.pipeline import task_schema
    from nnkit.tasks import get_task

    schema = task_schema(get_task("image_classification"))
    try:
        config.resolve(schema, {}, None, config.overrides_to_dict(items))
    except ConfigError as exc:
        assert str(exc)
