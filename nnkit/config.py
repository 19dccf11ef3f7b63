"""Load, merge and validate recipe configs.

A config is a nested dict of sections (``recipe``, ``data``, ``model``,
``train``, ``eval``). Its schema is a nested dict of :class:`Field` objects:
the task declares ``data``/``model``/``eval``, this module declares the
``recipe`` and ``train`` sections every task shares.

The priority order is written here once (:func:`resolve`)::

    --set key=value  >  --config FILE  >  recipe file  >  task defaults

Every layer is validated on its own before merging, so an error names where
the bad key came from. This module never imports TensorFlow.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from nnkit.errors import ConfigError
from nnkit.strategies import STRATEGIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Field:
    """One config key: its default, accepted type and allowed values."""

    default: Any
    help: str = ""
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    type: type | tuple | None = None  # inferred from the default when None
    item_type: type | tuple | None = None  # for lists; inferred from the default's items
    min_items: int | None = None  # lists: fewest items (None: 1 for a list of sizes, see min_length)
    max_items: int | None = None  # lists: most items
    recipe_only: bool = False  # defines the recipe: only the recipe file sets it, never --set/--config
    path: bool = False  # a file: made absolute when a run is made, so the run finds it from any folder

    def min_length(self) -> int:
        """Fewest items of a list: a list of sizes with a lower bound (filters, units) is never empty."""
        if self.min_items is not None:
            return self.min_items
        default = self.default
        return 1 if isinstance(default, list) and default and self.min is not None else 0

    def expected_type(self):
        if self.type is not None:
            return self.type
        return type(self.default)

    def describe(self) -> str:
        """What is allowed, in words, for error messages and `nnkit show --schema`."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = _type_words(self.expected_type(), self.item_type or _item_type(self.default))
        if isinstance(self.default, list):
            fewest, most = self.min_length(), self.max_items
            if fewest and fewest == most:
                kind += f" of exactly {fewest} item{'s' if fewest > 1 else ''}"
            elif fewest:
                kind += f" of at least {fewest} item{'s' if fewest > 1 else ''}"
            elif most is not None:
                kind += f" of at most {most} items"
        bounds = []
        if self.min is not None:
            bounds.append(f">= {self.min}")
        if self.max is not None:
            bounds.append(f"<= {self.max}")
        return kind + (" " + " and ".join(bounds) if bounds else "")


def _item_type(default):
    if isinstance(default, list) and default:
        return type(default[0])
    return None


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
               list: "a list", dict: "a table"}


def _type_words(t, item_type=None) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_words(x, item_type) for x in t)
    words = _TYPE_NAMES.get(t, t.__name__)
    if t is list and item_type is not None:
        words += " of " + _type_words(item_type).split(" ", 1)[1] + "s"
    return words


def declared(options: Mapping[str, Field], keys=None, *, help_prefix: str = "", **changes) -> dict:
    """A task schema's share of a builder's declared options (``RNN_OPTIONS`` ...), in ``keys`` order.

    The Field (type, range, default, help) is the builder's; ``changes`` holds
    what this task changes: a plain value is its own default, a dict replaces
    Field attributes (e.g. narrower ``choices`` or a help naming the arch).
    """
    import dataclasses

    out = {}
    for key in (keys if keys is not None else options):
        field = options[key]
        change = changes.pop(key, None)
        if isinstance(change, dict):
            field = dataclasses.replace(field, **change)
        elif change is not None:
            field = dataclasses.replace(field, default=change)
        if help_prefix and not (isinstance(change, dict) and "help" in change):
            field = dataclasses.replace(field, help=help_prefix + field.help)
        out[key] = field
    if changes:
        raise ValueError(f"declared(): {sorted(changes)} are not among the keys taken ({', '.join(out)})")
    return out


# -- the sections every task shares ----------------------------------------------------

RECIPE_SCHEMA = {
    "name": Field("", "recipe name (defaults to the file name)", recipe_only=True),
    "task": Field("", "task that runs this recipe", recipe_only=True),
    "description": Field("", "one line shown by `nnkit list`"),
}

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential", "step")

