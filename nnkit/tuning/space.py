"""The search space of `nnkit tune`, declared as data in a recipe's ``[tune]`` table.

::

    [tune]
    model.units = [32, 64, 128]                 # a choice among values
    model.filters = [[16, 32], [32, 64]]        # values may be lists, for list keys
    train.learning_rate = {log = [1e-4, 1e-2]}  # log-uniform between two bounds
    model.dropout = {range = [0.0, 0.5], step = 0.1}   # uniform (step optional)

Every key names a key of the recipe (``data.``, ``model.``, ``train.``,
``eval.``), and every value (each choice, both bounds) must be a value that
key accepts: the same check as ``--set``. ``--set tune.model.units=[64,128]``
replaces one entry; ``--set tune.model.units=[]`` removes it from the space.
This module never imports TensorFlow or KerasTuner at import time (``nnkit
show`` uses it); :func:`to_hyperparameters` imports KerasTuner when called.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass
from typing import Any, Mapping

from nnkit import config as config_mod
from nnkit.errors import ConfigError

TUNABLE_SECTIONS = ("data", "model", "train", "eval")
# keys that are not hyperparameters: where data comes from, how a run is executed, its seed
NOT_TUNABLE = {
    "data.path": "it names the data, not a setting",
    "train.seed": "searching seeds fits noise; set it with --set train.seed=N",
    "train.strategy": "it changes where a run executes, not what it learns",
    "train.verbose": "it changes the output only",
    "train.deterministic": "it changes how ops run, not what is learned",
    "train.checkpoint_seconds": "it changes checkpointing only",
    "train.steps_per_execution": "it changes speed only",
    "train.jit_compile": "it changes speed only",
    "train.mixed_precision": "it changes numerics for speed, not a model choice",
}
FORMS = "a list of values, {log = [low, high]} or {range = [low, high]} (optionally with step = S)"


def tune_section(schema: Mapping) -> dict:
    """The ``tune`` part of a config schema: one table per tunable section (checked here, not there)."""
    return {section: config_mod.Field({}, f"search space over {section}.* keys (nnkit tune)", type=dict)
            for section in TUNABLE_SECTIONS if section in schema}


@dataclass(frozen=True)
class Dimension:
    """One searched key: a choice among values, or a (log-)uniform range."""

    key: str  # "model.units"
    kind: str  # "choice" | "range" | "log"
    values: tuple = ()  # choices
    low: float | None = None
    high: float | None = None
    step: float | None = None
    integer: bool = False

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(json.dumps(v) for v in self.values)
        step = f", step {self.step:g}" if self.step else ""
        return f"{'log-uniform' if self.kind == 'log' else 'uniform'} in [{self.low:g}, {self.high:g}]{step}"


# -- reading and checking the [tune] tables ----------------------------------------------------

def _flatten(table: Mapping, source: str) -> dict[str, Any]:
    """``{"model": {"units": [..]}}`` -> ``{"model.units": [..]}``; a spec table ends the descent."""
    out = {}
    for section, keys in table.items():
        if not isinstance(keys, Mapping):
            raise ConfigError(f"{source}: tune entry '{section}': expected keys such as "
                              f"{section}.units = [32, 64] under [tune], received {keys!r}")
        for key, spec in keys.items():
            out[f"{section}.{key}"] = spec
    return out


def _field(key: str, schema: Mapping, source: str) -> config_mod.Field:
    section, _, name = key.partition(".")
    spec = schema.get(section, {}).get(name) if section in TUNABLE_SECTIONS else None
    if not isinstance(spec, config_mod.Field):
        keys = [k for k in config_mod.dotted_keys({s: schema[s] for s in TUNABLE_SECTIONS if s in schema})
                if k not in NOT_TUNABLE]
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{source}: tune key '{key}': not a key of this recipe{hint}")
    if key in NOT_TUNABLE:
        raise ConfigError(f"{source}: tune key '{key}': not searchable ({NOT_TUNABLE[key]})")
    return spec


def _checked(key: str, value: Any, field: config_mod.Field, source: str, what: str) -> Any:
    try:
        return config_mod._check_value(key, copy.deepcopy(value), field, source)
    except ConfigError as exc:
        detail = str(exc).split(f"config key '{key}': ", 1)[-1]
        raise ConfigError(f"{source}: tune key '{key}': {what} {detail}") from None


def parse_entry(key: str, spec: Any, field: config_mod.Field, source: str) -> Dimension | None:
    """One ``[tune]`` entry -> a Dimension (None: an empty list, which removes the key)."""
    if isinstance(spec, list):
        if not spec:
            return None
        values = [_checked(key, v, field, source, f"choice {i + 1}:") for i, v in enumerate(spec)]
        unique = []
        for value in values:
            if value not in unique:
                unique.append(value)
        return Dimension(key, "choice", tuple(unique))
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{source}: tune key '{key}': received {spec!r}; expected {FORMS}")
    kinds = [k for k in ("log", "range") if k in spec]
    extra = sorted(set(spec) - {"log", "range", "step"})
    if len(kinds) != 1 or extra:
        raise ConfigError(f"{source}: tune key '{key}': received {dict(spec)!r}; expected {FORMS}")
    kind, bounds = kinds[0], spec[kinds[0]]
    expected = field.expected_type()
    numeric = expected in (int, float) and not isinstance(field.default, bool)
    if not numeric:
        raise ConfigError(f"{source}: tune key '{key}': a {kind} needs a number key; this one takes "
                          f"{field.describe()}, so list its values instead")
    if not (isinstance(bounds, list) and len(bounds) == 2):
        raise ConfigError(f"{source}: tune key '{key}': {kind} = {bounds!r}; expected two bounds [low, high]")
    low, high = (_checked(key, b, field, source, f"{name} bound") for b, name in zip(bounds, ("low", "high")))
    if not low < high:
        raise ConfigError(f"{source}: tune key '{key}': {kind} = {bounds!r}; expected low < high")
    if kind == "log" and low <= 0:
        raise ConfigError(f"{source}: tune key '{key}': log = {bounds!r}; a log range needs low > 0")
    step = spec.get("step")
    if step is not None:
        if kind == "log":
            raise ConfigError(f"{source}: tune key '{key}': step applies to range, not log")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 < step <= high - low:
            raise ConfigError(f"{source}: tune key '{key}': step = {step!r}; expected a number in "
                              f"(0, {high - low:g}]")
        if expected is int and step != int(step):
            raise ConfigError(f"{source}: tune key '{key}': step = {step!r}; this key takes integers")
    return Dimension(key, kind, low=low, high=high, step=step, integer=expected is int)


def merge_layers(schema: Mapping, layers: list[tuple[Mapping | None, str]]) -> dict:
    """Check each layer's ``tune`` table and merge them entry by entry (a later entry replaces)."""
    merged: dict[str, Any] = {}
    for layer, source in layers:
        table = (layer or {}).get("tune") or {}
        for key, spec in _flatten(table, source).items():
            parse_entry(key, spec, _field(key, schema, source), source)
            if isinstance(spec, list) and not spec:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(spec)
    out: dict = {}
    for key, spec in merged.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = spec
    return out


