"""YAML recipes shipped with interv (read with importlib.resources)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from interv.errors import MissingFileError


def recipe_path(name: str) -> Path:
    """A recipe file: an existing path, or a recipe shipped with interv, named with or without
    ``recipes/`` and ``.yaml`` (``edit/alphaedit-sequential-smollm2``)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    relative = name.removeprefix("recipes/")
    for candidate in (relative, f"{relative}.yaml"):
        shipped = Path(str(resources.files(__name__))) / candidate
        if shipped.is_file():
            return shipped
    raise MissingFileError(
        f"No recipe {name!r}: neither a file nor a recipe shipped in interv/recipes."
    )


def recipe_name(path: str) -> str:
    """``recipes/<file>`` for a path inside the shipped recipes (the inverse of
    ``recipe_path``, for provenance that reads the same on every machine), else ``path``."""
    root = Path(str(resources.files(__name__))).resolve()
    try:
        return "recipes/" + Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return path
