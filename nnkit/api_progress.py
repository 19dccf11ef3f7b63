"""Progress for ``nnkit.run`` in a notebook: one bar per stage, updated in place.

In a terminal the API keeps Keras's own progress bar (``train.verbose``). In
a Jupyter kernel Keras would print a line per epoch (or redraw per batch)
into the cell; there the API turns that off and shows one display per stage
instead: a bar over the epochs for ``train`` (updated at most a few times a
second, with the latest loss values), and one line for ``evaluate``,
``report`` and ``export`` that says when each is done.
"""

from __future__ import annotations

import html
import sys
import time

STAGES = ("train", "evaluate", "report", "export")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel), False in a terminal or a plain script."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _View:
    """What one stage's display shows: text for plain front ends, HTML for Jupyter."""

    def __init__(self, stage: str, done: float, total: float, note: str):
        self.stage, self.done, self.total, self.note = stage, done, total, note

    def __repr__(self):
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        return f"{self.stage:<8} [{'#' * filled}{'.' * (width - filled)}] {self.note}"

    def _repr_html_(self):
        return (f"<div style='font-family:monospace'><b>{html.escape(self.stage)}</b> "
                f"<progress value='{self.done}' max='{self.total or 1}' style='width:16em'></progress> "
                f"{html.escape(self.note)}</div>")


class NotebookProgress:
    """One updating display per stage; pass :meth:`on_stage` and :meth:`callbacks` to the pipeline."""

    def __init__(self, display=None, every_seconds: float = 0.5):
        if display is None:
            from IPython.display import display
        self._display = display
        self.every_seconds = every_seconds
        self._handles: dict = {}
        self._started: dict = {}
        self._notes: dict = {}  # stage -> what its finished bar keeps saying (epochs, last losses)

    def show(self, stage: str, done: float, total: float, note: str) -> None:
        view = _View(stage, done, total, note)
        if stage not in self._handles:
            self._handles[stage] = self._display(view, display_id=True)
        elif self._handles[stage] is not None:
            self._handles[stage].update(view)

    def on_stage(self, stage: str, event: str) -> None:
        if event == "start":
            self._started[stage] = time.monotonic()
            if stage != "train":  # train draws its own bar from the first epoch
                self.show(stage, 0, 1, "running…")
        elif event == "done":
            seconds = time.monotonic() - self._started.get(stage, time.monotonic())
            previous = self._notes.get(stage, "")
            self.show(stage, 1, 1, f"done in {seconds:.1f} s" + (f" ({previous})" if previous else ""))

    def callbacks(self) -> list:
        """A Keras callback that draws the train bar (Keras is imported here, not at import)."""
        import keras

        progress = self

        class EpochBar(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.epochs = self.params.get("epochs") or 1
                self.steps = self.params.get("steps") or 0
                self.epoch, self.last = 0, 0.0
                self.logs = {}
                progress.show("train", 0, self.epochs, f"epoch 0/{self.epochs}")

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                now = time.monotonic()
                if self.steps and now - self.last >= progress.every_seconds:
                    self.last = now
                    fraction = self.epoch + (batch + 1) / self.steps
                    progress.show("train", fraction, self.epochs, self._note(f"epoch {self.epoch + 1}/{self.epochs}"))

            def on_epoch_end(self, epoch, logs=None):
                self.logs = dict(logs or {})
                self.last = time.monotonic()
                progress.show("train", epoch + 1, self.epochs, self._note(f"epoch {epoch + 1}/{self.epochs}"))

            def on_train_end(self, logs=None):
                epochs_run = self.epoch + 1
                progress._notes["train"] = self._note(f"{epochs_run} epoch{'s' if epochs_run > 1 else ''}")

            def _note(self, head: str) -> str:
                shown = [f"{k} {float(v):.4g}" for k, v in sorted(self.logs.items())
                         if isinstance(v, (int, float)) or hasattr(v, "__float__")][:4]
                return head + (" — " + ", ".join(shown) if shown else "")

        return [EpochBar()]
