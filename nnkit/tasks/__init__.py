"""Tasks: one module per kind of task (data, metrics, baselines, serving, prediction).

The table below is the registry: explicit names mapped to import paths,
imported only when a task is used (no side-effect registration). Task
modules keep TensorFlow imports inside their methods, so ``nnkit show``
and ``nnkit list`` can read a task's schema without loading TensorFlow.
"""

from __future__ import annotations

from nnkit.entries import import_entry

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
    return import_entry(TASKS, name, "task")()
