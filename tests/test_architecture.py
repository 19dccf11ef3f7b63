"""House rules, read from the source (AST, lazy imports included): imports point down, no cycles, small files.

DESIGN.md "Layers": cli -> pipeline-level machinery (pipeline, train, export, distribute, predictions)
-> tasks -> builders, datasets, layers -> config fields, runs' file helpers, report drawing, errors.
Also: every builder option declared once, with the builder's own default.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "nnkit"
LOW = ("nnkit.tasks", "nnkit.builders", "nnkit.datasets", "nnkit.layers")
HIGH = ("nnkit.pipeline", "nnkit.select", "nnkit.train", "nnkit.export", "nnkit.export_formats",
        "nnkit.export_check", "nnkit.distribute", "nnkit.predictions", "nnkit.cli", "nnkit.tuning")
MAX_LINES = 600


def modules(root: Path = ROOT) -> dict:
    """Dotted module name -> file, for every .py under nnkit/."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(mods: dict) -> dict:
    """module -> the nnkit modules it imports anywhere in its body (functions included)."""
    edges = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_pkg else name.split(".")[:-1]
                    package = package[:len(package) - (node.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in names:
                while target and target not in mods:  # a name imported from a module: the module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        edges[name] = targets
    return edges


def upward(edges: dict) -> list[str]:
    return sorted(f"{a} -> {b}" for a, bs in edges.items() if a.startswith(LOW) for b in bs
                  if any(b == h or b.startswith(h + ".") for h in HIGH))


def cycles(edges: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_no_lower_layer_imports_the_machinery_above_it():
    assert upward(imports(modules())) == []


def test_no_import_cycles_inside_nnkit():
    assert cycles(imports(modules())) == []


def test_no_file_over_600_lines():
    big = {str(p): n for p in ROOT.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The checks can fail: a lazy upward import and a cycle in a throw-away tree are found."""
    pkg = tmp_path / "nnkit"
    (pkg / "tasks").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tasks" / "__init__.py").write_text("")
    (pkg / "tasks" / "t.py").write_text("def f():\n    from nnkit.train import fit\n")
    (pkg / "train.py").write_text("from nnkit import pipeline\n")
    (pkg / "pipeline.py").write_text("from . import train\n")
    edges = imports(modules(pkg))
    assert upward(edges) == ["nnkit.tasks.t -> nnkit.train"]
    assert cycles(edges) == [["nnkit.pipeline", "nnkit.train"]]


def _declarations():
    from nnkit.builders import cnn, embedding, language_model, mlp, rnn, seq2seq, temporal

    return [(rnn.build_rnn, rnn.RNN_OPTIONS), (mlp.build_mlp, mlp.MLP_OPTIONS), (cnn.build_cnn, cnn.CNN_OPTIONS),
            (temporal.build_conv1d, temporal.CONV1D_OPTIONS),
            (language_model.build_language_model, language_model.LANGUAGE_MODEL_OPTIONS),
            (seq2seq.build_seq2seq, seq2seq.SEQ2SEQ_OPTIONS), (embedding.build_item2vec, embedding.ITEM2VEC_OPTIONS)]


@pytest.mark.parametrize("builder, options", _declarations(), ids=lambda x: getattr(x, "__name__", ""))
def test_builder_options_are_declared_with_the_builders_defaults(builder, options):
    """One declaration per option: a keyword of the builder, same default (lists for TOML, tuples in Python)."""
    params = inspect.signature(builder).parameters
    for key, field in options.items():
        assert key in params, f"{builder.__name__} has no keyword {key!r}"
        default = params[key].default
        assert (list(default) if isinstance(default, tuple) else default) == field.default, key
        assert field.help, key
