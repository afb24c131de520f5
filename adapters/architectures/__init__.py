"""The architecture table: one entry per model family, looked up by ``config.model_type``.

Supporting a new family means writing one ``Architecture`` entry in its own file and adding
it to ``_ENTRIES`` below.
"""

from __future__ import annotations

from interv.errors import UnsupportedArchitectureError

from .gemma import GEMMA, GEMMA2
from .gpt2 import GPT2
from .gpt_neox import GPT_NEOX
from .llama import LLAMA
from .spec import Architecture, Site, WeightSpec

_ENTRIES: tuple[Architecture, ...] = (LLAMA, GPT2, GPT_NEOX, GEMMA, GEMMA2)


def all_architectures() -> tuple[Architecture, ...]:
    """Every entry of the table."""
    return _ENTRIES


def supported_model_types() -> list[str]:
    return sorted(t for entry in _ENTRIES for t in entry.model_types)


def architecture_for(model_type: str) -> Architecture:
    """The table entry for a ``transformers`` ``model_type`` (e.g. ``"llama"``, ``"gpt2"``)."""
    for entry in _ENTRIES:
        if model_type in entry.model_types:
            return entry
    raise UnsupportedArchitectureError(
        f"Model type {model_type!r} is not in interv's architecture table, so its hook and weight "
        f"names are unknown. Supported model types: {', '.join(supported_model_types())}. "
        "To add a family, write one Architecture entry in adapters/architectures/ "
        "(see llama.py) and list it in adapters/architectures/__init__.py."
    )


__all__ = [
    "Architecture",
    "Site",
    "UnsupportedArchitectureError",
    "WeightSpec",
    "all_architectures",
    "architecture_for",
    "supported_model_types",
]
