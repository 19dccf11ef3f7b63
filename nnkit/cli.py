"""The `nnkit` command line: parse, resolve a recipe, call the pipeline.

TensorFlow is imported only inside the commands that train or run a model;
``nnkit --help``, ``list`` and ``show`` stay fast, and those that load it
load it quietly (:mod:`nnkit.startup`; ``--verbose`` shows TensorFlow's
start-up lines). A problem with the user's input (``NnkitError``, a usage
error, a file-system refusal on the user's path) exits 2 with one line on
standard error; Ctrl-C or SIGTERM at any stage exits 130 with one line
(saying how to resume once a run folder exists); anything else is a bug and
keeps its traceback (exit 1).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from nnkit.errors import NnkitError, fs_error
from nnkit.export_formats import FORMATS, list_formats

INTERRUPTED = "interrupted before a run folder was created; nothing was written"


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def one_line(text: str) -> str:
    """Click's multi-line usage messages as one line."""
    return " ".join(str(text).split())


class Group(click.Group):
    """One contract for every command: exit 2 and one line for the user's errors, 130 for interruptions."""

    def invoke(self, ctx):
        from nnkit import runs
        from nnkit.pipeline import Interrupted

        if "nnkit.train" in sys.modules:  # --unsafe holds for one command, never the next
            sys.modules["nnkit.train"].ALLOW_UNSAFE = False
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)  # SIGTERM means what Ctrl-C means
        from nnkit.startup import quiet_tensorflow

        quiet_tensorflow()
        try:
            return super().invoke(ctx)
        except NnkitError as exc:
            error = UserError(str(exc))
            error.exit_code = getattr(exc, "exit_code", 2)  # 75: a taken port, retried by the --local launcher
            raise error from None
        except click.UsageError as exc:
            where = f" (see: nnkit {exc.ctx.command_path.split(' ', 1)[-1]} --help)" if exc.ctx else ""
            raise UserError(one_line(exc.format_message()) + where) from None
        except Interrupted as exc:
            click.echo(str(exc), err=True)
            ctx.exit(130)
        except (KeyboardInterrupt, click.Abort):
            command = ctx.invoked_subcommand or ""
            click.echo(INTERRUPTED if command in ("", "run", "train") else
                       f"interrupted; nnkit {command} stopped (files are replaced whole: none is half-written)",
                       err=True)
            ctx.exit(130)
        except OSError as exc:
            problem = fs_error(exc) if exc.filename is not None and not _own_file(exc.filename) else None
            if problem is None:
                raise
            raise UserError(str(problem)) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            runs.release_locks()


def _own_file(name) -> bool:
    """A file of nnkit or of an installed package: a failure there is a bug or a broken install."""
    path = os.path.realpath(str(name))
    return path.startswith((os.path.realpath(sys.prefix), os.path.dirname(os.path.realpath(__file__))))


