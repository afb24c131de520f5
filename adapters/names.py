"""Canonical hook and weight names: templates, expansion, lookup errors.

Every model, whatever its family or backend, is addressed with the same TransformerLens-style
names. Templates use ``{i}`` for the layer index (``blocks.{i}.hook_resid_pre``); a concrete name
replaces it with a number (``blocks.3.hook_resid_pre``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_LAYER = re.compile(r"^blocks\.(\d+)\.")


class UnknownNameError(KeyError):
    """A hook or weight name that the model does not have; the message lists the closest names."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        valid = list(valid)
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        if not close:
            close = _same_suffix(name, valid)
        hint = f" Closest valid names: {', '.join(close)}." if close else ""
        message = f"Unknown {kind} name {name!r}.{hint} See model.{kind}_names() for all of them."
        super().__init__(message)
        self.name = name
        self.suggestions = close

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def _same_suffix(name: str, valid: list[str]) -> list[str]:
    suffix = name.rsplit(".", 1)[-1]
    return [v for v in valid if v.endswith("." + suffix) or v == suffix][:5]


def template_of(name: str) -> tuple[str, int | None]:
    """Split ``blocks.3.mlp.hook_post`` into (``blocks.{i}.mlp.hook_post``, 3)."""
    match = _LAYER.match(name)
    if match is None:
        return name, None
    return "blocks.{i}." + name[match.end() :], int(match.group(1))
