"""The installed interv version, read without importing anything heavy."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version


def version() -> str:
    """The installed interv version (``0.0.0+unknown`` in a source tree never installed)."""
    try:
        return _distribution_version("interv")
    except PackageNotFoundError:
        return "0.0.0+unknown"
