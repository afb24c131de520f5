"""Where interv keeps its files: ``$INTERV_HOME`` (default ``~/.cache/interv``)."""

from __future__ import annotations

import os
from pathlib import Path


def interv_home() -> Path:
    return Path(os.environ.get("INTERV_HOME") or Path.home() / ".cache" / "interv").expanduser()


def models_dir(home: Path | None = None) -> Path:
    return (home or interv_home()) / "models"


def downloads_dir(home: Path | None = None) -> Path:
    return (home or interv_home()) / "downloads"
