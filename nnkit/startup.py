"""Load TensorFlow without its start-up chatter, so nnkit's line is the first on the terminal.

TensorFlow and XLA print 3-8 lines on standard error while they load and
look for devices ("All log messages before absl::InitializeLog() ...",
"Could not find cuda drivers", a cuInit error, the oneDNN notice), through
C++ logging that runs before ``TF_CPP_MIN_LOG_LEVEL`` is read, so the
variable alone cannot stop them. The only reliable switch is the file
descriptor: file descriptor 2 points at a temporary file while TensorFlow
imports and enumerates its devices, and back at the terminal afterwards.
What was captured is replayed if loading fails, and never hidden from
someone who asks: ``NNKIT_VERBOSE=1`` (or ``nnkit --verbose``) shows it.

The CLI installs :func:`quiet_tensorflow`, an import hook, so TensorFlow still
loads only where a command needs it (errors found before that stay fast) and
every path that imports it is covered.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

VERBOSE_ENV = "NNKIT_VERBOSE"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def stderr_captured():
    """Point file descriptor 2 at a temporary file; on an exception, replay what was captured."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            os.write(2, capture.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the usual way, and hands back a loader that imports it quietly."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the real finders do the finding
        spec = importlib.util.find_spec("tensorflow")
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        with stderr_captured():
            self.inner.exec_module(module)
            module.config.list_physical_devices()  # cuInit and the CPU-feature notice print here
        module.__loader__ = module.__spec__.loader = self.inner  # as if nothing had come between
        module.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)


def quiet_tensorflow() -> None:
    """From now on, the first ``import tensorflow`` (by nnkit, Keras, anyone) is quiet, unless verbose."""
    if verbose() or "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    # TensorFlow's C++ errors after start-up (a port it cannot bind, a device it cannot use) repeat
    # what the Python exception nnkit turns into one line says; --verbose shows them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.meta_path.insert(0, _QuietFinder())
