"""interv: edit what a language model knows and steer what it does.

The core idea: every model looks the same (TransformerLens-style hook and weight names on any
backend), an edit is a weight patch on a named weight, and steering is an intervention graph on
named hook points.

Importing ``interv`` is cheap: ``interv.load`` and ``interv.HookedModel`` import torch and
transformers when they are first used, so the ``interv`` command starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import version as _version
from .errors import MissingAttributeError

if TYPE_CHECKING:
    from .adapters import HookedModel
    from .loading import load
    from .provision import DEFAULT_MODEL

__version__ = _version()

_LAZY = {
    "HookedModel": "interv.adapters",
    "load": "interv.loading",
    "DEFAULT_MODEL": "interv.provision",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise MissingAttributeError(f"module 'interv' has no attribute {name!r}")


__all__ = ["DEFAULT_MODEL", "HookedModel", "__version__", "load"]
