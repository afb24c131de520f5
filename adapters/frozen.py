"""``frozen(model)``: no parameter needs a gradient inside the block, for optimising something
other than the weights (an activation, a steering vector) without paying for the weights'
backward; every ``requires_grad`` flag is restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def frozen(model: Any) -> Iterator[None]:
    """``model`` is a ``HookedModel`` (its ``hf_model``'s parameters are frozen)."""
    params = list(model.hf_model.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