def dimensions(cfg: Mapping, schema: Mapping, source: str = "tune") -> list[Dimension]:
    """The space of a resolved config (its ``tune`` table), recipe values included.

    The search starts from the recipe: a choice that lacks the recipe's own
    value gains it and a range widens to hold it, so the first trial can be
    the default recipe and the search never reports a default it could not try.
    """
    dims = []
    for key, spec in _flatten(cfg.get("tune") or {}, source).items():
        dim = parse_entry(key, spec, _field(key, schema, source), source)
        if dim is None:
            continue
        default = get(cfg, key)
        if dim.kind == "choice" and default not in dim.values:
            dim = Dimension(key, "choice", dim.values + (default,))
        elif dim.kind != "choice" and not dim.low <= default <= dim.high:
            dim = Dimension(key, dim.kind, low=min(dim.low, default), high=max(dim.high, default),
                            step=None, integer=dim.integer)
        dims.append(dim)
    return dims


# -- config values <-> KerasTuner hyperparameters ------------------------------------------------

def get(cfg: Mapping, key: str) -> Any:
    section, name = key.split(".", 1)
    return cfg[section][name]


def apply(cfg: Mapping, values: Mapping[str, Any]) -> dict:
    """A copy of ``cfg`` with the searched keys set (``values`` keyed 'section.name')."""
    out = copy.deepcopy(dict(cfg))
    for key, value in values.items():
        section, name = key.split(".", 1)
        out[section][name] = copy.deepcopy(value)
    return out


def _encode(value):
    """KerasTuner's Choice holds int/float/str/bool of one type; lists travel as JSON text."""
    return json.dumps(value) if isinstance(value, list) else value


def _choice(dim: Dimension, default) -> tuple[list, Any]:
    """A choice's values and default in KerasTuner's encoding. The recipe's own value joins the
    choices when it is not among them (trial 1 is the recipe as it stands); values of mixed kinds
    (e.g. ``[2, 3, 5]`` plus ``"auto"``) all travel as JSON text, since a Choice holds one type."""
    raw = list(dim.values) + ([] if default in dim.values else [default])
    kinds = {"number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
             for v in raw}
    if len(kinds) > 1:
        return [json.dumps(v) for v in raw], json.dumps(default)
    values = [_encode(v) for v in raw]
    if any(isinstance(v, float) for v in values) and kinds == {"number"}:
        return [float(v) for v in values], float(default)
    return values, _encode(default)


def _decode_choice(dim: Dimension, value):
    for v in dim.values:
        if _encode(v) == value or v == value:
            return v
    if isinstance(value, str):  # the recipe's own value, or a JSON-encoded one of mixed kinds
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def to_hyperparameters(dims: list[Dimension], cfg: Mapping):
    """A ``keras_tuner.HyperParameters`` declaring the space, the recipe's values as defaults."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for dim in dims:
        default = get(cfg, dim.key)
        if dim.kind == "choice":
            values, encoded_default = _choice(dim, default)
            hp.Choice(dim.key, values, ordered=None, default=encoded_default)
        elif dim.integer:
            hp.Int(dim.key, int(dim.low), int(dim.high), step=int(dim.step) if dim.step else None,
                   sampling="log" if dim.kind == "log" else "linear", default=int(default))
        else:
            hp.Float(dim.key, float(dim.low), float(dim.high), step=dim.step,
                     sampling="log" if dim.kind == "log" else "linear", default=float(default))
    return hp


def from_hyperparameters(dims: list[Dimension], values: Mapping[str, Any]) -> dict:
    """KerasTuner's values (``tuner/*`` bookkeeping dropped) -> config values keyed 'section.name'."""
    out = {}
    for dim in dims:
        if dim.key not in values:
            continue
        value = values[dim.key]
        if dim.kind == "choice":
            value = _decode_choice(dim, value)
        elif dim.integer:
            value = int(value)
        else:
            value = float(value)
        out[dim.key] = value
    return out


def default_values(dims: list[Dimension], cfg: Mapping) -> dict:
    """The recipe's own values, in KerasTuner's encoding (the first trial)."""
    return {dim.key: _choice(dim, get(cfg, dim.key))[1] if dim.kind == "choice" else get(cfg, dim.key)
            for dim in dims}
