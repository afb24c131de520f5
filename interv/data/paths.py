"""Where benchmark files are read from: ``$INTERV_DATA`` (default: the repository's sibling
``shared/data`` folder when it exists), else the subsets bundled with the package.

``interv/data/bundled/`` mirrors the relative paths of the benchmark folder and holds the
first records of the files the shipped recipes, the demo, the steering benchmark and the
offline metrics read (``interv.data.bundle``). A recipe that trains on the first ``N`` records
gets the same records either way, so a wheel install regenerates the shipped vectors offline.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

from ..errors import MissingFileError

log = logging.getLogger(__name__)


def data_root() -> Path:
    env = os.environ.get("INTERV_DATA")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    raise MissingFileError(
        "No benchmark data folder found; set INTERV_DATA to the folder holding "
        "knowledge_editing/ and steering/."
    )


def bundled_root() -> Path:
    return Path(str(resources.files("interv.data").joinpath("bundled")))


def data_file(relative: str) -> Path:
    """The benchmark file at ``relative``, or its bundled subset when the folder lacks it."""
    try:
        root: Path | None = data_root()
    except MissingFileError:
        root = None
    if root is not None and (root / relative).is_file():
        return root / relative
    bundled = bundled_root() / relative
    if bundled.is_file():
        log.debug("Reading the bundled subset of %s (set INTERV_DATA for the full file).", relative)
        return bundled
    where = f"{root}" if root is not None else "no benchmark folder (set INTERV_DATA)"
    raise MissingFileError(
        f"{relative} is neither in {where} nor among the bundled subsets; "
        "set INTERV_DATA to the benchmark folder that holds it."
    )