TRAIN_SCHEMA = {
    "epochs": Field(10, "maximum number of epochs", min=1),
    "min_steps": Field(0, "when all epochs together would make fewer optimizer steps than this, each epoch "
                          "repeats the training data (reshuffled) up to min_steps / epochs steps, so a small "
                          "data set still trains; the report says so (0 = off)", min=0),
    "batch_size": Field(32, "global mini-batch size (scaled by replicas)", min=1),
    "optimizer": Field("adam", "optimizer", choices=OPTIMIZERS),
    "learning_rate": Field(1e-3, "initial learning rate", min=0.0, type=float),
    "momentum": Field(0.9, "sgd momentum", min=0.0, max=1.0, type=float),
    "nesterov": Field(False, "sgd Nesterov momentum"),
    "schedule": Field("constant", "learning-rate schedule", choices=SCHEDULES),
    "decay_rate": Field(0.5, "exponential/step schedules: factor per decay period", min=0.0, max=1.0,
                        type=float),
    "warmup_steps": Field(0, "linear learning-rate warm-up from 0 over this many optimizer steps (constant and "
                             "cosine schedules; 0 = off)", min=0),
    "average_checkpoints": Field(0, "checkpoint averaging: average the weights of the last N epochs up to the best "
                                    "one, and keep the average when its validation loss is lower (0/1 = off)", min=0),
    "decay_epochs": Field(10, "exponential/step schedules: epochs per decay period", min=1),
    "ema": Field(False, "keep an exponential moving average of the weights and evaluate/save it "
                        "(for a step neuron: the averaged perceptron)"),
    "ema_momentum": Field(0.99, "weight-average momentum", min=0.0, max=1.0, type=float),
    "clipnorm": Field(0.0, "gradient clipping by norm (0 = off)", min=0.0, type=float),
    "stop_on_divergence": Field(True, "stop the run with one line at the first epoch whose loss is NaN or "
                                      "infinite (false: keep training, e.g. to show a divergence)"),
    "early_stopping": Field(True, "stop when validation stops improving, restore the best weights"),
    "patience": Field(5, "early-stopping patience in epochs", min=0),
    "seed": Field(0, "seed for splits, initialisation and shuffling", min=0, max=2**32 - 1),  # NumPy's range
    "deterministic": Field(False, "bitwise-repeatable ops (slower): tf.config.experimental.enable_op_determinism"),
    "strategy": Field("default", "tf.distribute strategy", choices=tuple(STRATEGIES)),
    "jit_compile": Field(False, "XLA-compile the train step", type=(bool, str)),
    "mixed_precision": Field(False, "mixed_float16 on GPU, mixed_bfloat16 on CPU"),
    "steps_per_execution": Field(1, "batches per tf.function call", min=1),
    "verbose": Field(True, "Keras progress bar"),
    "checkpoint_seconds": Field(5.0, "resume checkpoint: committed at the end of an epoch once this many seconds "
                                     "have passed since the last commit (and after the last epoch); "
                                     "0 = after every epoch", min=0.0, type=float),
}


def full_schema(task_schema: Mapping, train_defaults: Mapping | None = None) -> dict:
    """The complete schema of a task: shared sections plus the task's own.

    ``train_defaults`` lets a task change the *default* of a shared train key
    (e.g. more epochs) without redeclaring its type and bounds.
    """
    schema = {"recipe": dict(RECIPE_SCHEMA), "train": dict(TRAIN_SCHEMA)}
    for key, value in (train_defaults or {}).items():
        base = schema["train"][key]
        schema["train"][key] = dataclasses.replace(base, default=value)
    for section, fields in task_schema.items():
        schema.setdefault(section, {}).update(fields)
    return schema


def defaults(schema: Mapping) -> dict:
    """The config made of every field's default."""
    out = {}
    for key, value in schema.items():
        out[key] = defaults(value) if isinstance(value, Mapping) else copy.deepcopy(value.default)
    return out


def dotted_keys(schema: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key, value in schema.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            keys.extend(dotted_keys(value, name + "."))
        else:
            keys.append(name)
    return keys


# -- validation ------------------------------------------------------------------------

def _suggest(key: str, schema: Mapping) -> str:
    keys = dotted_keys(schema)
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    if not close:  # a right leaf in the wrong section, e.g. 'epochs' for 'train.epochs'
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in keys if k.rsplit(".", 1)[-1] == leaf][:1]
        if not close:
            close = difflib.get_close_matches(leaf, keys, n=1, cutoff=0.4)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_value(key: str, value: Any, field: Field, source: str) -> Any:
    """Return the value (ints widened to float where a float is expected) or raise."""
    expected = field.expected_type()
    allowed = expected if isinstance(expected, tuple) else (expected,)
    problem = None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        problem = "wrong type"
    elif isinstance(value, float) and not math.isfinite(value):
        problem = "not a finite number"
    elif isinstance(value, list):
        item = field.item_type or _item_type(field.default)
        if len(value) < field.min_length():
            problem = "too few items" if value else "empty list"
        elif field.max_items is not None and len(value) > field.max_items:
            problem = "too many items"
        elif item is not None:
            items = item if isinstance(item, tuple) else (item,)
            for i, element in enumerate(value):
                if float in items and isinstance(element, int) and not isinstance(element, bool):
                    value[i] = element = float(element)
                if not isinstance(element, items) or (isinstance(element, bool) and bool not in items):
                    problem = f"item {i} has the wrong type"
                    break
                if isinstance(element, (int, float)) and not isinstance(element, bool) and (
                        (field.min is not None and element < field.min)
                        or (field.max is not None and element > field.max)
                        or (isinstance(element, float) and not math.isfinite(element))):
                    problem = f"item {i} is out of range"
                    break
                if field.choices is not None and element not in field.choices:
                    problem = f"item {i} is not an allowed value"
                    break
    elif field.choices is not None and value not in field.choices:
        problem = "not an allowed value"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if (field.min is not None and value < field.min) or (field.max is not None and value > field.max):
            problem = "out of range"
    if problem:
        raise ConfigError(f"{source}: config key {key!r}: {problem}: received {value!r} "
                          f"({type(value).__name__}); expected {field.describe()}")
    return value


