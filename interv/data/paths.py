"""Where benchmark files are read from: ``$INTERV_DATA`` (default: the repository's sibling
``shared/data`` folder when it exists)."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    env = os.environ.get("INTERV_DATA")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "No benchmark data folder found; set INTERV_DATA to the folder holding "
        "knowledge_editing/ and steering/."
    )


def data_file(relative: str) -> Path:
    path = data_root() / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; check INTERV_DATA ({data_root()}).")
    return path
