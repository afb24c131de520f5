"""interv: edit what a language model knows and steer what it does.

The core idea: every model looks the same (TransformerLens-style hook and weight names on any
backend), an edit is a weight patch on a named weight, and steering is an intervention graph on
named hook points.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .adapters import HookedModel
from .loading import load
from .provision import DEFAULT_MODEL

try:
    __version__ = version("interv")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["DEFAULT_MODEL", "HookedModel", "__version__", "load"]
