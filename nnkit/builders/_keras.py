"""``keras``, imported on first use: builders' option declarations stay readable without TensorFlow.

``nnkit show`` reads a task's schema, and task schemas reuse the options each
builder declares beside itself (``RNN_OPTIONS`` ...). So a builder module must
import without loading Keras (and TensorFlow); Keras loads when a builder runs.
"""

import importlib


class _LazyKeras:
    def __getattr__(self, name):
        if name.startswith("__"):  # probes (autograph, inspect, copy) see a plain object, not Keras
            raise AttributeError(name)
        return getattr(importlib.import_module("keras"), name)


keras = _LazyKeras()
