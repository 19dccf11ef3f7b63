"""The bad-input cases of issue 13, one group per class (``klass``), run by tests/test_bad_input.py.

1 one line on stderr after TensorFlow has loaded (also run in one real process: test_tensorflow_quiet.py)
2 file-system trouble is a message; special files are never read or replaced
3 one process at a time in a run folder (the lock)
4 training that diverges says so (the run is left "failed" with the same line)
5 nothing read silently wrong (dates, separators)
6 a run's results stay tied to its data (fingerprint, moved files)
7 every value checked where it enters, before a run folder exists
8 Ctrl-C / SIGTERM at every stage before a run folder: exit 130, one line, nothing written
9 damaged run files on resume: which file, and the flag that goes on (--from last-good / scratch)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
from pathlib import Path

from bad_input_files import OUT, Case, prices, recipe_file, run_folder_of, sequences_csv, table, text

TASK_RECIPES = {"binary_classification": "perceptron", "image_classification": "digits", "forecasting": "stock",
                "sequence_classification": "collision", "sequence_labeling": "driving",
                "language_model": "melody", "translation": "translate", "embedding": "products"}

_HELD: list[int] = []  # lock file descriptors held "by another process" during a case


def release_held() -> None:
    while _HELD:
        os.close(_HELD.pop())


def task_run(t: Path, task: str) -> Path:
    """A finished run folder of ``task`` whose model file is missing (``evaluate`` needs TensorFlow first)."""
    path = t / f"{task}-run"
    text(path / "config.toml", f'[recipe]\ntask = "{task}"\nname = "{TASK_RECIPES[task]}"\n')
    text(path / "meta.json", json.dumps({"status": "finished", "task": task}))
    return path


def held_run(t: Path, status: str = "running") -> Path:
    """A run folder whose lock another holder has (an open file description of this process counts as
    another holder for ``flock``), with the owner line a real nnkit process writes."""
    path = run_folder_of(t / "busy", status=status)
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, json.dumps({"pid": 4242, "host": "trainer", "command": "resume busy",
                             "since": "2026-01-01T00:00:00+00:00"}).encode())
    _HELD.append(fd)
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def read_only(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    return path


def dated(path: Path, fmt: str, days: int = 40, sep: str = ",", start=dt.date(2021, 1, 1)) -> Path:
    rows = [start + dt.timedelta(days=i) for i in range(days)]
    lines = [f"Date{sep}Close"] + [f"{d.strftime(fmt)}{sep}{100 + i % 7}" for i, d in enumerate(rows)]
    return text(path, "\n".join(lines) + "\n")


def mixed_order(path: Path) -> Path:
    """Day-first dates that prove it (13/01/2021), then a month-first one (01/14/2021)."""
    return text(path, "Date,Close\n12/01/2021,1\n13/01/2021,2\n01/14/2021,3\n" + "".join(
        f"{d:02d}/02/2021,{d}\n" for d in range(1, 30)))


def data_run(t: Path, data: Path, recipe: str = "perceptron", task: str = "binary_classification",
             status: str = "finished", fingerprint: str = "0123456789abcdef") -> Path:
    """A run folder trained on ``data`` (its recorded fingerprint: ``fingerprint``)."""
    path = t / "trained"
    text(path / "config.toml", f'[recipe]\ntask = "{task}"\nname = "{recipe}"\n[data]\npath = "{data}"\n')
    text(path / "meta.json", json.dumps({"status": status, "task": task, "recipe": recipe, "stages": [],
                                         "data_fingerprint": fingerprint}))
    text(path / "model.keras", b"PK")  # never read: the data is checked first
    return path


def moved(path: Path) -> Path:
    """``path`` once was there; the run recorded it, then the user moved it away."""
    return path.parent / "moved-away" / path.name


def h5(path: Path, truncate: bool = False) -> Path:
    import h5py
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layers/dense/vars/0", data=np.ones((64, 64), "float32"))
    if truncate:
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
    return path


def interrupted_run(t: Path, index: str | None = None, weights: str = "whole", previous: bool = False,
                    best: str | None = None, stages=()) -> Path:
    """An interrupted perceptron run with a resume checkpoint in the state asked for."""
    path = t / "stopped"
    text(path / "config.toml", '[recipe]\ntask = "binary_classification"\nname = "perceptron"\n')
    text(path / "meta.json", json.dumps({"status": "interrupted", "task": "binary_classification",
                                         "recipe": "perceptron", "stages": list(stages)}))
    backup = path / "checkpoints" / "backup"
    states = {"ResumableEarlyStopping-0": {"best_weights": "best-epoch-2.npz"}} if best else {}
    text(backup / "checkpoint.json", index if index is not None else json.dumps(
        {"epoch": 3, "weights": "epoch-3.weights.h5", "callbacks": states}))
    if weights != "none":
        if weights == "garbage":
            text(backup / "epoch-3.weights.h5", b"\x00garbage" * 50)
        else:
            h5(backup / "epoch-3.weights.h5", truncate=weights == "truncated")
    if best:
        text(backup / "best-epoch-2.npz", b"PK\x03\x04 not really a zip")
    if previous:
        text(backup / "checkpoint.previous.json", json.dumps({"epoch": 2, "weights": "epoch-2.weights.h5"}))
        h5(backup / "epoch-2.weights.h5")
    if "train" in stages:
        text(path / "model.keras", b"PK\x03\x04" + b"\x00" * 40)  # a zip cut short
    return path


SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
INTERRUPTED = ("interrupted before a run folder was created", "nothing was written")

CASES_13 = [
    # 1: one line after TensorFlow has loaded, for every task
    *[Case(f"tf-loaded-{task}", "after TensorFlow", f"evaluate a {task} run whose model file is gone",
           lambda t, task=task: ["evaluate", str(task_run(t, task))], ("model.keras", "no such model file"), klass=1)
      for task in TASK_RECIPES],
    # 2: file-system trouble
    Case("out-parent-is-a-file", "file system", "--out under a regular file",
         lambda t: ["run", "perceptron", "--out", str(text(t / "notes.txt", "mine") / "run")],
         ("notes.txt", "cannot create the run folder", "a part of the path is a file"), klass=2),
    Case("out-is-a-fifo", "file system", "--out naming a FIFO",
         lambda t: ["run", "perceptron", "--out", str(fifo(t / "pipe"))], ("--out", "pipe", "not an empty folder"),
         klass=2),
    Case("train-out-under-a-file", "file system", "train --out two levels under a regular file",
         lambda t: ["train", "digits", "--out", str(text(t / "f.bin", "x") / "a" / "b")],
         ("f.bin", "a part of the path is a file"), klass=2),
    Case("predict-out-fifo", "file system", "predict --out naming a FIFO",
         lambda t: ["predict", str(run_folder_of(t / "done")), "--out", str(fifo(t / "p.csv")), str(t / "x.csv")],
         ("p.csv", "is a FIFO", "never replaces"), klass=2),
    Case("predict-out-parent-file", "file system", "predict --out under a regular file",
         lambda t: ["predict", str(run_folder_of(t / "done")), "--out", str(text(t / "f", "x") / "p.csv"),
                    str(t / "x.csv")], ("p.csv", "cannot write", "a part of the path is a file"), klass=2),
    Case("data-fifo", "file system", "--data naming a FIFO (reading it would block)",
         lambda t: ["run", "perceptron", "--data", str(fifo(t / "feed.csv")), "--out", OUT],
         ("feed.csv", "is a FIFO", "regular file"), klass=2),
    Case("data-device", "file system", "--data naming a device",
         lambda t: ["run", "perceptron", "--data", "/dev/zero", "--out", OUT], ("/dev/zero", "is a device"),
         klass=2),
    Case("config-fifo", "file system", "--config naming a FIFO",
         lambda t: ["run", "perceptron", "--config", str(fifo(t / "c.toml")), "--out", OUT],
         ("c.toml", "not a regular file"), klass=2),
    Case("prices-fifo", "file system", "a price series that is a FIFO",
         lambda t: ["run", "stock", "--data", str(fifo(t / "p.csv")), "--out", OUT], ("p.csv", "is a FIFO"), klass=2),
    Case("out-read-only", "file system", "--out inside a read-only folder",
         lambda t: ["run", "perceptron", "--out", str(read_only(t / "ro") / "run")],
         ("ro", "permission denied"), klass=2, root_can=True),
    # 3: the run-folder lock
    Case("resume-while-held", "lock", "resume of a run another process works in",
         lambda t: ["resume", str(held_run(t))], ("busy", "in use by", "pid 4242", "resume busy"), klass=3),
    Case("evaluate-while-held", "lock", "evaluate of a run another process works in",
         lambda t: ["evaluate", str(held_run(t, "finished"))], ("busy", "in use by", "pid 4242"), klass=3),
    Case("export-while-held", "lock", "export of a run another process works in",
         lambda t: ["export", str(held_run(t, "finished"))], ("busy", "in use by"), klass=3),
    Case("report-while-held", "lock", "report of a run another process works in",
         lambda t: ["report", str(held_run(t, "finished"))], ("busy", "in use by"), klass=3),
    Case("run-out-held", "lock", "run --out naming a run folder in use",
         lambda t: ["run", "perceptron", "--out", str(held_run(t))], ("busy", "not an empty folder"), klass=3),
    Case("train-out-held", "lock", "train --out naming a run folder in use",
         lambda t: ["train", "perceptron", "--out", str(held_run(t))], ("busy", "not an empty folder"), klass=3),
    # 4: training that diverges (these train; all but the first run only in the slow run)
    Case("diverge-mlp", "diverges", "an MLP on a table with learning rate 1e12",
         lambda t: ["run", "perceptron", "--quiet", "--epochs", "2", "--set", "model.arch=mlp",
                    "--set", "train.learning_rate=1e12", "--data", str(table(t / "t.csv", rows=60)), "--out", OUT],
         ("training diverged", "train.learning_rate (now 1e+12; try 1e+11)", "train.clipnorm"),
         klass=4, fails_run=True),
    Case("diverge-mlp-sgd", "diverges", "an MLP with SGD, momentum and learning rate 1e9",
         lambda t: ["train", "perceptron", "--quiet", "--epochs", "3", "--set", "model.arch=mlp",
                    "--set", "train.optimizer=sgd", "--set", "train.learning_rate=1e9", "--out", OUT],
         ("training diverged", "at epoch", "train.learning_rate"), klass=4, fails_run=True),
    Case("diverge-digits", "diverges", "a CNN with learning rate 1e9",
         lambda t: ["run", "digits", "--quiet", "--epochs", "2", "--set", "train.learning_rate=1e9", "--out", OUT],
         ("training diverged", "loss is nan at epoch 1", "train.learning_rate", "train.clipnorm"),
         klass=4, fails_run=True, slow=True),
    Case("diverge-stock", "diverges", "a forecaster whose outputs overflow (loss 1e19, forecasts inf)",
         lambda t: ["run", "stock", "--quiet", "--epochs", "2", "--set", "train.learning_rate=1e9", "--out", OUT],
         ("training diverged", "not finite", "train.learning_rate"), klass=4, fails_run=True, slow=True),
    Case("diverge-stock-mlp", "diverges", "an MLP forecaster with learning rate 1e12",
         lambda t: ["run", "stock", "--quiet", "--epochs", "2", "--set", "model.arch=mlp",
                    "--set", "train.learning_rate=1e12", "--out", OUT],
         ("training diverged", "train.learning_rate"), klass=4, fails_run=True, slow=True),
    # 5: nothing read silently wrong
    Case("dates-ambiguous", "read right", "dates that could be day-first or month-first",
         lambda t: ["run", "stock", "--data", str(dated(t / "d.csv", "%d/%m/%Y", days=12)), "--out", OUT],
         ("d.csv", "line 2", "ambiguous date '01/01/2021'", "data.date_format", "'%d/%m/%Y'"), klass=5),
    Case("dates-ambiguous-dots", "read right", "dotted two-digit-year dates, ambiguous",
         lambda t: ["run", "stock", "--data", str(dated(t / "d.csv", "%m.%d.%y", days=12)), "--out", OUT],
         ("d.csv", "ambiguous", "'%d.%m.%y'", "'%m.%d.%y'"), klass=5),
    Case("dates-contradict", "read right", "day-first and month-first dates in one file",
         lambda t: ["run", "stock", "--data", str(mixed_order(t / "d.csv")), "--out", OUT],
         ("d.csv", "line 4", "'01/14/2021'", "contradicts", "data.date_format"), klass=5),
    Case("date-format-mismatch", "read right", "data.date_format that the file does not follow",
         lambda t: ["run", "stock", "--data", str(dated(t / "d.csv", "%d/%m/%Y", days=12)), "--set",
                    "data.date_format=%Y-%m-%d", "--out", OUT],
         ("d.csv", "line 2", "cannot parse '01/01/2021'", "data.date_format '%Y-%m-%d'"), klass=5),
    Case("prices-semicolons", "read right", "a price CSV separated by semicolons",
         lambda t: ["run", "stock", "--data", str(dated(t / "p.csv", "%Y-%m-%d", sep=";")), "--out", OUT],
         ("p.csv", "line 1", "semicolons", "';'"), klass=5),
    Case("prices-tabs", "read right", "a price CSV separated by tabs",
         lambda t: ["run", "stock", "--data", str(dated(t / "p.csv", "%Y-%m-%d", sep="\t")), "--out", OUT],
         ("p.csv", "tabs", "'\\t'"), klass=5),
    Case("table-tabs", "read right", "a feature table separated by tabs",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv", sep="\t")), "--out", OUT],
         ("t.csv", "tabs", "comma-separated"), klass=5),
    Case("sessions-semicolons", "read right", "a sessions CSV separated by semicolons",
         lambda t: ["run", "products", "--data", str(text(t / "s.csv", "session_id;item_id\n1;a\n1;b\n2;c\n")),
                    "--out", OUT], ("s.csv", "semicolons"), klass=5),
    Case("sequences-bars", "read right", "a sequence CSV separated by vertical bars",
         lambda t: ["run", "collision", "--data", str(text(t / "s.csv", sequences_csv(t / "x.csv").read_text()
                                                           .replace(",", "|"))), "--out", OUT],
         ("s.csv", "vertical bars", "'|'"), klass=5),
    # 6: results stay tied to their data
    Case("evaluate-changed-data", "data tie", "evaluate after the run's --data file changed",
         lambda t: ["evaluate", str(data_run(t, table(t / "t.csv")))],
         ("t.csv", "changed since the run was trained", "metrics.json was left as it was", "--data"), klass=6),
    Case("evaluate-moved-data", "data tie", "evaluate after the run's --data file was moved",
         lambda t: ["evaluate", str(data_run(t, moved(t / "t.csv")))],
         ("t.csv", "the run needs", "gone", "--data"), klass=6),
    Case("resume-moved-data", "data tie", "resume after the run's --data file was moved",
         lambda t: ["resume", str(data_run(t, moved(t / "t.csv"), status="interrupted"))],
         ("t.csv", "the run needs", "nnkit resume", "--data"), klass=6),
    Case("resume-other-data", "data tie", "resume pointed at data other than the run's",
         lambda t: ["resume", str(data_run(t, moved(t / "t.csv"), status="interrupted")), "--data",
                    str(table(t / "other.csv"))], ("other.csv", "not the data this run was trained on"), klass=6),
    Case("evaluate-changed-prices", "data tie", "evaluate a forecast after its price file changed",
         lambda t: ["evaluate", str(data_run(t, prices(t / "p.csv"), "stock", "forecasting"))],
         ("p.csv", "changed since the run was trained"), klass=6),
    Case("evaluate-moved-sequences", "data tie", "evaluate a sequence run whose CSV was moved",
         lambda t: ["evaluate", str(data_run(t, moved(t / "s.csv"), "collision", "sequence_classification"))],
         ("s.csv", "the run needs", "--data"), klass=6),
    # 9: damaged run files on resume
    Case("checkpoint-index-garbage", "damaged", "a resume checkpoint index that is not JSON",
         lambda t: ["resume", str(interrupted_run(t, index="{epoch: three"))],
         ("checkpoint.json", "damaged resume checkpoint", "--from scratch"), klass=9),
    Case("checkpoint-weights-garbage", "damaged", "checkpoint weights that are garbage",
         lambda t: ["resume", str(interrupted_run(t, weights="garbage"))],
         ("epoch-3.weights.h5", "unreadable weights", "--from scratch"), klass=9),
    Case("checkpoint-weights-truncated", "damaged", "truncated checkpoint weights, an earlier commit kept",
         lambda t: ["resume", str(interrupted_run(t, weights="truncated", previous=True))],
         ("epoch-3.weights.h5", "damaged", "--from last-good", "--from scratch"), klass=9),
    Case("checkpoint-weights-missing", "damaged", "checkpoint weights that were deleted",
         lambda t: ["resume", str(interrupted_run(t, weights="none"))], ("epoch-3.weights.h5", "missing"), klass=9),
    Case("checkpoint-best-garbage", "damaged", "early-stopping best weights that are not an .npz",
         lambda t: ["resume", str(interrupted_run(t, best="garbage"))],
         ("best-epoch-2.npz", "unreadable best weights", "--from scratch"), klass=9),
    Case("model-truncated", "damaged", "a truncated model.keras after the train stage",
         lambda t: ["resume", str(interrupted_run(t, stages=("train",)))],
         ("model.keras", "damaged model file", "--from scratch"), klass=9),
    Case("last-good-none", "damaged", "--from last-good with no earlier commit kept",
         lambda t: ["resume", str(interrupted_run(t, weights="garbage")), "--from", "last-good"],
         ("epoch-3.weights.h5", "no earlier whole checkpoint", "--from scratch"), klass=9),
    Case("last-good-needless", "damaged", "--from last-good on a whole checkpoint",
         lambda t: ["resume", str(interrupted_run(t)), "--from", "last-good"], ("checkpoint is whole",), klass=9),
    # 7: values checked where they enter
    Case("seed-too-large", "values", "--seed above 2**32 - 1",
         lambda t: ["run", "digits", "--seed", str(2**32), "--out", OUT],
         ("'train.seed'", "out of range", "4294967296", "<= 4294967295"), klass=7),
    Case("seed-negative", "values", "a negative seed",
         lambda t: ["run", "stock", "--seed", "-1", "--out", OUT], ("'train.seed'", "out of range", ">= 0"), klass=7),
    Case("set-recipe-task", "values", "--set recipe.task to another task",
         lambda t: ["run", "digits", "--set", "recipe.task=translation", "--out", OUT],
         ("'recipe.task'", "defines the recipe", "'translation'", "'image_classification'"), klass=7),
    Case("set-recipe-name", "values", "--set recipe.name",
         lambda t: ["run", "digits", "--set", "recipe.name=other", "--out", OUT],
         ("'recipe.name'", "defines the recipe"), klass=7),
    Case("config-recipe-task", "values", "a --config file naming another task",
         lambda t: ["run", "perceptron", "--config", str(recipe_file(t / "c.toml", '[recipe]\ntask = "embedding"\n')),
                    "--out", OUT], ("c.toml", "'recipe.task'", "defines the recipe"), klass=7),
    Case("empty-filter-list", "values", "an empty list of convolution filters",
         lambda t: ["run", "digits", "--set", "model.filters=[]", "--out", OUT],
         ("'model.filters'", "empty list", "at least 1 item"), klass=7),
    Case("filter-zero", "values", "a zero among the filters",
         lambda t: ["run", "digits", "--set", "model.filters=[8,0]", "--out", OUT],
         ("'model.filters'", "item 1 is out of range", "[8, 0]"), klass=7),
    Case("image-size-one-number", "values", "data.image_size with one number",
         lambda t: ["run", "digits", "--set", "data.image_size=[28]", "--out", OUT],
         ("'data.image_size'", "too few items", "exactly 2 items"), klass=7),
    Case("predict-seed-too-large", "values", "a sampling seed above 2**32 - 1",
         lambda t: ["predict", str(task_run(t, "language_model")), "--seed", str(2**40)],
         ("--seed", "4294967295"), klass=7),
    Case("epochs-zero", "values", "--epochs 0",
         lambda t: ["train", "perceptron", "--epochs", "0", "--out", OUT], ("'train.epochs'", ">= 1"), klass=7),
    Case("negative-learning-rate", "values", "a negative learning rate",
         lambda t: ["run", "perceptron", "--set", "train.learning_rate=-0.1", "--out", OUT],
         ("'train.learning_rate'", "out of range", "-0.1"), klass=7),
    Case("set-newline-key", "values", "--set with a line break in the key (one line still)",
         lambda t: ["run", "perceptron", "--set", "0\n0=1", "--out", OUT], ("unknown config key", "'0\\n0'"), klass=7),
    Case("unknown-option", "values", "an option the command does not have",
         lambda t: ["run", "perceptron", "--epoch", "3"], ("No such option", "--epoch", "nnkit run --help"), klass=7),
    # 8: interruptions before a run folder exists (the signal fires when the named function is called)
    Case("sigint-resolving", "signals", "Ctrl-C while the recipe is being read",
         lambda t: ["run", "digits", "--out", OUT], INTERRUPTED, klass=8, code=130,
         interrupt=("nnkit.pipeline", "load_recipe", SIGINT)),
    Case("sigterm-resolving", "signals", "SIGTERM while the recipe is being read",
         lambda t: ["run", "digits", "--out", OUT], INTERRUPTED, klass=8, code=130,
         interrupt=("nnkit.pipeline", "load_recipe", SIGTERM)),
    Case("sigint-loading-table", "signals", "Ctrl-C while a CSV table loads",
         lambda t: ["run", "perceptron", "--data", str(table(t / "t.csv")), "--out", OUT], INTERRUPTED,
         klass=8, code=130, interrupt=("nnkit.datasets.tables", "read_csv", SIGINT)),
    Case("sigterm-loading-table", "signals", "SIGTERM while a CSV table loads",
         lambda t: ["train", "perceptron", "--data", str(table(t / "t.csv")), "--out", OUT], INTERRUPTED,
         klass=8, code=130, interrupt=("nnkit.datasets.tables", "read_csv", SIGTERM)),
    Case("sigint-loading-prices", "signals", "Ctrl-C while dates are parsed",
         lambda t: ["run", "stock", "--data", str(prices(t / "p.csv")), "--out", OUT], INTERRUPTED,
         klass=8, code=130, interrupt=("nnkit.datasets.prices", "parse_dates", SIGINT)),
    Case("sigterm-loading-sequences", "signals", "SIGTERM while a sequence CSV loads",
         lambda t: ["run", "collision", "--data", str(sequences_csv(t / "s.csv")), "--out", OUT], INTERRUPTED,
         klass=8, code=130, interrupt=("nnkit.datasets.text", "check_separator", SIGTERM)),
    Case("sigint-opening-run", "signals", "Ctrl-C while evaluate opens a run",
         lambda t: ["evaluate", str(run_folder_of(t / "done"))], ("interrupted", "nnkit evaluate stopped",
                                                                  "none is half-written"), klass=8, code=130,
         interrupt=("nnkit.pipeline", "run_config", SIGINT)),
]
