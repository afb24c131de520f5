"""The one error type of intervention graphs."""

from __future__ import annotations


class GraphError(ValueError):
    """A graph that cannot be built, applied, folded, saved or loaded; nothing was changed."""
