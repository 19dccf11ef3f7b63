"""The task contract: what every task provides to the generic pipeline.

A task knows data, metrics, baselines and serving; it does not know the CLI.
The pipeline (``nnkit.pipeline``) calls, in order::

    prepared = task.load(cfg)                      # read, split, fit preprocessing on train
    model    = task.build_model(cfg, prepared)     # calls a builder (inside the strategy scope)
    compile  = task.compile_kwargs(cfg, prepared)  # loss, metrics
    train_ds, val_ds = task.datasets(cfg, prepared, global_batch_size)
    ... nnkit.train.fit(...)
    evaluation = task.evaluate(model, prepared, cfg)
    plots      = task.plots(model, prepared, evaluation, run)
    module, examples = task.serving(model, state, cfg)   # exported as a SavedModel
    task.predict(ctx, inputs, options)            # reads only the run folder (ctx: RunContext)

``prepared.state`` is JSON-able and saved as ``state.json``: everything that
serving and prediction need besides the weights (class names, scalers,
window sizes). ``serving`` gets the state, never the training data, so
``nnkit export RUN`` works from the run folder alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from nnkit.errors import NnkitError


@dataclass
class Prepared:
    """Data a task loaded and split. Tasks put arrays in ``train``/``val``/``test``."""

    train: Any
    val: Any
    test: Any
    state: dict = field(default_factory=dict)  # JSON-able, saved as state.json
    summary: dict = field(default_factory=dict)  # for the report's data section
    fingerprint: str = ""
    # what earlier nnkit versions computed for the same data: their runs still evaluate and resume
    earlier_fingerprints: tuple = ()
    extra: dict = field(default_factory=dict)  # task-private leftovers (raw frames, ...)


@dataclass
class Evaluation:
    """The evaluation of one model and its baselines on the same test part."""

    primary: str
    higher_is_better: bool
    model: dict
    baselines: dict = field(default_factory=dict)  # name -> {metric: value}
    details: dict = field(default_factory=dict)  # per-class tables, confusion matrix, ...
    verdict: str = ""  # one plain sentence for the report
    tables: list = field(default_factory=list)  # (title, markdown) pairs for the report
    split: str = "test"
    artifacts: dict = field(default_factory=dict)  # in-memory leftovers for plots (not saved)


@dataclass(frozen=True)
class Option:
    """A task-specific command-line option; ``nnkit predict`` / ``evaluate`` build their flags from these.

    ``name`` is the Python name (``top_k`` is ``--top-k``); ``type`` is int,
    float or str; ``min`` (exclusive when ``min_open``) bounds numbers.
    """

    name: str
    type: type
    help: str
    min: float | None = None
    min_open: bool = False
    flag: str = ""  # a flag other than --name (e.g. "-k")
    max: float | None = None

    @property
    def flags(self) -> list[str]:
        return [self.flag or "--" + self.name.replace("_", "-")]


@dataclass
class RunContext:
    """What a task gets from the run it works for, handed in by the caller (``nnkit.predictions.context``).

    Tasks sit below the machinery that trains, exports and loads; they never
    import it. Whatever a task needs from that machinery comes in here, as data
    or as functions, so imports keep pointing down.
    """

    run: Any  # the run folder (nnkit.runs.Run): state(), config(), paths
    cfg: dict  # the run's resolved config
    task: Any = None  # the run's task
    echo: Callable[[str], None] = print  # one line to standard output
    endpoint: Callable | None = None  # endpoint(name) -> fn(**numpy inputs) -> {output: numpy}, loaded once
    load_model: Callable | None = None  # load_model() -> the run's Keras model (model.keras)
    fit: Callable | None = None  # fit(cfg, prepared) -> (model, epochs): nnkit.train.fit in a scratch folder
    report: Callable | None = None  # report() -> rewrites report.md from metrics.json

    def call_endpoint(self, name: str, **inputs) -> dict:
        """Call one endpoint of the run's exported SavedModel on numpy inputs."""
        return self.endpoint(name)(**inputs)


