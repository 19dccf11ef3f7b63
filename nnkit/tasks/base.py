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
    task.predict(run, inputs, options)            # reads only the run folder

``prepared.state`` is JSON-able and saved as ``state.json``: everything that
serving and prediction need besides the weights (class names, scalers,
window sizes). ``serving`` gets the state, never the training data, so
``nnkit export RUN`` works from the run folder alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

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


class Task:
    """Base class. Subclasses set the class attributes and implement the hooks."""

    name: str = ""
    schema: Mapping = {}  # {"data": {...Field}, "model": {...}, "eval": {...}}
    train_defaults: Mapping = {}  # defaults for shared train keys, e.g. {"epochs": 30}
    # predict options this task accepts (beyond the inputs); the CLI rejects others
    predict_options: frozenset = frozenset()

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

    def predict(self, run, inputs: list[str], options: dict, echo) -> None:
        """Predict from raw inputs using only the run folder; ``echo`` prints a line."""
        raise NotImplementedError

    # -- helpers for subclasses ----------------------------------------------------------
    def check_options(self, options: Mapping) -> None:
        extra = sorted(k for k, v in options.items() if v is not None and k not in self.predict_options)
        if extra:
            allowed = ", ".join("--" + o.replace("_", "-") for o in sorted(self.predict_options)) or "none"
            raise NnkitError(f"predict option(s) {', '.join('--' + e.replace('_', '-') for e in extra)} "
                             f"do not apply to task '{self.name}' (options it takes: {allowed})")