def validate(cfg: Mapping, schema: Mapping, source: str = "config", prefix: str = "",
             full_schema_for_hints: Mapping | None = None) -> dict:
    """Check every key of a (partial) config against the schema; return a cleaned copy."""
    hints = full_schema_for_hints or schema
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'!r} must be a table, "
                          f"received {cfg!r}")
    out = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"{source}: unknown config key {name!r} (received {value!r})"
                              f"{_suggest(name, hints)}")
        spec = schema[key]
        if isinstance(spec, Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: config key {name!r} is a section; received {value!r}, "
                                  f"expected keys such as {', '.join(list(spec)[:3])}")
            out[key] = validate(value, spec, source, name + ".", hints)
        else:
            if isinstance(value, Mapping) and spec.expected_type() is not dict:
                raise ConfigError(f"{source}: config key {name!r}: received a table; "
                                  f"expected {spec.describe()}")
            out[key] = _check_value(name, copy.deepcopy(value), spec, source)
    return out


# -- the layers ---------------------------------------------------------------------------

def read_toml(path: str | Path, what: str = "config file") -> dict:
    path = Path(path)
    if not path.is_file():
        if path.exists():  # a folder, a FIFO (would block), a device (would never end)
            raise ConfigError(f"{path}: not a regular file; expected a TOML {what}")
        raise ConfigError(f"{what} not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); expected a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read: permission denied (EACCES); fix the permissions") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b=value``; the value is TOML literal syntax, or a bare string.

    ``train.epochs=5`` -> 5, ``model.filters=[32,64]`` -> [32, 64],
    ``data.ticker=MSFT`` -> "MSFT" (a bare word that is not valid TOML).
    """
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. train.epochs=5")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    parts = key.split(".")
    if not key or not all(p.strip() for p in parts) or any(p != p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: {key!r} is not a dotted key such as train.epochs")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if raw.startswith(("[", "{", '"', "'")):
            raise ConfigError(f"--set {text!r}: value {raw!r} is not valid TOML "
                              "(lists like [32,64], strings in quotes)") from None
        value = raw  # a bare word such as MSFT or lstm
    table_ok = parts[0] == "tune"  # a search-space entry may be a table: {log = [1e-4, 1e-2]}
    if (isinstance(value, dict) and not table_ok) or (hasattr(value, "isoformat") and not isinstance(value, str)):
        raise ConfigError(f"--set {text!r}: value must be a number, boolean, string or list")
    return parts, value


def overrides_to_dict(items) -> dict:
    out: dict = {}
    for item in items:
        parts, value = parse_override(item)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set both as a value and a section")
        node[parts[-1]] = value
    return out


def merge(base: Mapping, update: Mapping) -> dict:
    """Deep merge: values of ``update`` win; sections merge key by key."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(schema: Mapping, recipe: Mapping, config_file: Mapping | None = None,
            overrides: Mapping | None = None, *, recipe_source: str = "recipe",
            config_source: str = "--config", with_data: Mapping | None = None) -> dict:
    """The one place the priority is decided.

    --set > --config > the recipe's [with_data] table (only when --data is given:
    ``with_data``) > the recipe > task defaults.
    """
    layers = [
        (recipe, recipe_source),
        (with_data or {}, f"{recipe_source} [with_data]"),
        (config_file or {}, config_source),
        (overrides or {}, "--set"),
    ]
    cfg = defaults(schema)
    for index, (layer, source) in enumerate(layers):
        checked = validate(layer, schema, source)
        if index:  # only the recipe file says what the recipe is
            _refuse_recipe_keys(checked, schema, cfg, source)
        cfg = merge(cfg, checked)
    return cfg


def _refuse_recipe_keys(layer: Mapping, schema: Mapping, cfg: Mapping, source: str, prefix: str = "") -> None:
    """A key that defines the recipe (recipe.task) may be repeated with its value, never changed."""
    for key, value in layer.items():
        spec = schema[key]
        if isinstance(spec, Mapping):
            _refuse_recipe_keys(value, spec, cfg.get(key, {}), source, f"{prefix}{key}.")
        elif spec.recipe_only and value != cfg.get(key):
            raise ConfigError(f"{source}: config key {prefix + key!r} defines the recipe and cannot be "
                              f"overridden (received {value!r}, the recipe has {cfg.get(key)!r}); "
                              "use another recipe (nnkit list) or a recipe file of your own")


def to_toml(cfg: Mapping) -> str:
    import tomli_w

    return tomli_w.dumps(cfg)