class Task:
    """Base class. Subclasses set the class attributes and implement the hooks."""

    name: str = ""
    schema: Mapping = {}  # {"data": {...Field}, "model": {...}, "eval": {...}}
    train_defaults: Mapping = {}  # defaults for shared train keys, e.g. {"epochs": 30}
    # -- optional parts of the contract (a task defines them only when it has them) -----
    # predict_options: the `nnkit predict` options this task takes beyond its inputs; the CLI
    #   offers the union over all tasks and rejects, per run, the ones its task does not take.
    # evaluate_options: `nnkit evaluate` options; each names a method ``name(ctx, value)`` the
    #   CLI calls instead of the plain evaluation (forecasting: ``backtest(ctx, k)``).
    # check_config(cfg): cross-key checks the Fields cannot express, before anything is written
    #   (a ConfigError naming the keys); called by the task itself in ``load`` / ``build_model``.
    predict_options: tuple = ()
    evaluate_options: tuple = ()

    # -- data and model ---------------------------------------------------------------
    def load(self, cfg: dict) -> Prepared:
        raise NotImplementedError

    def build_model(self, cfg: dict, prepared: Prepared):
        raise NotImplementedError

    def compile_kwargs(self, cfg: dict, prepared: Prepared) -> dict:
        raise NotImplementedError

    def datasets(self, cfg: dict, prepared: Prepared, batch_size: int):
        """(train, validation) tf.data datasets, batched with the global batch size."""
        raise NotImplementedError

    def custom_objects(self) -> dict:
        """Custom layers the saved model needs (all must be registered serializables)."""
        return {}

    def finish_model(self, model, prepared: Prepared, cfg: dict) -> dict:
        """After training, before the model is saved: a last change of its weights.

        For example a post-processing of learned vectors chosen on the
        validation part (never the test part). Returns what to record in the
        run's ``meta.json`` and report (``{}``: nothing was done).
        """
        return {}

    # -- evaluation --------------------------------------------------------------------
    def validation_view(self, prepared: Prepared) -> Prepared:
        """The data a hyperparameter search sees: the validation part where the test part was.

        ``evaluate`` on this view scores a model on validation data only; the
        real test part is not in it, so a search cannot read it.
        """
        import dataclasses

        if prepared.val is None:
            raise NnkitError(f"task '{self.name}' keeps no validation part, so it cannot be tuned")
        return dataclasses.replace(prepared, test=prepared.val)

    def evaluate(self, model, prepared: Prepared, cfg: dict) -> Evaluation:
        raise NotImplementedError

    def plots(self, model, prepared: Prepared, evaluation: Evaluation, run) -> list:
        """Write plots under ``run.plot_dir``; return their paths."""
        return []

    # -- serving and prediction ----------------------------------------------------------
    def serving(self, model, state: dict, cfg: dict):
        """Return ``(module, examples)`` for the SavedModel.

        ``module`` is a ``tf.Module`` holding the model (and any lookup tables)
        whose endpoints are ``tf.function`` attributes with an ``input_signature``
        taking *raw* inputs (uint8 images, strings, prices) and returning a dict
        of readable outputs. ``examples`` maps each endpoint's attribute name to
        a dict of example inputs (numpy arrays, keyed by argument name); its
        keys say which attributes are endpoints, the first is ``serving_default``.
        The exporter calls every endpoint on its examples in memory, saves,
        reloads in a fresh process and compares.
        """
        raise NotImplementedError

    def predict(self, ctx: RunContext, inputs: list[str], options: dict) -> None:
        """Predict from raw inputs using only the run folder (``ctx.run``); ``ctx.echo`` prints a line."""
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------
    def check_options(self, options: Mapping, declared: tuple | None = None, command: str = "predict") -> None:
        """Refuse options given on the command line that this task does not declare."""
        declared = self.predict_options if declared is None else declared
        names = {o.name for o in declared}
        extra = sorted(k for k, v in options.items() if v is not None and v is not False and k not in names)
        if extra:
            allowed = ", ".join("--" + o.replace("_", "-") for o in sorted(names)) or "none"
            raise NnkitError(f"{command} option(s) {', '.join('--' + e.replace('_', '-') for e in extra)} "
                             f"do not apply to task '{self.name}' (options it takes: {allowed})")
