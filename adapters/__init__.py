"""interv.adapters: every model, every backend, the same TransformerLens-style names.

Shipped in the repository as the top-level ``adapters/`` folder and installed as
``interv.adapters`` (see ``package-dir`` in pyproject.toml).
"""

from __future__ import annotations

from .architectures import (
    Architecture,
    UnsupportedArchitectureError,
    architecture_for,
    supported_model_types,
)
from .backends import BACKENDS
from .cache import ActivationCache
from .config import ModelConfig
from .hooked import HookedModel, HookSource
from .names import UnknownNameError
from .run import HookContext, HookFn, RunState

__all__ = [
    "BACKENDS",
    "ActivationCache",
    "Architecture",
    "HookContext",
    "HookFn",
    "HookSource",
    "HookedModel",
    "ModelConfig",
    "RunState",
    "UnknownNameError",
    "UnsupportedArchitectureError",
    "architecture_for",
    "supported_model_types",
]
