"""Tasks: one module per kind of task (data, metrics, baselines, serving, prediction).

The table below is the registry: explicit names mapped to import paths,
imported only when a task is used (no side-effect registration). Task
modules keep TensorFlow imports inside their methods, so ``nnkit show``
and ``nnkit list`` can read a task's schema without loading TensorFlow.
"""

from __future__ import annotations

import importlib

from nnkit.errors import NnkitError

TASKS = {
    "binary_classification": "nnkit.tasks.binary_classification:BinaryClassificationTask",
    "image_classification": "nnkit.tasks.image_classification:ImageClassificationTask",
    "forecasting": "nnkit.tasks.forecasting.task:ForecastingTask",
    "sequence_classification": "nnkit.tasks.sequence.classification:SequenceClassificationTask",
    "sequence_labeling": "nnkit.tasks.sequence.labeling:SequenceLabelingTask",
    "language_model": "nnkit.tasks.language_model.task:LanguageModelTask",
    "translation": "nnkit.tasks.translation.task:TranslationTask",
    "embedding": "nnkit.tasks.embedding.task:EmbeddingTask",
}


def get_task(name: str):
    """Instantiate the task called ``name``."""
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise NnkitError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}{hint}")
    module_name, class_name = TASKS[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)()
