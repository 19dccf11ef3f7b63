"""Find recipes: a bundled name (``digits``) or a path to the user's own TOML file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.config import read_toml
from nnkit.errors import NnkitError


def recipes_dir() -> Path:
    """Bundled recipes: inside the wheel (nnkit/recipes) or the checkout's recipes/."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "recipes", here.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    raise NnkitError("bundled recipes folder not found; is nnkit installed correctly?")


def bundled_names() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob("*.toml"))


@dataclass
class Recipe:
    name: str
    path: Path
    config: dict  # the file's content, not yet validated
    # the file's [with_data] table: settings for the user's own data (--data), over the rest of the file
    with_data: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config.get("recipe", {}).get("task", "")

    @property
    def description(self) -> str:
        return self.config.get("recipe", {}).get("description", "")


def load_recipe(ref: str) -> Recipe:
    """Resolve ``ref``: a .toml path wins when it exists or looks like a path."""
    path = Path(ref)
    looks_like_path = ref.endswith(".toml") or "/" in ref or "\\" in ref
    if looks_like_path:
        if not path.is_file():
            raise NnkitError(f"recipe file not found: {ref}")
    else:
        path = recipes_dir() / f"{ref}.toml"
        if not path.is_file():
            names = bundled_names()
            close = difflib.get_close_matches(ref, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise NnkitError(f"unknown recipe {ref!r}; bundled recipes: {', '.join(names)}{hint} "
                             "(or give a path to a .toml file)")
    config = read_toml(path, what="recipe file")
    section = config.get("recipe")
    if not isinstance(section, dict) or not isinstance(section.get("task"), str) or not section["task"]:
        raise NnkitError(f"{path}: missing [recipe] task = \"...\" (which task runs this recipe)")
    name = section.get("name") or path.stem
    config["recipe"] = {**section, "name": name}
    with_data = config.pop("with_data", {})
    if not isinstance(with_data, dict) or not all(isinstance(v, dict) for v in with_data.values()):
        raise NnkitError(f"{path}: [with_data] must hold tables of settings such as [with_data.model]")
    return Recipe(name=name, path=path, config=config, with_data=with_data)
