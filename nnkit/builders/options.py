"""From a config's ``model`` section to a builder call, for every builder the same way.

Each builder declares its options once beside itself (``RNN_OPTIONS``, ``CNN_OPTIONS`` ...:
name, type, range, default, help as :class:`nnkit.config.Field`). A task's schema
reuses them (:func:`nnkit.config.declared`) and its ``build_model`` calls
:func:`build_from_config`, so adding a builder option is one edit: the keyword
and its Field, in the builder's file.
"""

from __future__ import annotations

from typing import Callable, Mapping


def build_from_config(builder: Callable, options: Mapping, model_cfg: Mapping, *sizes, **fixed):
    """``builder(*sizes, **declared options found in model_cfg, **fixed)``.

    ``sizes`` come from the data (input shape, classes, vocabulary); ``fixed``
    holds what the task decides itself (head, name, output activation...). The
    config's Fields have already checked every value; the builder's own
    ValueErrors remain for people calling it from Python.
    """
    kwargs = {key: model_cfg[key] for key in options if key in model_cfg and key not in fixed}
    return builder(*sizes, **kwargs, **fixed)
