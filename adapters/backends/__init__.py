"""Backends run the same canonical hooks on different machinery: ``hf``, ``transformer_lens``,
``nnsight``. Optional heavy dependencies are imported only when their backend is built."""

from __future__ import annotations

from typing import Any

from torch import nn

from interv.errors import ConfigError, StopForward

from ..architectures import Architecture
from ..run import RunTracker
from .base import Backend, Batch, HookPlan, Prefix
from .hf import HFBackend
from .nnsight import NNsightBackend
from .transformer_lens import TransformerLensBackend

BACKENDS = ("hf", "transformer_lens", "nnsight")
_ALIASES = {"tl": "transformer_lens", "transformerlens": "transformer_lens", "transformers": "hf"}


def canonical_backend(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in BACKENDS:
        raise ConfigError(f"Unknown backend {name!r}; choose one of {', '.join(BACKENDS)}.")
    return key


def build_backend(
    name: str, hf_model: nn.Module, tokenizer: Any, arch: Architecture, tracker: RunTracker
) -> Backend:
    key = canonical_backend(name)
    if key == "hf":
        return HFBackend(hf_model, tracker)
    if key == "transformer_lens":
        return TransformerLensBackend(hf_model, tokenizer, arch, tracker)
    return NNsightBackend(hf_model, tokenizer, tracker)


__all__ = ["BACKENDS", "Backend", "Batch", "HookPlan", "Prefix", "StopForward", "build_backend"]
