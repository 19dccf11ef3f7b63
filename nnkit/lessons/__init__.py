"""Lessons: the notes' claims run as experiments (``nnkit lesson NAME``).

The table below is the registry: each name maps to the module attribute
holding its :class:`~nnkit.lessons.base.Lesson`. Lesson modules import
TensorFlow only when an experiment runs, so listing them is cheap.
Lessons are pipeline-level machinery (they train through ``nnkit.train``):
tasks, builders, datasets and layers never import this package.
"""

from __future__ import annotations

from nnkit.entries import import_entry

LESSONS = {
    "perceptron": "nnkit.lessons.neurons:PERCEPTRON",
    "approximation": "nnkit.lessons.neurons:APPROXIMATION",
    "vanishing-gradients": "nnkit.lessons.activations:VANISHING_GRADIENTS",
    "dying-relu": "nnkit.lessons.activations:DYING_RELU",
    "learning-rate": "nnkit.lessons.optimization:LEARNING_RATE",
    "cnn-vs-mlp": "nnkit.lessons.images:CNN_VS_MLP",
    "rnn-memory": "nnkit.lessons.memory:RNN_MEMORY",
    "gru-vs-lstm": "nnkit.lessons.memory:GRU_VS_LSTM",
    "rnn-relu": "nnkit.lessons.recurrent:RNN_RELU",
    "norm-in-rnn": "nnkit.lessons.recurrent:NORM_IN_RNN",
    "bidirectional": "nnkit.lessons.recurrent:BIDIRECTIONAL",
    "attention": "nnkit.lessons.attention:ATTENTION",
    "embedding": "nnkit.lessons.embedding:EMBEDDING",
}


def lesson_names() -> list:
    return list(LESSONS)


def get_lesson(name: str):
    return import_entry(LESSONS, name, "lesson")