def recipe_options(fn):
    """The options every command that starts a run shares."""
    options = [
        click.option("--data", type=click.Path(), help="Your data (file or folder) instead of the bundled source."),
        click.option("--config", "config_file", type=click.Path(), help="A TOML file of overrides."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override one key (TOML value), e.g. --set train.epochs=5. Repeatable."),
        click.option("--out", type=click.Path(), help="Run folder to create (default runs/<recipe>/<id>)."),
        click.option("--seed", type=int, help="Seed (train.seed)."),
        click.option("--epochs", type=int, help="Maximum epochs (train.epochs)."),
        strategy_option(),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="With --local: number of worker processes (multi_worker)."),
        click.option("--local", is_flag=True,
                     help="Start a multi_worker cluster of --workers processes on localhost ports."),
        click.argument("recipe"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def unsafe_option(fn):
    """``--unsafe``: the one way to load a model whose file carries Python code (a Lambda layer)."""
    def apply(ctx, param, value):
        if value:
            from nnkit import train

            train.ALLOW_UNSAFE = True
            click.echo("warning: --unsafe: Python code stored in the model file may run; "
                       "use it only for files you trust", err=True)
        return value

    return click.option("--unsafe", is_flag=True, expose_value=False, callback=apply,
                        help="Load models with Lambda layers (runs code from the file; trusted files only).")(fn)


def strategy_option():
    """``--strategy``: choices and help from the strategy registry (nnkit.strategies)."""
    from nnkit.strategies import STRATEGIES

    described = "; ".join(f"{s.name}: {s.help}" for s in STRATEGIES.values())
    return click.option("--strategy", type=click.Choice(list(STRATEGIES)),
                        help=f"tf.distribute strategy (train.strategy). {described}.")


def task_options(kind: str) -> list:
    """The options the tasks declare (``predict_options`` / ``evaluate_options``), first declaration per name."""
    from nnkit.tasks import TASKS, get_task

    seen = {}
    for name in TASKS:
        for option in getattr(get_task(name), kind):
            seen.setdefault(option.name, option)
    return list(seen.values())


def _click_option(option) -> click.Option:
    kind = option.type
    bounded = option.min is not None or option.max is not None
    if option.type is int and bounded:
        kind = click.IntRange(min=None if option.min is None else int(option.min),
                              max=None if option.max is None else int(option.max))
    elif option.type is float and bounded:
        kind = click.FloatRange(min=option.min, max=option.max, min_open=option.min_open)
    return click.Option([*option.flags, option.name], type=kind, help=option.help)


class TaskOptionsCommand(click.Command):
    """A command whose task-specific options are built from the tasks' declarations.

    Read when the command parses or shows its help, not when ``nnkit`` starts,
    so ``nnkit --help`` imports no task (and no TensorFlow either way).
    """

    def __init__(self, *args, option_kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.option_kind = option_kind
        self._declared = False

    def get_params(self, ctx):
        if not self._declared:
            self._declared = True
            at = next((i for i, p in enumerate(self.params) if p.name == "unsafe"), len(self.params))
            self.params[at:at] = [_click_option(o) for o in task_options(self.option_kind)]
        return super().get_params(ctx)


def _check_predict_out(run, output) -> None:
    """--out may go anywhere the user likes except over the run's own files."""
    from nnkit.runs import check_replaceable

    target = Path(output).expanduser().resolve()
    inside = run.path.resolve()
    if target.is_dir():
        raise NnkitError(f"--out {output}: is a folder; expected a file name (e.g. predictions.csv)")
    check_replaceable(target)  # never over a FIFO, a device or a socket
    for parent in target.parents:  # fail now, not after the predictions are computed
        if parent.exists():
            if not parent.is_dir():
                raise NnkitError(f"--out {output}: {parent} is a file, not a folder; choose another place")
            break
    if target.is_relative_to(inside) and not target.is_relative_to(inside / "predictions"):
        raise NnkitError(f"--out {output}: inside the run folder {run.path}; predictions may go to "
                         f"{run.path / 'predictions'}/ or outside the run, never over the run's own files")


def _verbose(ctx, param, value):
    if value:
        from nnkit.startup import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # also for the worker processes of --local
    return value


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nnkit")
@click.option("--verbose", is_flag=True, expose_value=False, callback=_verbose, is_eager=True,
              help="Show TensorFlow's start-up lines (also: NNKIT_VERBOSE=1).")
def cli():
    """nnkit: classic neural-network recipes on Keras 3, one command each.

    \b
      nnkit list                      the bundled recipes
      nnkit run digits                train + evaluate + report + export
      nnkit run stock --data my.csv   the same recipe on your data
      nnkit predict RUN INPUTS...     predictions from a run folder
    """


@cli.command("list")
def list_recipes():
    """List the bundled recipes."""
    from nnkit.registry import bundled_names, load_recipe

    for name in bundled_names():
        recipe = load_recipe(name)
        click.echo(f"{name:<12} {recipe.task:<24} {recipe.description}")


@cli.command()
@click.argument("recipe")
@click.option("--data", type=click.Path())
@click.option("--config", "config_file", type=click.Path())
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--schema", is_flag=True, help="Also list every key with its type and allowed values.")
def show(recipe, data, config_file, overrides, schema):
    """Print a recipe's resolved config (TOML)."""
    from nnkit import config as config_mod
    from nnkit.pipeline import resolve, task_schema

    resolved = resolve(recipe, data, config_file, overrides)
    click.echo(config_mod.to_toml(resolved.cfg), nl=False)
    if schema:
        fields = task_schema(resolved.task)
        click.echo("\n# keys")
        for key in config_mod.dotted_keys(fields):
            section, name = key.split(".", 1)
            field = fields[section][name]
            click.echo(f"# {key}: {field.describe()}  {field.help}")


def _start(recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, stages,
           workers=None, local=False, command="run"):
    if local or workers:
        return _launch_local(command, recipe, data, config_file, overrides, out, seed, epochs, strategy,
                             quiet, workers, local)
    from nnkit.pipeline import resolve, start

    flags = {"train.seed": seed, "train.epochs": epochs, "train.strategy": strategy,
             "train.verbose": False if quiet else None}
    resolved = resolve(recipe, data, config_file, overrides, flags)
    run = start(resolved, stages=stages, out=out)
    click.echo(str(run.path))  # last line of stdout: scripts pick it up


def _launch_local(command, recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, workers, local):
    """``--strategy multi_worker --workers N --local``: N processes on localhost (nnkit.distribute)."""
    from nnkit.distribute import launch_local

    if not local or strategy not in (None, "multi_worker"):
        raise NnkitError("--workers and --local go together, with --strategy multi_worker "
                         "(e.g. nnkit run digits --strategy multi_worker --workers 2 --local)")
    args = []
    for flag, value in (("--data", data), ("--config", config_file), ("--seed", seed), ("--epochs", epochs)):
        if value is not None:
            args += [flag, str(Path(value).resolve()) if flag in ("--data", "--config") else str(value)]
    for item in overrides:
        args += ["--set", item]
    if quiet:
        args.append("--quiet")
    code, run_path = launch_local(command, recipe, args, workers or 2, out, echo=click.echo)
    if code:
        raise click.exceptions.Exit(code)
    click.echo(run_path)  # last line of stdout, as for a one-process run


@cli.command()
@recipe_options
def run(recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, workers, local):
    """Train, evaluate, report and export (SavedModel) a recipe."""
    from nnkit.pipeline import RUN_STAGES

    _start(recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, RUN_STAGES,
           workers, local, "run")


@cli.command()
@recipe_options
def train(recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, workers, local):
    """Train a recipe only (evaluate/report/export later)."""
    _start(recipe, data, config_file, overrides, out, seed, epochs, strategy, quiet, ("train",),
           workers, local, "train")


@cli.command()
@click.argument("recipe")
@click.option("--data", type=click.Path(), help="Your data (file or folder) instead of the bundled source.")
@click.option("--config", "config_file", type=click.Path(), help="A TOML file of overrides.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one key; tune.<key>=... changes the space, e.g. --set 'tune.model.units=[32,64]'.")
@click.option("--trials", type=click.IntRange(min=1), default=10, show_default=True, help="Trials at most.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Stop starting trials once this much time is spent (earlier sessions count).")
@click.option("--algorithm", type=click.Choice(["random", "bayesian", "hyperband"]), default="bayesian",
              show_default=True, help="KerasTuner oracle.")
@click.option("--out", type=click.Path(), help="Run folder (default runs/<recipe>/<id>); rerun to resume.")
@click.option("--workers", type=click.IntRange(min=1), help="Share the search among N local worker processes.")
@click.option("--quiet", is_flag=True, help="No progress bar in the final run.")
def tune(recipe, data, config_file, overrides, trials, budget, algorithm, out, workers, quiet):
    """Search hyperparameters (KerasTuner) over the recipe's [tune] space, then run the best.

    Trials are scored on the validation part; the best config is trained as a
    normal run folder with tune/ inside (trials.csv, search.png, best.toml,
    report.md). Several processes can share a search through KerasTuner's
    KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT (see docs/tune.md).
    """
    from nnkit.pipeline import resolve
    from nnkit.tuning import flow

    resolved = resolve(recipe, data, config_file, overrides, {"train.verbose": False if quiet else None})
    if workers:
        from nnkit.tuning.distributed import launch_local

        flow.check(resolved, algorithm)  # a bad space fails here, not in N+1 processes
        if out is None:
            raise NnkitError("--workers needs --out DIR: the folder the chief and its workers share")
        from pathlib import Path

        argv = [recipe, "--trials", str(trials), "--algorithm", algorithm, "--out", str(Path(out).resolve())]
        for flag, value in (("--data", data), ("--config", config_file), ("--budget", budget)):
            if value is not None:
                argv += [flag, str(Path(value).resolve()) if flag != "--budget" else str(value)]
        for item in overrides:
            argv += ["--set", item]
        argv += ["--quiet"] if quiet else []
        code = launch_local(argv, workers, Path(out) / "tune", click.echo)
        if code:
            raise click.exceptions.Exit(code)
        click.echo(str(out))
        return
    run = flow.tune(resolved, algorithm=algorithm, trials=trials, budget_minutes=budget, out=out, echo=click.echo)
    if run is not None:
        click.echo(str(run.path))  # last line of stdout: scripts pick it up


@cli.command(cls=TaskOptionsCommand, option_kind="evaluate_options")
@click.argument("run_dir", metavar="RUN")
@click.option("--data", type=click.Path(), help="The run's data at its new place; other data is evaluated "
              "into metrics-<fingerprint>.json beside metrics.json, never over it.")
@unsafe_option
def evaluate(run_dir, data, **options):
    """Evaluate a run's model (and baselines) on its test part; rewrite metrics and report."""
    from nnkit import pipeline
    from nnkit.runs import lock_run, open_run

    run = open_run(run_dir)
    lock_run(run)
    resolved = pipeline.run_config(run)
    task = resolved.task
    task.check_options(options, task.evaluate_options, "evaluate")
    chosen = {k: v for k, v in options.items() if v is not None}
    if chosen:  # a task's own evaluation (forecasting: --backtest K), declared in evaluate_options
        from nnkit.predictions import context

        ctx = context(run, click.echo)
        for name, value in chosen.items():
            getattr(task, name)(ctx, value)
        return
    written = pipeline.evaluate_run(run, data, warn=lambda line: click.echo(line, err=True))
    click.echo(written.read_text())


@cli.command(cls=TaskOptionsCommand, option_kind="predict_options")
@click.argument("run_dir", metavar="RUN")
@click.argument("inputs", nargs=-1)
@click.option("--file", "input_file", type=click.Path(), help="Read inputs from a file, one per line.")
@click.option("--out", "output", type=click.Path(), help="Write predictions here (CSV, JSON, MIDI...).")
@unsafe_option
def predict(run_dir, inputs, input_file, output, **options):
    """Predict with a run's model on raw inputs (files, strings, ids)."""
    from nnkit.predictions import context
    from nnkit.runs import open_run

    run = open_run(run_dir)
    ctx = context(run, click.echo)
    task = ctx.task
    task.check_options({k: v for k, v in options.items()})
    if output:
        _check_predict_out(run, output)
    items = list(inputs)
    if input_file:
        from nnkit.datasets.text import read_lines

        items += read_lines(input_file)
    options["out"] = output
    task.predict(ctx, items, options)


@cli.command("export")
@click.argument("run_dir", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(list_formats()), default="saved_model", show_default=True,
              help="; ".join(f"{name}: {FORMATS[name].help}" for name in list_formats()) + ".")
@unsafe_option
def export_cmd(run_dir, fmt):
    """Export a run's model; the artifact is reloaded and checked before it is kept (formats: nnkit.export_formats)."""
    from nnkit import pipeline
    from nnkit.export import export
    from nnkit.runs import lock_run, open_run

    run = open_run(run_dir)
    lock_run(run)
    task = pipeline.run_config(run).task
    click.echo(str(export(run, task, fmt)))


@cli.command()
@click.argument("run_dir", metavar="RUN")
def report(run_dir):
    """Rewrite report.md from the run's metrics.json and plots."""
    from nnkit import pipeline
    from nnkit.runs import lock_run, open_run

    run = open_run(run_dir)
    lock_run(run)
    click.echo(str(pipeline.report(run)))


@cli.command()
@click.argument("run_dir", metavar="RUN")
@click.option("--data", type=click.Path(), help="The run's data at its new place (the same content).")
@click.option("--from", "restart", type=click.Choice(["last-good", "scratch"]),
              help="Past a damaged checkpoint: the checkpoint before it, or training again from the first epoch.")
@unsafe_option
def resume(run_dir, data, restart):
    """Continue an interrupted run where it stopped."""
    from nnkit.pipeline import resume as resume_run

    run = resume_run(run_dir, data, restart)
    click.echo(str(run.path))


@cli.command()
@click.argument("root", default="runs", type=click.Path())
def runs(root):
    """List run folders under ROOT with their status."""
    from pathlib import Path

    from nnkit.runs import read_json

    found = sorted(Path(root).glob("*/*/meta.json")) + sorted(Path(root).glob("meta.json"))
    if not found:
        click.echo(f"no runs under {root}")
    for meta_file in found:
        try:
            meta = read_json(meta_file)
        except NnkitError:
            continue
        stages = ",".join(meta.get("stages", [])) or "-"
        status = meta.get("status", "?")
        if status == "running" and _process_gone(meta, meta_file.parent):
            status = "killed"  # its process died without a word (SIGKILL, power): nnkit resume continues it
        click.echo(f"{status:<12} {meta.get('recipe', '?'):<12} {stages:<28} {meta_file.parent}")


def _process_gone(meta: dict, folder) -> bool:
    """True when the run's process is gone: nobody holds the run folder's lock (a dead process holds
    none, whatever became of its pid); for a folder without a lock file, its pid no longer exists."""
    import platform

    from nnkit.runs import lock_is_held

    held = lock_is_held(folder)
    if held is not None:
        return not held
    pid = meta.get("pid")
    if not isinstance(pid, int) or meta.get("host") != platform.node():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def main():
    try:
        cli(prog_name="nnkit")
    except KeyboardInterrupt:  # during start-up, before a command began: still one line and 130
        click.echo(INTERRUPTED, err=True)
        sys.exit(130)


if __name__ == "__main__":
    sys.exit(main())
