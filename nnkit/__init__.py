"""nnkit: classic neural-network ideas as one-command Keras recipes and importable builders.

Importing the package is cheap: TensorFlow is loaded only by the modules that
train, evaluate or export (see ``nnkit.cli``), and the Python API below is
imported on first use::

    import nnkit
    run = nnkit.run("stock", prices_df, overrides={"train.epochs": 5})
    run.metrics, run.history, run.predict(recent_df)
    nnkit.load_run("runs/stock/..."), nnkit.list_recipes(), nnkit.show("digits")

(``nnkit.train``, ``nnkit.runs`` and the other submodules keep their names;
the API never shadows them.)
"""

__version__ = "0.1.0"

# public name -> (module, attribute); imported lazily by __getattr__ (PEP 562) with
# importlib, so `import nnkit` loads nothing more and nnkit -> nnkit.api is no import edge
_API = {
    "run": ("nnkit.api", "run"),
    "load_run": ("nnkit.api", "load_run"),
    "list_recipes": ("nnkit.api", "list_recipes"),
    "show": ("nnkit.api", "show"),
    "Run": ("nnkit.api_run", "Run"),
    "NnkitError": ("nnkit.errors", "NnkitError"),
    "ConfigError": ("nnkit.errors", "ConfigError"),
    "DataError": ("nnkit.errors", "DataError"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        import importlib

        module, attribute = _API[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'nnkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
