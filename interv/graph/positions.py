"""Position selectors by name: ``positions.generated()``, ``positions.indices(0, -1)``...

Row positions count each row's real tokens (``0`` = its first prompt token whatever the left
padding; negative = from the end of its prompt, ``-1`` = last prompt token; positions past the
prompt are generated tokens).

Example:
    >>> from interv.graph import positions
    >>> positions.generated()
    Generated()
    >>> positions.slice(-3, None)
    Span(start=-3, stop=None)
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from ..errors import GraphError
from .selectors import Generated, Indices, LastPromptToken, Positions, Prompt, Span, Tokens


def all() -> Positions:  # noqa: A001 - the name reads as the selector it is
    """Every position (the default)."""
    return Positions()


def prompt() -> Positions:
    """Prompt tokens only."""
    return Prompt()


def generated() -> Positions:
    """Generated tokens only; a plain forward has none."""
    return Generated()


def last_prompt_token() -> Positions:
    """The last prompt token of every row."""
    return LastPromptToken()


def indices(*index: int) -> Positions:
    """Row positions by index (``0`` first prompt token, ``-1`` last prompt token)."""
    if not index or not builtins.all(isinstance(i, int) for i in index):
        raise GraphError(f"positions.indices needs one or more ints, got {index!r}.")
    return Indices(tuple(index))


def slice(start: int | None = None, stop: int | None = None) -> Positions:  # noqa: A001
    """Row positions ``start <= p < stop``; ``None`` leaves an end open (past the prompt too)."""
    return Span(start, stop)


def tokens(text: str | Sequence[int]) -> Positions:
    """Every occurrence of ``text`` (tokenized without special tokens) or of these token ids."""
    if isinstance(text, str):
        if not text:
            raise GraphError("positions.tokens needs a non-empty string.")
        return Tokens(text)
    ids = tuple(int(i) for i in text)
    if not ids:
        raise GraphError("positions.tokens needs at least one token id.")
    return Tokens(None, ids)


__all__ = ["all", "generated", "indices", "last_prompt_token", "prompt", "slice", "tokens"]
